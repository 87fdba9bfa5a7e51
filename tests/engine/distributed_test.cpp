// Data-parallel training on c10d (Gloo over loopback), through `barton train --nproc`.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/torch_file.h"
#include "support/test_support.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace barton {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::sh;

// A small Clara-style training config (no validation): UNet without BatchNorm, DiceLoss, SGD.
const char* kConfig = R"json({
  "epochs": 2, "learning_rate": 0.01, "determinism": {"random_seed": 3},
  "train": {
    "loss": {"name": "DiceLoss", "args": {"to_onehot_y": true, "softmax": true}},
    "optimizer": {"name": "SGD", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"}},
    "model": {"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
              "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1}},
    "pre_transforms": [
      {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
      {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
      {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [4.0, 4.0, 4.0], "mode": ["bilinear", "nearest"]}},
      {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0, "clip": true}},
      {"name": "RandCropByPosNegLabeld", "args": {"keys": ["image", "label"], "label_key": "label",
        "spatial_size": [16, 16, 16], "pos": 1, "neg": 1, "num_samples": 2, "image_key": "image", "image_threshold": 0}}
    ],
    "dataset": {"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "training", "args": {"transform": "@pre_transforms"}},
    "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 2, "shuffle": true}},
    "handlers": [{"name": "StatsHandler", "rank": 0, "args": {"tag_name": "train_loss"}}],
    "trainer": {"name": "SupervisedTrainer", "args": {"max_epochs": "{epochs}", "train_data_loader": "@dataloader",
      "network": "@model", "loss_function": "@loss", "optimizer": "@optimizer", "train_handlers": "@handlers"}}
  }
})json";

void make_mmar(const std::string& root, const std::string& data) {
  test::write_text(root + "/config/config_train.json", kConfig);
  test::write_text(root + "/config/environment.json",
                   R"({"DATA_ROOT": ")" + data + R"(", "DATASET_JSON": ")" + data +
                       R"(/four.json", "MMAR_CKPT_DIR": "models"})");
}

// Six small synthetic CT cases in `data`, and four.json: the datalist with the first four for
// training.
void synth_four_cases(const std::string& data) {
  sh(test::barton_bin() + " data synth " + data +
     " --cases 6 --size 32 32 12 --spacing 3 3 8 --seed 4");
  auto dl = json::parse(std::ifstream(data + "/dataset.json"));
  json four = json::array();
  for (std::size_t i = 0; i < 4; ++i) four.push_back(dl["training"][i]);
  dl["training"] = four;
  test::write_text(data + "/four.json", dl.dump());
}

// 2 ranks with batch 1 take the same steps as 1 rank with batch 2: each rank's shard of the
// shuffled order is the other half of each global batch, and the averaged gradient is the
// batch-2 gradient (DiceLoss means over the batch; InstanceNorm is per sample).
TEST(DistributedTest, TwoRanksEqualOneRankWithTheDoubleBatch) {
  test::TempDir data, one, two;
  synth_four_cases(data.path());
  make_mmar(one.path(), data.path());
  make_mmar(two.path(), data.path());
  sh("BARTON_THREADS=1 " + test::barton_bin() + " train " + one.path());
  // Gradients reduced while backward runs (GradReducer), as on GPUs.
  const auto out = sh("BARTON_DDP_OVERLAP=1 " + test::barton_bin() + " train " + two.path() +
                      " --nproc 2 --set /train/dataloader/args/batch_size=1");
  EXPECT_NE(out.find("Data-parallel training: 2 ranks"), std::string::npos) << out;
  EXPECT_NE(out.find("2 iteration(s) per epoch"), std::string::npos) << out;
  const auto a = io::load_state_dict_file(one.path() + "/models/checkpoint_last.pt");
  const auto b = io::load_state_dict_file(two.path() + "/models/checkpoint_last.pt");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) {
    EXPECT_TRUE(at::allclose(v, b.at(k), 1e-4, 1e-6))
        << k << " max diff " << (v - b.at(k)).abs().max().item<double>();
  }
  // Only rank 0 wrote.
  EXPECT_FALSE(fs::exists(two.path() + "/models/train_stats.json.tmp"));
  EXPECT_TRUE(fs::exists(two.path() + "/models/train_stats.json"));
}

// With BatchNorm, 2 ranks x batch 1 equal 1 rank x batch 2 only when the statistics are
// synchronised (--sync-bn): each rank alone sees half the batch.
TEST(DistributedTest, SyncBatchNormTwoRanksEqualOneRankWithTheDoubleBatch) {
  test::TempDir data, one, two, unsynced;
  synth_four_cases(data.path());
  auto cfg = json::parse(kConfig);
  cfg["train"]["model"]["args"]["norm"] = "batch";
  for (const auto* root : {&one, &two, &unsynced}) {
    make_mmar(root->path(), data.path());
    test::write_text(root->path() + "/config/config_train.json", cfg.dump(2));
  }
  sh("BARTON_THREADS=1 " + test::barton_bin() + " train " + one.path());
  sh(test::barton_bin() + " train " + two.path() +
     " --nproc 2 --sync-bn --set /train/dataloader/args/batch_size=1");
  sh(test::barton_bin() + " train " + unsynced.path() +
     " --nproc 2 --set /train/dataloader/args/batch_size=1");
  const auto a = io::load_state_dict_file(one.path() + "/models/checkpoint_last.pt");
  const auto b = io::load_state_dict_file(two.path() + "/models/checkpoint_last.pt");
  const auto c = io::load_state_dict_file(unsynced.path() + "/models/checkpoint_last.pt");
  ASSERT_EQ(a.size(), b.size());
  int running = 0;
  double unsynced_diff = 0;
  for (const auto& [k, v] : a) {
    const auto x = v.to(at::kDouble), y = b.at(k).to(at::kDouble);
    EXPECT_TRUE(at::allclose(x, y, 1e-4, 1e-5))
        << k << " max diff " << (x - y).abs().max().item<double>();
    running += k.find("running_var") != std::string::npos;
    unsynced_diff =
        std::max(unsynced_diff, (x - c.at(k).to(at::kDouble)).abs().max().item<double>());
  }
  EXPECT_GT(running, 0);           // the model has BatchNorm
  EXPECT_GT(unsynced_diff, 1e-3);  // and without synchronisation it trains differently
}

// A rank that dies (SIGKILL) ends the job with a message naming it, and no rank is left running.
TEST(DistributedTest, AKilledRankStopsTheJob) {
  test::TempDir data, m;
  sh(test::barton_bin() + " data synth " + data.path() +
     " --cases 6 --size 32 32 12 --spacing 3 3 8 --seed 4");
  fs::copy_file(data.path() + "/dataset.json", data.path() + "/four.json");
  make_mmar(m.path(), data.path());
  const std::string log = m.file("run.log");
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    const std::string bin = test::barton_bin();
    FILE* f = freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), 2);
    execl(bin.c_str(), bin.c_str(), "train", m.path().c_str(), "--nproc", "2", "--dist-timeout",
          "30", "--set", "epochs=1000", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until rank 0 trains, then kill rank 1.
  pid_t victim = -1;
  for (int i = 0; i < 3000 && victim < 0; ++i) {
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.find("Epoch 2/1000") != std::string::npos) {
      std::string kids;
      test::run_command("pgrep -P " + std::to_string(launcher), &kids, false);
      std::istringstream ks(kids);
      for (pid_t p; ks >> p;) {
        std::ifstream envf("/proc/" + std::to_string(p) + "/environ");
        const std::string e((std::istreambuf_iterator<char>(envf)), {});
        if (e.find(std::string("RANK=1") + '\0') != std::string::npos &&
            e.find("LOCAL_RANK=1") != std::string::npos)
          victim = p;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(victim, 0) << "rank 1 not found";
  std::string before;
  test::run_command("pgrep -P " + std::to_string(launcher), &before, false);
  kill(victim, SIGKILL);
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  waitpid(launcher, &status, 0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_LT(secs, 30.0);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("rank 1 was killed by signal 9; the other ranks were stopped"),
            std::string::npos)
      << text;
  // No rank is left running.
  std::istringstream bs(before);
  for (pid_t p; bs >> p;)
    EXPECT_NE(::kill(p, 0) == 0 && fs::exists("/proc/" + std::to_string(p) + "/exe"), true) << p;
  // The job resumes from rank 0's last full-state checkpoint and finishes one more epoch.
  int done = 0;
  for (std::size_t at = text.find("finished in"); at != std::string::npos;
       at = text.find("finished in", at + 1)) {
    const auto start = text.rfind("Epoch ", at) + 6;
    done = std::max(done, std::stoi(text.substr(start, text.find('/', start) - start)));
  }
  ASSERT_GE(done, 1) << text;
  const auto resumed = sh(test::barton_bin() + " train " + m.path() +
                          " --nproc 2 --resume --set epochs=" + std::to_string(done + 1));
  EXPECT_NE(resumed.find(fmt::format("Epoch {}/{} finished", done + 1, done + 1)),
            std::string::npos)
      << resumed;
}

// The validate section of the validation tests: MeanDice on the "validation" list, the best
// checkpoint saved by rank 0.
json validate_section() {
  return json::parse(R"json({
    "pre_transforms": [{"ref": "LoadImaged"}, {"ref": "EnsureChannelFirstd"}, {"ref": "Spacingd"}, {"ref": "ScaleIntensityRanged"}],
    "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "validation", "args": {"transform": "@pre_transforms"}},
    "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 1}},
    "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [16, 16, 16]}},
    "handlers": [{"name": "StatsHandler", "rank": 0, "args": {}},
                 {"name": "CheckpointSaver", "rank": 0, "args": {"save_dir": "{MMAR_CKPT_DIR}",
                  "save_dict": {"model": "@model", "train_conf": "@conf"}, "save_key_metric": true}}],
    "post_transforms": [{"name": "Activationsd", "args": {"keys": "pred", "softmax": true}},
                        {"name": "AsDiscreted", "args": {"keys": ["pred", "label"], "argmax": [true, false], "to_onehot": 2}}],
    "key_metric": {"name": "MeanDice", "log_label": "val_mean_dice", "args": {"include_background": false}},
    "evaluator": {"name": "SupervisedEvaluator", "args": {"val_data_loader": "@dataloader", "network": "@model",
      "inferer": "@inferer", "postprocessing": "@post_transforms", "key_val_metric": "@key_metric", "val_handlers": "@handlers"}}
  })json");
}

// Two "nodes" on one machine: two launchers with different node ranks meet at one rendezvous
// port; rank 0 (node 0) validates and writes the checkpoints.
TEST(DistributedTest, TwoNodesTrainAndValidate) {
  test::TempDir data, m;
  sh(test::barton_bin() + " data synth " + data.path() +
     " --cases 6 --size 32 32 12 --spacing 3 3 8 --seed 4");
  fs::copy_file(data.path() + "/dataset.json", data.path() + "/four.json");
  auto cfg = json::parse(kConfig);
  cfg["train"]["handlers"].push_back(
      {{"name", "ValidationHandler"}, {"args", {{"validator", "@evaluator"}, {"interval", 1}}}});
  cfg["validate"] = validate_section();
  make_mmar(m.path(), data.path());
  test::write_text(m.path() + "/config/config_train.json", cfg.dump(2));
  // A free port for the rendezvous.
  std::string port;
  test::run_command(
      "/usr/bin/python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); "
      "print(s.getsockname()[1])\"",
      &port, false);
  port.erase(port.find_last_not_of(" \n") + 1);
  const std::string common = test::barton_bin() + " train " + m.path() +
                             " --nproc 1 --nnodes 2 --master-addr 127.0.0.1 --master-port " + port +
                             " --dist-timeout 60";
  std::string out0, out1;
  std::thread node1(
      [&] { test::run_command("BARTON_THREADS=1 " + common + " --node-rank 1", &out1); });
  const int rc0 = test::run_command("BARTON_THREADS=1 " + common + " --node-rank 0", &out0);
  node1.join();
  EXPECT_EQ(rc0, 0) << out0 << "\n--- node 1:\n" << out1;
  EXPECT_NE(out0.find("Data-parallel training: 2 ranks"), std::string::npos) << out0;
  EXPECT_NE(out0.find("Validation at epoch 2 on 1 case(s)"), std::string::npos) << out0;
  EXPECT_EQ(out1.find("Validation at epoch"), std::string::npos) << out1;
  EXPECT_TRUE(fs::exists(m.path() + "/models/model.pt"));
  EXPECT_TRUE(fs::exists(m.path() + "/models/train_stats.json"));
}

// Validation is split across ranks (MONAI's even_divisible=False: 3 cases -> 2 + 1, none twice)
// and the metrics are merged: the data-parallel value equals a single-process validation of the
// same checkpoint, with the same three cases in the report.
TEST(DistributedTest, SplitValidationMatchesOneProcess) {
  test::TempDir data, m;
  sh(test::barton_bin() + " data synth " + data.path() +
     " --cases 7 --size 32 32 12 --spacing 3 3 8 --seed 4");
  auto dl = json::parse(std::ifstream(data.path() + "/dataset.json"));
  json all = json::array(), train = json::array(), val = json::array();
  for (const char* k : {"training", "validation"}) {
    for (const auto& c : dl[k]) all.push_back(c);
  }
  ASSERT_EQ(all.size(), 7u);
  for (std::size_t i = 0; i < 4; ++i) train.push_back(all[i]);
  for (std::size_t i = 4; i < 7; ++i) val.push_back(all[i]);
  dl["training"] = train;
  dl["validation"] = val;
  test::write_text(data.path() + "/four.json", dl.dump());
  auto cfg = json::parse(kConfig);
  cfg["epochs"] = 1;
  cfg["train"]["handlers"].push_back(
      {{"name", "ValidationHandler"}, {"args", {{"validator", "@evaluator"}, {"interval", 1}}}});
  cfg["validate"] = validate_section();
  cfg["validate"]["handlers"].push_back(json::parse(
      R"({"name": "MetricsSaver", "args": {"save_dir": "{MMAR_EVAL_OUTPUT_PATH}", "metric_details": "*"}})"));
  cfg["validate"]["additional_metrics"] =
      json::parse(R"([{"name": "Accuracy", "log_label": "val_acc"}])");
  cfg["validate"]["evaluator"]["args"]["additional_metrics"] = "@additional_metrics";
  make_mmar(m.path(), data.path());
  test::write_text(m.path() + "/config/config_train.json", cfg.dump(2));
  const auto out = sh("BARTON_THREADS=1 " + test::barton_bin() + " train " + m.path() +
                      " --nproc 2 --scale-lr --set MMAR_EVAL_OUTPUT_PATH=" + m.file("eval_dp"));
  EXPECT_NE(out.find("Learning rate scaled by the world size: x2 (first group 0.02)"),
            std::string::npos)
      << out;
  sh("BARTON_THREADS=1 " + test::barton_bin() + " validate " + m.path() +
     " -c config_train.json --ckpt " + m.file("models/model.pt") + " --output " +
     m.file("eval_one"));
  const auto dp = json::parse(std::ifstream(m.file("eval_dp/metrics_summary.json")));
  const auto one = json::parse(std::ifstream(m.file("eval_one/metrics_summary.json")));
  ASSERT_EQ(dp["cases"], 3) << dp.dump(2);
  ASSERT_EQ(one["cases"], 3);
  for (const char* k : {"val_mean_dice", "val_acc"}) {
    EXPECT_NEAR(dp["metrics"][k].get<double>(), one["metrics"][k].get<double>(), 1e-9) << k;
  }
  std::set<std::string> a, b;
  for (const auto& c : dp["per_case"]["val_mean_dice"]) a.insert(c["case"].get<std::string>());
  for (const auto& c : one["per_case"]["val_mean_dice"]) b.insert(c["case"].get<std::string>());
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b);
  const auto stats = json::parse(std::ifstream(m.file("models/train_stats.json")));
  EXPECT_NEAR(stats["best_validation_metric"].get<double>(),
              one["metrics"]["val_mean_dice"].get<double>(), 1e-9);
}

}  // namespace
}  // namespace barton
