// Every real Clara 4.x config in ../shared/refdata/clara/v4_pytorch resolves as it is; the other
// real configs fail with the precise, documented message (docs/mmar-format.md).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "mmar/config_resolver.h"
#include "support/test_support.h"

namespace barton::mmar {
namespace {

std::string refpath(const std::string& p) { return test::shared_dir() + "/refdata/clara/" + p; }

ConfigFiles v4(const std::string& name) {
  return locate_config(refpath("v4_pytorch/" + name), "", refpath("v4_pytorch/environment.json"));
}

TEST(RefData, ClaraSpleenTrainConfigResolves) {
  const auto r = resolve_config(v4("config_train_Unet.json"));
  const auto& doc = r.doc.json();
  EXPECT_EQ(r.kind, ConfigKind::kTrain);
  EXPECT_EQ(doc["/train/trainer/args/max_epochs"_json_pointer], 2);
  EXPECT_DOUBLE_EQ(doc["/train/optimizer/args/lr"_json_pointer].get<double>(), 2e-4);
  EXPECT_EQ(doc["/train/handlers/0/disabled"_json_pointer], true);  // CheckpointLoader gated by dont_load_ckpt_model
  EXPECT_EQ(doc["/train/handlers/0/args/load_path"_json_pointer], "models/model.pt");
  EXPECT_EQ(doc["/validate/pre_transforms/2/name"_json_pointer], "Spacingd");  // {"ref": "Spacingd"} expanded
  EXPECT_EQ(doc["/train/dataset/data_file_base_dir"_json_pointer], "/claraDevDay/Data/sampleData/");
}

TEST(RefData, ClaraValidationAndInferenceConfigsResolve) {
  for (const char* f : {"config_validation.json", "config_inference.json"}) {
    SCOPED_TRACE(f);
    const auto r = resolve_config(v4(f));
    EXPECT_EQ(r.kind, ConfigKind::kEvaluate);
    EXPECT_EQ(r.doc.json()["/evaluator/args/network"_json_pointer], "@model");
  }
}

TEST(RefData, FinetuneSwitchEnablesTheCheckpointLoader) {
  const auto r = resolve_config(v4("config_train_Unet.json"), {{"dont_load_ckpt_model=False"}, false});
  EXPECT_EQ(r.doc.json()["/train/handlers/0/disabled"_json_pointer], false);
}

TEST(RefData, CheckReportsOnlyTheMissingDataOfTheClaraMachine) {
  Diagnostics diag;
  resolve_config(v4("config_train_Unet.json"), {{}, true}, builtin_registries(), diag);
  ASSERT_EQ(diag.errors().size(), 2u);
  for (const auto& e : diag.errors()) {
    EXPECT_NE(std::string(e.what()).find("missing datalist: /claraDevDay/Data/sampleData/dataset.json"), std::string::npos)
        << e.what();
  }
}

TEST(RefData, AutoMlTrainConfigResolvesKeepingItsSearchSpace) {
  const auto r = resolve_config(locate_config(refpath("v4_aiaa_fl_automl/trn_autoML_LR_LP.json"), "",
                                              refpath("v4_pytorch/environment.json")));
  EXPECT_TRUE(r.doc.json().contains("search"));
}

TEST(RefData, ClaraThreeConfigsFailWithThePreciseMessage) {
  for (const char* f : {"v3_tensorflow/trn_base.json", "v3_tensorflow/config_validation.json",
                        "v3_perf_spleen/trn_BT_cache.json"}) {
    SCOPED_TRACE(f);
    test::expect_error_containing([&] { resolve_config(locate_config(refpath(f))); },
                                  "this is a Clara 3.x (TensorFlow) config");
  }
}

TEST(RefData, OtherAppConfigsSayWhichCommandReadsThem) {
  test::expect_error_containing([&] { resolve_config(locate_config(refpath("v4_aiaa_fl_automl/config_fed_server.json"))); },
                                "this is a federated-learning config");
  test::expect_error_containing([&] { resolve_config(locate_config(refpath("v4_aiaa_fl_automl/config_aiaa.json"))); },
                                "this is an AIAA model config");
  test::expect_error_containing([&] { resolve_config(locate_config(refpath("v4_aiaa_fl_automl/config_automl.json"))); },
                                "this is an AutoML config");
}

}  // namespace
}  // namespace barton::mmar
