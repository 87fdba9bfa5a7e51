// GPU checks (label "gpu"; scripts/gpu-check.sh runs them on a CUDA machine). Each test skips
// when LibTorch sees no CUDA device, so CPU-only CI reports them as skipped, never as passed work.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "engine/tiny_mmar.h"
#include "io/torch_file.h"
#include "support/test_support.h"

namespace barton {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::sh;

void make_mmar(const std::string& root) {
  sh(test::barton_bin() + " data synth " + root +
     "/data --cases 5 --size 32 32 12 --spacing 3 3 8 --seed 3");
  test::write_text(root + "/config/config_train.json", kTrainConfig);
  test::write_text(root + "/config/environment.json", kEnv);
}

// Training and validation on the GPU with fp16 autocast and loss scaling.
TEST(Gpu, TrainsAndValidatesWithMixedPrecision) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  test::TempDir m;
  make_mmar(m.path());
  const auto out =
      sh(test::barton_bin() + " train " + m.path() + " --device cuda --set epochs=2 amp=true");
  const auto stats = json::parse(std::ifstream(m.file("models/train_stats.json")));
  EXPECT_EQ(stats["device"].get<std::string>().rfind("cuda", 0), 0u) << stats.dump(2);
  EXPECT_TRUE(std::isfinite(stats["final_train_loss"].get<double>()));
  EXPECT_NE(out.find("gpu"), std::string::npos) << out;  // the epoch line's GPU figures
  const auto v = sh(test::barton_bin() + " validate " + m.path() + " --device cuda");
  EXPECT_NE(v.find("val_mean_dice"), std::string::npos) << v;
  // The checkpoint holds CPU tensors that load anywhere.
  const auto sd = io::load_state_dict_file(m.file("models/model.pt"));
  for (const auto& [k, t] : sd) EXPECT_TRUE(t.device().is_cpu()) << k;
}

// Two GPUs over NCCL take the same steps as one GPU with the double batch (fp32).
TEST(Gpu, TwoGpusOverNcclEqualOneGpuWithTheDoubleBatch) {
  if (!torch::cuda::is_available() || torch::cuda::device_count() < 2)
    GTEST_SKIP() << "fewer than 2 CUDA devices";
  test::TempDir one, two;
  make_mmar(one.path());
  make_mmar(two.path());
  auto cfg = json::parse(kTrainConfig);
  cfg["train"]["optimizer"] = json::parse(
      R"json({"name": "SGD", "args": {"params": "#@model.parameters()", "lr": 0.01}})json");
  cfg["train"]["handlers"] = json::array();
  cfg["train"].erase("lr_scheduler");
  for (const auto* r : {&one, &two})
    test::write_text(r->path() + "/config/config_train.json", cfg.dump(2));
  sh(test::barton_bin() + " train " + one.path() + " --device cuda --set epochs=1");
  const auto out = sh(test::barton_bin() + " train " + two.path() +
                      " --nproc 2 --set epochs=1 /train/dataloader/args/batch_size=1");
  EXPECT_NE(out.find("NCCL"), std::string::npos) << out;
  const auto a = io::load_state_dict_file(one.file("models/checkpoint_last.pt"));
  const auto b = io::load_state_dict_file(two.file("models/checkpoint_last.pt"));
  for (const auto& [k, v] : a) EXPECT_TRUE(torch::allclose(v, b.at(k), 1e-3, 1e-5)) << k;
}

}  // namespace
}  // namespace barton
