#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "mmar/config_resolver.h"
#include "mmar/mmar_test_util.h"

namespace barton::mmar {
namespace {

using json = nlohmann::ordered_json;

// The Clara 4.1 explicit style, trimmed.
const char* kExplicit = R"JSON({
  "epochs": 3, "learning_rate": 1e-4, "amp": false, "num_interval_per_valid": 1,
  "train": {
    "loss": {"name": "DiceLoss", "args": {"to_onehot_y": true, "softmax": true}},
    "optimizer": {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"}},
    "lr_scheduler": {"name": "StepLR", "args": {"optimizer": "@optimizer", "step_size": 5000, "gamma": 0.1}},
    "model": {"name": "UNet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2,
              "channels": [16, 32], "strides": [2]}},
    "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                       {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "clip": true}}],
    "dataset": {"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "training", "args": {"transform": "@pre_transforms", "cache_rate": 1.0}},
    "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 2, "shuffle": true}},
    "inferer": {"name": "SimpleInferer"},
    "handlers": [{"name": "LrScheduleHandler", "args": {"lr_scheduler": "@lr_scheduler", "print_lr": true}},
                 {"name": "ValidationHandler", "args": {"validator": "@evaluator", "epoch_level": true, "interval": 1}}],
    "trainer": {"name": "SupervisedTrainer", "args": {"max_epochs": "{epochs}", "train_data_loader": "@dataloader",
                "network": "@model", "loss_function": "@loss", "optimizer": "@optimizer", "inferer": "@inferer",
                "train_handlers": "@handlers", "amp": "{amp}"}}
  },
  "validate": {
    "pre_transforms": [{"ref": "LoadImaged"}, {"ref": "ScaleIntensityRanged"}],
    "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "validation", "args": {"transform": "@pre_transforms"}},
    "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 1}},
    "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [32, 32, 32]}},
    "key_metric": {"name": "MeanDice", "log_label": "val_mean_dice",
                   "args": {"include_background": false, "output_transform": "#monai.handlers.from_engine(['pred', 'label'])"}},
    "evaluator": {"name": "SupervisedEvaluator", "args": {"val_data_loader": "@dataloader", "network": "@model",
                  "inferer": "@inferer", "key_val_metric": "@key_metric", "amp": "{amp}"}}
  }
})JSON";

// The same training in the implicit (4.0) style: the framework wires the objects itself.
const char* kImplicit = R"JSON({
  "epochs": 3, "learning_rate": 1e-4, "amp": false, "num_interval_per_valid": 1,
  "train": {
    "loss": {"name": "DiceLoss", "args": {"to_onehot_y": true, "softmax": true}},
    "optimizer": {"name": "Adam", "args": {"lr": "{learning_rate}"}},
    "lr_scheduler": {"name": "StepLR", "args": {"step_size": 5000, "gamma": 0.1}},
    "model": {"name": "UNet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2,
              "channels": [16, 32], "strides": [2]}},
    "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                       {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "clip": true}}],
    "dataset": {"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "training", "args": {"cache_rate": 1.0}},
    "dataloader": {"name": "DataLoader", "args": {"batch_size": 2, "shuffle": true}},
    "inferer": {"name": "SimpleInferer"},
    "handlers": [{"name": "LrScheduleHandler", "args": {"print_lr": true}},
                 {"name": "ValidationHandler", "args": {"epoch_level": true}}],
    "trainer": {"name": "SupervisedTrainer", "args": {"max_epochs": "{epochs}"}}
  },
  "validate": {
    "pre_transforms": [{"ref": "LoadImaged"}, {"ref": "ScaleIntensityRanged"}],
    "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "validation"},
    "dataloader": {"name": "DataLoader", "args": {"batch_size": 1}},
    "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [32, 32, 32]}},
    "metrics": [{"name": "MeanDice", "log_label": "val_mean_dice", "is_key_metric": true,
                 "args": {"include_background": false, "output_transform": "#monai.handlers.from_engine(['pred', 'label'])"}}]
  }
})JSON";

json resolved(const ConfigFiles& f, std::vector<std::string> sets = {}) {
  return resolve_config(f, {sets, false}).doc.json();
}

TEST(Resolver, SubstitutesVariablesKeepingTypes) {
  test::TempDir tmp;
  const auto doc = resolved(test::make_mmar(tmp, kExplicit));
  EXPECT_TRUE(doc["/train/optimizer/args/lr"_json_pointer].is_number_float());
  EXPECT_DOUBLE_EQ(doc["/train/optimizer/args/lr"_json_pointer].get<double>(), 1e-4);
  EXPECT_EQ(doc["/train/trainer/args/max_epochs"_json_pointer], 3);
  EXPECT_EQ(doc["/train/trainer/args/amp"_json_pointer], false);
  EXPECT_EQ(doc["/train/dataset/data_list_file_path"_json_pointer], "data/dataset.json");
}

TEST(Resolver, SetOverridesVariablesAndPointers) {
  test::TempDir tmp;
  const auto doc = resolved(
      test::make_mmar(tmp, kExplicit),
      {"epochs=10", "learning_rate=0.5", "/train/loss/args/softmax=False", "DATA_ROOT=/data"});
  EXPECT_EQ(doc["/train/trainer/args/max_epochs"_json_pointer], 10);
  EXPECT_EQ(doc["/epochs"_json_pointer], 10);
  EXPECT_DOUBLE_EQ(doc["/train/optimizer/args/lr"_json_pointer].get<double>(), 0.5);
  EXPECT_EQ(doc["/train/loss/args/softmax"_json_pointer], false);
  EXPECT_EQ(doc["/validate/dataset/data_file_base_dir"_json_pointer], "/data");
}

TEST(Resolver, SetOfAValueThatIsNotUtf8IsAConfigError) {
  // Found by fuzz/config: nlohmann's type_error escaped when the value became a JSON string.
  test::TempDir tmp;
  test::expect_error_containing(
      [&] { resolved(test::make_mmar(tmp, kExplicit), {"learning_rate=a\xff\xff"}); },
      "a value is not valid UTF-8");
}

TEST(Resolver, SetOfAnUnknownVariableSuggests) {
  test::TempDir tmp;
  test::expect_error_containing([&] { resolved(test::make_mmar(tmp, kExplicit), {"epoch=10"}); },
                                "--set epoch=10: no variable 'epoch'");
  test::expect_error_containing([&] { resolved(test::make_mmar(tmp, kExplicit), {"epoch=10"}); },
                                "did you mean 'epochs'?");
  test::expect_error_containing(
      [&] { resolved(test::make_mmar(tmp, kExplicit), {"/train/nothing/x=1"}); },
      "no such location: /train/nothing does not exist");
}

TEST(Resolver, BothWiringStylesResolveToOneModel) {
  test::TempDir a, b;
  const auto ex = resolved(test::make_mmar(a, kExplicit));
  const auto im = resolved(test::make_mmar(b, kImplicit));
  EXPECT_EQ(ex["train"]["trainer"]["args"]["train_data_loader"],
            im["train"]["trainer"]["args"]["train_data_loader"]);
  for (const char* p :
       {"/train/trainer/args/network", "/train/trainer/args/loss_function",
        "/train/trainer/args/optimizer", "/train/trainer/args/max_epochs",
        "/train/trainer/args/train_handlers", "/train/optimizer/args/params",
        "/train/lr_scheduler/args/optimizer", "/train/handlers/0/args/lr_scheduler",
        "/train/handlers/1/args/validator", "/train/handlers/1/args/interval",
        "/train/dataset/args/transform", "/train/dataloader/args/dataset",
        "/validate/evaluator/args/network", "/validate/evaluator/args/key_val_metric",
        "/validate/key_metric", "/validate/pre_transforms"}) {
    const json::json_pointer ptr(p);
    EXPECT_EQ(ex[ptr], im[ptr]) << p;
  }
}

// MONAI's SupervisedTrainer runs a SimpleInferer, no post transforms and no metric unless told
// otherwise; the implicit style used to hand it the validate section's sliding window and MeanDice
// (which then ran on every training batch, logged as val_mean_dice) when the train section had
// none.
TEST(Resolver, TrainerTakesNothingFromTheValidateSection) {
  test::TempDir tmp;
  std::string config = kImplicit;
  const std::string own_inferer = R"("inferer": {"name": "SimpleInferer"},)";
  config.erase(config.find(own_inferer), own_inferer.size());
  const auto doc = resolved(test::make_mmar(tmp, config.c_str()));
  const auto& args = doc["/train/trainer/args"_json_pointer];
  EXPECT_FALSE(args.contains("inferer")) << args.dump();
  EXPECT_FALSE(args.contains("key_train_metric")) << args.dump();
  EXPECT_FALSE(args.contains("postprocessing")) << args.dump();
  EXPECT_EQ(doc["/validate/evaluator/args/inferer"_json_pointer], "@inferer");
  EXPECT_EQ(doc["/validate/evaluator/args/key_val_metric"_json_pointer], "@key_metric");
}

TEST(Resolver, RefsCopyTrainComponents) {
  test::TempDir tmp;
  const auto doc = resolved(test::make_mmar(tmp, kExplicit));
  EXPECT_EQ(doc["/validate/pre_transforms/1"_json_pointer],
            doc["/train/pre_transforms/1"_json_pointer]);
}

TEST(Resolver, MisspeltComponentNamesFileAndPointer) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("\"DiceLoss\""), 10, "\"DiseLoss\"");
  test::expect_error_containing(
      [&] { resolved(test::make_mmar(tmp, cfg)); },
      "config_train.json:/train/loss/name: unknown loss 'DiseLoss'; did you mean 'DiceLoss'?");
}

TEST(Resolver, WrongArgumentTypeNamesFileAndPointer) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("\"batch_size\": 2"), 15, "\"batch_size\": \"two\"");
  test::expect_error_containing(
      [&] { resolved(test::make_mmar(tmp, cfg)); },
      "config_train.json:/train/dataloader/args/batch_size: expected int, got string \"two\"");
}

TEST(Resolver, CircularVariablesAreRefused) {
  test::TempDir tmp;
  const auto f = test::make_mmar(
      tmp, kExplicit, R"({"DATA_ROOT": "{DATASET_JSON}/x", "DATASET_JSON": "{DATA_ROOT}/d.json"})");
  test::expect_error_containing([&] { resolved(f); }, "circular variable reference: {");
}

TEST(Resolver, CircularComponentReferencesAreRefused) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("\"validator\": \"@evaluator\""), 25, "\"validator\": \"@trainer\"");
  test::expect_error_containing([&] { resolved(test::make_mmar(tmp, cfg)); },
                                "circular reference: @handlers -> @trainer -> @handlers");
}

TEST(Resolver, UnknownReferenceSuggests) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("\"network\": \"@model\""), 19, "\"network\": \"@modle\"");
  test::expect_error_containing(
      [&] { resolved(test::make_mmar(tmp, cfg)); },
      "/train/trainer/args/network: unknown reference '@modle'; did you mean '@model'?");
}

TEST(Resolver, ArbitraryPythonIsRefusedWithWhatToWrite) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("\"#@model.parameters()\""), 22,
              "\"#filter(lambda p: p.requires_grad, @model.parameters())\"");
  test::expect_error_containing(
      [&] { resolved(test::make_mmar(tmp, cfg)); },
      "/train/optimizer/args/params: Python code is not evaluated by Barton");
}

TEST(Resolver, UndefinedVariableSuggests) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("{learning_rate}"), 15, "{learning_rat}");
  test::expect_error_containing([&] { resolved(test::make_mmar(tmp, cfg)); },
                                "/train/optimizer/args/lr: undefined variable '{learning_rat}'; "
                                "did you mean '{learning_rate}'?");
}

TEST(Resolver, CheckReportsEveryProblemAtOnce) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("\"DiceLoss\""), 10, "\"DiseLoss\"");
  cfg.replace(cfg.find("\"batch_size\": 2"), 15, "\"batch_size\": \"two\"");
  cfg.replace(cfg.find("\"network\": \"@model\""), 19, "\"network\": \"@modle\"");
  Diagnostics diag;
  resolve_config(test::make_mmar(tmp, cfg), {{}, true}, builtin_registries(), diag);
  std::vector<std::string> msgs;
  for (const auto& e : diag.errors()) msgs.push_back(e.what());
  ASSERT_EQ(msgs.size(), 5u) << testing::PrintToString(msgs);  // 3 edits + 2 missing datalists
  int named = 0;
  for (const auto& m : msgs) {
    named += m.find("/train/loss/name: unknown loss") != std::string::npos ||
             m.find("/train/dataloader/args/batch_size: expected int") != std::string::npos ||
             m.find("/train/trainer/args/network: unknown reference") != std::string::npos;
  }
  EXPECT_EQ(named, 3);
  int missing = 0;
  for (const auto& m : msgs) missing += m.find("missing datalist") != std::string::npos;
  EXPECT_EQ(missing, 2);
}

TEST(Resolver, UnknownSectionKeySuggests) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("\"lr_scheduler\": {"), 14, "\"lr_schedular\"");
  test::expect_error_containing(
      [&] { resolved(test::make_mmar(tmp, cfg)); },
      "/train/lr_schedular: unknown section key 'lr_schedular'; did you mean 'lr_scheduler'?");
}

TEST(Resolver, DisabledMustBeBoolean) {
  test::TempDir tmp;
  std::string cfg = kExplicit;
  cfg.replace(cfg.find("{\"name\": \"LrScheduleHandler\""), 1, "{\"disabled\": \"yes\", ");
  test::expect_error_containing(
      [&] { resolved(test::make_mmar(tmp, cfg)); },
      "/train/handlers/0/disabled: expected a boolean (true or false), got string \"yes\"");
}

TEST(Resolver, ChecksFilesOfTheDatalist) {
  test::TempDir tmp;
  const auto f = test::make_mmar(tmp, kExplicit);
  test::write_text(
      tmp.file("mmar/data/dataset.json"),
      R"({"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}], "validation": [{"image": "a.nii.gz"}]})");
  test::write_text(tmp.file("mmar/data/a.nii.gz"), "x");
  Diagnostics diag;
  resolve_config(f, {{}, true}, builtin_registries(), diag);
  ASSERT_EQ(diag.errors().size(), 1u);
  EXPECT_NE(std::string(diag.errors()[0].what()).find("/train/dataset/data_list_key: "),
            std::string::npos);
  EXPECT_NE(std::string(diag.errors()[0].what()).find(":/training/0/label: file not found"),
            std::string::npos);
}

}  // namespace
}  // namespace barton::mmar
