// Interop suite: every real Clara 4.x config in $BARTON_CLARA_REFDATA/v4_pytorch (default
// ../shared/refdata/clara beside the checkout) resolves as it is; the other real configs fail with
// the precise, documented message (docs/mmar-format.md). Skipped, by name, where those files are
// absent.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "mmar/config_resolver.h"
#include "support/test_support.h"

namespace barton::mmar {
namespace {

ConfigFiles v4(const std::string& ref, const std::string& name) {
  return locate_config(ref + "/v4_pytorch/" + name, "", ref + "/v4_pytorch/environment.json");
}

TEST(RefData, ClaraSpleenTrainConfigResolves) {
  BARTON_NEEDS_CLARA_REFDATA(ref);
  const auto r = resolve_config(v4(ref, "config_train_Unet.json"));
  const auto& doc = r.doc.json();
  EXPECT_EQ(r.kind, ConfigKind::kTrain);
  EXPECT_EQ(doc["/train/trainer/args/max_epochs"_json_pointer], 2);
  EXPECT_DOUBLE_EQ(doc["/train/optimizer/args/lr"_json_pointer].get<double>(), 2e-4);
  EXPECT_EQ(doc["/train/handlers/0/disabled"_json_pointer],
            true);  // CheckpointLoader gated by dont_load_ckpt_model
  EXPECT_EQ(doc["/train/handlers/0/args/load_path"_json_pointer], "models/model.pt");
  EXPECT_EQ(doc["/validate/pre_transforms/2/name"_json_pointer],
            "Spacingd");  // {"ref": "Spacingd"} expanded
  EXPECT_EQ(doc["/train/dataset/data_file_base_dir"_json_pointer], "/claraDevDay/Data/sampleData/");
}

TEST(RefData, ClaraValidationAndInferenceConfigsResolve) {
  BARTON_NEEDS_CLARA_REFDATA(ref);
  for (const char* f : {"config_validation.json", "config_inference.json"}) {
    SCOPED_TRACE(f);
    const auto r = resolve_config(v4(ref, f));
    EXPECT_EQ(r.kind, ConfigKind::kEvaluate);
    EXPECT_EQ(r.doc.json()["/evaluator/args/network"_json_pointer], "@model");
  }
}

TEST(RefData, FinetuneSwitchEnablesTheCheckpointLoader) {
  BARTON_NEEDS_CLARA_REFDATA(ref);
  const auto r =
      resolve_config(v4(ref, "config_train_Unet.json"), {{"dont_load_ckpt_model=False"}, false});
  EXPECT_EQ(r.doc.json()["/train/handlers/0/disabled"_json_pointer], false);
}

TEST(RefData, CheckReportsOnlyTheMissingDataOfTheClaraMachine) {
  BARTON_NEEDS_CLARA_REFDATA(ref);
  Diagnostics diag;
  resolve_config(v4(ref, "config_train_Unet.json"), {{}, true}, builtin_registries(), diag);
  ASSERT_EQ(diag.errors().size(), 2u);
  for (const auto& e : diag.errors()) {
    EXPECT_NE(
        std::string(e.what()).find("missing datalist: /claraDevDay/Data/sampleData/dataset.json"),
        std::string::npos)
        << e.what();
  }
}

TEST(RefData, AutoMlTrainConfigResolvesKeepingItsSearchSpace) {
  BARTON_NEEDS_CLARA_REFDATA(ref);
  const auto r = resolve_config(locate_config(ref + "/v4_aiaa_fl_automl/trn_autoML_LR_LP.json", "",
                                              ref + "/v4_pytorch/environment.json"));
  EXPECT_TRUE(r.doc.json().contains("search"));
}

TEST(RefData, ClaraThreeConfigsFailWithThePreciseMessage) {
  BARTON_NEEDS_CLARA_REFDATA(ref);
  for (const char* f : {"v3_tensorflow/trn_base.json", "v3_tensorflow/config_validation.json",
                        "v3_perf_spleen/trn_BT_cache.json"}) {
    SCOPED_TRACE(f);
    test::expect_error_containing([&] { resolve_config(locate_config(ref + "/" + f)); },
                                  "this is a Clara 3.x (TensorFlow) config");
  }
}

TEST(RefData, OtherAppConfigsSayWhichCommandReadsThem) {
  BARTON_NEEDS_CLARA_REFDATA(ref);
  test::expect_error_containing(
      [&] { resolve_config(locate_config(ref + "/v4_aiaa_fl_automl/config_fed_server.json")); },
      "this is a federated-learning config");
  test::expect_error_containing(
      [&] { resolve_config(locate_config(ref + "/v4_aiaa_fl_automl/config_aiaa.json")); },
      "this is an AIAA model config");
  test::expect_error_containing(
      [&] { resolve_config(locate_config(ref + "/v4_aiaa_fl_automl/config_automl.json")); },
      "this is an AutoML config");
}

}  // namespace
}  // namespace barton::mmar
