// barton export / infer --model / verify end to end on the tiny MMAR of the engine tests: the plan
// gives the checkpoint's segmentation, a TorchScript model.ts written by Python (MONAI's module
// layout) is served by barton infer, and verify catches a changed byte.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "engine/tiny_mmar.h"
#include "io/image.h"
#include "support/test_support.h"

namespace barton {
namespace {

namespace fs = std::filesystem;

using test::sh;

/// A trained tiny MMAR (one epoch), made once for the tests of this file.
const std::string& trained_mmar() {
  static test::TempDir dir;
  static const bool made = [] {
    const auto root = dir.path();
    sh(test::barton_bin() + " data synth " + root +
       "/data --cases 4 --size 32 32 12 --spacing 3 3 8 --seed 3");
    test::write_text(root + "/config/config_train.json", kTrainConfig);
    test::write_text(root + "/config/environment.json", kEnv);
    test::write_text(root + "/config/config_inference.json", kInferConfig);
    sh("BARTON_THREADS=1 " + test::barton_bin() + " train " + root + " --set epochs=2");
    return true;
  }();
  (void)made;
  return dir.path();
}

torch::Tensor seg(const std::string& dir) {
  return io::read_image(dir + "/case_3/case_3_trans.nii.gz").data;
}

TEST(ExportCli, PlanGivesTheCheckpointSegmentationAndVerifyGuardsTheFiles) {
  const auto& mmar = trained_mmar();
  test::TempDir tmp;
  const auto out = sh(test::barton_bin() + " export " + mmar + " --out " + tmp.file("export"));
  EXPECT_NE(out.find("input  INPUT__0 [-1, 1, 16, 16, 16]"), std::string::npos)
      << out;  // roi_size of config_inference
  EXPECT_NE(out.find("output OUTPUT__0 [-1, 2, 16, 16, 16]"), std::string::npos) << out;
  const auto manifest = nlohmann::json::parse(read_file(tmp.file("export/manifest.json")));
  EXPECT_EQ(manifest["network"]["name"], "UNet");
  EXPECT_EQ(manifest["source"]["checkpoint_sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(manifest["training"].contains("best_validation_metric"));
  EXPECT_EQ(manifest["files"].size(), 4u);

  const auto input = mmar + "/data/imagesTr/case_3.nii.gz";
  sh(test::barton_bin() + " infer " + mmar + " --input " + input + " --output " + tmp.file("ckpt"));
  // The plan alone: no MMAR on the command line.
  sh("cd " + tmp.path() + " && " + test::barton_bin() +
     " infer --model export/model.plan --input " + input + " --output plan");
  const auto a = seg(tmp.file("ckpt")), b = seg(tmp.file("plan"));
  ASSERT_EQ(a.sizes(), b.sizes());
  const auto fg_a = a > 0, fg_b = b > 0;
  const double inter = (fg_a & fg_b).sum().item<double>(),
               total = fg_a.sum().item<double>() + fg_b.sum().item<double>();
  ASSERT_GT(total, 0);
  EXPECT_DOUBLE_EQ(2 * inter / total, 1.0);
  EXPECT_TRUE(a.equal(b));

  EXPECT_NE(sh(test::barton_bin() + " verify " + tmp.file("export")).find("verify: 4 files match"),
            std::string::npos);
  auto bytes = read_file(tmp.file("export/model.plan"));
  bytes[100] = static_cast<char>(bytes[100] ^ 0x20);
  write_file_atomic(tmp.file("export/model.plan"), bytes);
  const auto bad = sh(test::barton_bin() + " verify " + tmp.file("export"), 1);
  EXPECT_NE(bad.find("MODIFIED  model.plan"), std::string::npos) << bad;
  EXPECT_NE(bad.find("1 modified"), std::string::npos) << bad;
}

TEST(ExportCli, PythonTorchScriptIsServedByInfer) {
  const auto& mmar = trained_mmar();
  test::TempDir tmp;
  const auto spec = nlohmann::json::parse(kTrainConfig)["train"]["model"];
  std::string args = spec["args"].dump();
  const auto py =
      sh("/usr/bin/python3 " + test::source_dir() + "/tests/export/write_torchscript.py " + mmar +
         "/models/model.pt '" + nlohmann::json{{"name", "UNet"}, {"args", spec["args"]}}.dump() +
         "' " + tmp.path() + " 1,1,16,16,16");
  ASSERT_TRUE(fs::exists(tmp.file("model.ts"))) << py;
  // The module runs in Barton's LibTorch exactly as in Python.
  auto m = torch::jit::load(tmp.file("model.ts"));
  m.eval();
  const auto xb = read_file(tmp.file("x.bin")), yb = read_file(tmp.file("y.bin"));
  const auto x =
      torch::from_blob(const_cast<char*>(xb.data()), {1, 1, 16, 16, 16}, torch::kFloat).clone();
  const auto y =
      torch::from_blob(const_cast<char*>(yb.data()), {1, 2, 16, 16, 16}, torch::kFloat).clone();
  torch::NoGradGuard ng;
  EXPECT_LT((m.forward({x}).toTensor() - y).abs().max().item<double>(), 1e-5);
  // barton infer serves it, and it segments as Barton's own UNet with the same weights does.
  const auto input = mmar + "/data/imagesTr/case_3.nii.gz";
  const auto out = sh(test::barton_bin() + " infer " + mmar + " --model " + tmp.file("model.ts") +
                      " --input " + input + " --output " + tmp.file("ts"));
  EXPECT_NE(out.find("model.ts"), std::string::npos) << out;
  sh(test::barton_bin() + " infer " + mmar + " --input " + input + " --output " + tmp.file("ckpt"));
  EXPECT_TRUE(seg(tmp.file("ts")).equal(seg(tmp.file("ckpt"))));
}

TEST(ExportCli, ClearErrors) {
  const auto& mmar = trained_mmar();
  test::TempDir tmp;
  auto out = sh(test::barton_bin() + " export " + mmar + " --ckpt " + tmp.file("none.pt"), 1);
  EXPECT_NE(out.find("none.pt: the checkpoint to export does not exist"), std::string::npos) << out;
  out = sh(
      test::barton_bin() + " export " + mmar + " --input-shape 1,1,16,x --out " + tmp.file("e"), 1);
  EXPECT_NE(out.find("--input-shape: '1,1,16,x' is not a list of positive integers"),
            std::string::npos)
      << out;
  out = sh(test::barton_bin() + " infer --model " + mmar + "/models/model.pt --input " + mmar +
               "/data/imagesTr/case_3.nii.gz",
           1);
  EXPECT_NE(out.find("is not a Barton inference plan"), std::string::npos) << out;
  out = sh(test::barton_bin() + " export " + mmar + " --half --bf16 --out " + tmp.file("e"), 1);
  EXPECT_NE(out.find("--half and --bf16 exclude each other"), std::string::npos) << out;
  sh(test::barton_bin() + " export " + mmar + " --format barton --out " + tmp.file("p"));
  out = sh(test::barton_bin() + " infer --model " + tmp.file("p/model.plan"), 1);
  EXPECT_NE(out.find("--model with a plan and no MMAR needs --input"), std::string::npos) << out;
  out = sh(test::barton_bin() + " infer " + mmar + " --model " + tmp.file("p/model.plan") +
               " --ckpt " + mmar + "/models/model.pt",
           1);
  EXPECT_NE(out.find("give --model or --ckpt, not both"), std::string::npos) << out;
  out = sh(test::barton_bin() + " infer --input " + mmar + "/data/imagesTr/case_3.nii.gz", 1);
  EXPECT_NE(out.find("infer needs an MMAR, or --model with a Barton inference plan"),
            std::string::npos)
      << out;
  out = sh(test::barton_bin() + " verify " + tmp.path(), 1);
  EXPECT_NE(out.find("no manifest"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp.file("e")));
}

}  // namespace
}  // namespace barton
