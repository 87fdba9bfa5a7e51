// Networks, losses, metrics, optimizers, schedules and sliding-window inference against the PyTorch
// twin of MONAI's definitions (tests/golden/monai_twin/run_nn.py), run with /usr/bin/python3.
#include "nets/nn_twin.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/config.h"
#include "engine/inferer.h"
#include "io/torch_file.h"
#include "losses/loss.h"
#include "metrics/metrics.h"
#include "mmar/registries.h"
#include "nets/network.h"
#include "optim/optim.h"
#include "support/test_support.h"

namespace barton {
namespace {

using json = nlohmann::json;

using Twin = test::NnTwin;
using test::max_diff;

const char* kUNet =
    R"({"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [8, 16, 32], "strides": [2, 2],
                        "num_res_units": 2, "norm": "batch"})";

TEST(NnTwin, PyTorchUNetStateDictLoadsIntoBartonAndGivesTheSameOutput) {
  Twin twin;
  const auto x = torch::randn({2, 1, 16, 16, 16});
  const auto r = twin.run({{"kind", "network"},
                           {"name", "UNet"},
                           {"args", json::parse(kUNet)},
                           {"seed", 0},
                           {"input", twin.spec(x)}});
  auto net = builtin_registries().networks.create(
      ConfigNode::parse(std::string("{\"name\": \"UNet\", \"args\": ") + kUNet + "}", "n.json"));
  // Same keys, same order as PyTorch lists them.
  std::vector<std::string> py_keys;
  for (const auto& e : r["state_dict"]) py_keys.push_back(e[0]);
  EXPECT_EQ(nets::state_dict_keys(*net), py_keys);
  EXPECT_EQ(nets::count_parameters(*net), r["num_parameters"].get<int64_t>());
  nets::load_state_dict(*net, io::load_state_dict_file(r["state_dict_path"]));
  net->eval();
  torch::NoGradGuard g;
  EXPECT_LT(max_diff(net->forward(x), Twin::load(r["output"])), 1e-5);
}

TEST(NnTwin, BartonCheckpointLoadsIntoThePythonNetwork) {
  Twin twin;
  auto net = builtin_registries().networks.create(
      ConfigNode::parse(std::string("{\"name\": \"UNet\", \"args\": ") + kUNet + "}", "n.json"));
  net->eval();
  const auto path = twin.dir().file("barton.pt");
  io::save_checkpoint_file(path, nets::state_dict(*net), {{"epoch", 3}});
  // Python reads it as a dict: wrap check plus forward through the twin.
  std::string out;
  test::write_text(twin.dir().file("r.py"),
                   "import torch\nd = torch.load('" + path +
                       "')\nprint(sorted(d.keys()), d['epoch'], len(d['model']))\n");
  ASSERT_EQ(test::run_command("/usr/bin/python3 " + twin.dir().file("r.py"), &out, false), 0)
      << out;
  EXPECT_NE(out.find("['epoch', 'model'] 3"), std::string::npos) << out;
  const auto x = torch::randn({1, 1, 16, 16, 16});
  // The twin's network_from_state reads a plain state_dict file: give it the inner dict.
  io::save_checkpoint_file(twin.dir().file("sd.pt"), nets::state_dict(*net));
  test::write_text(twin.dir().file("u.py"),
                   "import torch\nd = torch.load('" + twin.dir().file("sd.pt") +
                       "')\ntorch.save(d['model'], '" + twin.dir().file("plain.pt") + "')\n");
  ASSERT_EQ(test::run_command("/usr/bin/python3 " + twin.dir().file("u.py"), &out, false), 0)
      << out;
  const auto r = twin.run({{"kind", "network_from_state"},
                           {"name", "UNet"},
                           {"args", json::parse(kUNet)},
                           {"state_dict_path", twin.dir().file("plain.pt")},
                           {"input", twin.spec(x)}});
  torch::NoGradGuard g;
  EXPECT_LT(max_diff(net->forward(x), Twin::load(r["output"])), 1e-5);
}

void check_loss(Twin& twin,
                const std::string& name,
                const std::string& args,
                const torch::Tensor& input,
                const torch::Tensor& target,
                const torch::Tensor& mask = {}) {
  SCOPED_TRACE(name + " " + args);
  json req = {{"kind", "loss"},
              {"name", name},
              {"args", json::parse(args)},
              {"input", twin.spec(input)},
              {"target", twin.spec(target)}};
  if (mask.defined()) req["mask"] = twin.spec(mask);
  const auto r = twin.run(req);
  auto loss = builtin_registries().losses.create(
      ConfigNode::parse("{\"name\": \"" + name + "\", \"args\": " + args + "}", "l.json"));
  auto x = input.to(torch::kDouble).detach().requires_grad_(true);
  const auto v = mask.defined()
                     ? loss->forward(x, target.to(torch::kDouble), mask.to(torch::kDouble))
                     : loss->forward(x, target.to(torch::kDouble));
  v.sum().backward();
  const auto ref = Twin::load(r["value"]);
  EXPECT_EQ(v.numel(), ref.numel());
  EXPECT_LT(max_diff(v.reshape(-1), ref.reshape(-1)), 1e-6);
  EXPECT_LT(max_diff(x.grad(), Twin::load(r["grad_input"])), 1e-6);
}

TEST(NnTwin, LossesMatchMonaiValuesAndGradients) {
  Twin twin;
  torch::manual_seed(1);
  const auto logits = torch::randn({2, 3, 6, 5, 4});
  const auto labels = torch::randint(0, 3, {2, 1, 6, 5, 4}).to(torch::kFloat);
  auto sparse = labels.clone();
  sparse.index_put_({1}, 0.0);  // an all-background item
  const auto onehot = losses::to_one_hot(labels, 3);
  check_loss(twin, "DiceLoss", R"({"to_onehot_y": true, "softmax": true})", logits, labels);
  check_loss(
      twin, "DiceLoss",
      R"({"to_onehot_y": true, "softmax": true, "include_background": false, "batch": true})",
      logits, sparse);
  check_loss(
      twin, "DiceLoss",
      R"({"sigmoid": true, "squared_pred": true, "jaccard": true, "reduction": "none", "weight": [1, 2, 3]})",
      logits, onehot);
  check_loss(twin, "GeneralizedDiceLoss", R"({"to_onehot_y": true, "softmax": true})", logits,
             sparse);
  check_loss(twin, "TverskyLoss",
             R"({"to_onehot_y": true, "softmax": true, "alpha": 0.3, "beta": 0.7})", logits,
             labels);
  check_loss(twin, "FocalLoss", R"({"to_onehot_y": true, "gamma": 2.0, "alpha": 0.25})", logits,
             labels);
  check_loss(
      twin, "FocalLoss",
      R"({"to_onehot_y": true, "use_softmax": true, "weight": [1, 2, 0.5], "reduction": "sum"})",
      logits, labels);
  check_loss(twin, "DiceCELoss",
             R"({"to_onehot_y": true, "softmax": true, "lambda_ce": 0.7, "label_smoothing": 0.1})",
             logits, labels);
  check_loss(twin, "DiceFocalLoss", R"({"to_onehot_y": true, "softmax": true, "gamma": 1.5})",
             logits, labels);
  {
    // Deep supervision: DynUNet's stacked heads [B, heads, C, *S], target resized per head.
    const auto heads = torch::randn({2, 3, 3, 6, 5, 4});
    const std::string args =
        R"({"loss": {"name": "DiceLoss", "args": {"to_onehot_y": true, "softmax": true}}, "weight_mode": "exp"})";
    const auto r = twin.run({{"kind", "loss"},
                             {"name", "DeepSupervisionLoss"},
                             {"args", json::parse(args)},
                             {"input", twin.spec(heads)},
                             {"unbind_dim", 1},
                             {"target", twin.spec(labels)}});
    auto loss = builtin_registries().losses.create(
        ConfigNode::parse("{\"name\": \"DeepSupervisionLoss\", \"args\": " + args + "}", "l.json"));
    EXPECT_LT(
        max_diff(loss->forward(heads, labels).reshape(-1), Twin::load(r["value"]).reshape(-1)),
        1e-5);
  }
  {
    // 2D shapes too.
    const auto l2 = torch::randn({3, 4, 9, 7});
    const auto t2 = torch::randint(0, 4, {3, 1, 9, 7}).to(torch::kFloat);
    check_loss(
        twin, "DiceCELoss",
        R"({"to_onehot_y": true, "softmax": true, "include_background": false, "ce_weight": [0.5, 1, 2, 1]})",
        l2, t2);
    check_loss(twin, "FocalLoss",
               R"({"to_onehot_y": true, "include_background": false, "reduction": "none"})", l2,
               t2);
    check_loss(twin, "DiceLoss",
               R"({"to_onehot_y": true, "sigmoid": true, "smooth_nr": 0, "smooth_dr": 1e-6})", l2,
               t2);
  }
  const auto mask = (torch::rand({2, 1, 6, 5, 4}) > 0.3).to(torch::kFloat);
  check_loss(twin, "MaskedDiceLoss", R"({"sigmoid": true})", logits.slice(1, 0, 1),
             (labels > 0).to(torch::kFloat), mask);
}

TEST(NnTwin, MetricsMatchMonaiIncludingEmptyCasesAndSpacing) {
  Twin twin;
  torch::manual_seed(2);
  auto blob = [](double cx, double cy, double cz, double rad) {
    auto g = torch::meshgrid({torch::arange(20.0), torch::arange(18.0), torch::arange(12.0)}, "ij");
    return ((g[0] - cx).pow(2) + (g[1] - cy).pow(2) + (g[2] - cz).pow(2)) < rad * rad;
  };
  auto y = torch::stack(
      {torch::stack({blob(9, 8, 6, 5).logical_not(), blob(9, 8, 6, 5),
                     torch::zeros({20, 18, 12}, torch::kBool)}),
       torch::stack({blob(5, 5, 5, 3).logical_not(), blob(5, 5, 5, 3), blob(14, 12, 6, 3)})});
  auto p = torch::stack(
      {torch::stack({blob(10, 8, 6, 5).logical_not(), blob(10, 8, 6, 5), blob(3, 3, 3, 2)}),
       torch::stack({blob(5, 6, 5, 3).logical_not(), blob(5, 6, 5, 3),
                     torch::zeros({20, 18, 12}, torch::kBool)})});
  const std::vector<double> sp = {0.8, 1.2, 3.0};
  auto run = [&](const std::string& name, const json& args) {
    return twin.run({{"kind", "metric"},
                     {"name", name},
                     {"args", args},
                     {"y_pred", twin.spec(p.to(torch::kFloat))},
                     {"y", twin.spec(y.to(torch::kFloat))},
                     {"spacing", sp}});
  };
  {
    const auto r = run("DiceMetric", {{"include_background", false}});
    EXPECT_LT(max_diff(metrics::dice(p, y, false, true), Twin::load(r["raw_values"])), 1e-9);
    EXPECT_LT(max_diff(metrics::reduce(metrics::dice(p, y, false, true), "mean").reshape(-1),
                       Twin::load(r["aggregate"]).reshape(-1)),
              1e-6);
  }
  {
    const auto r =
        run("HausdorffDistanceMetric", {{"include_background", false}, {"percentile", 95}});
    EXPECT_LT(
        max_diff(metrics::hausdorff(p, y, false, 95.0, false, sp), Twin::load(r["raw_values"])),
        1e-4);
  }
  {
    const auto r =
        run("SurfaceDistanceMetric", {{"include_background", false}, {"symmetric", true}});
    EXPECT_LT(
        max_diff(metrics::surface_distance(p, y, false, true, sp), Twin::load(r["raw_values"])),
        1e-4);
  }
  {
    const auto r =
        run("SurfaceDiceMetric", {{"include_background", false}, {"class_thresholds", {1.5, 2.0}}});
    EXPECT_LT(
        max_diff(metrics::surface_dice(p, y, {1.5, 2.0}, false, sp), Twin::load(r["raw_values"])),
        1e-6);
  }
  {
    const auto r =
        run("ConfusionMatrixMetric", {{"include_background", true}, {"metric_name", "f1 score"}});
    EXPECT_LT(max_diff(metrics::confusion_counts(p, y, true), Twin::load(r["raw_values"])), 1e-9);
  }
}

TEST(NnTwin, OptimizerStepsAndSchedulesMatch) {
  Twin twin;
  torch::manual_seed(3);
  std::vector<torch::Tensor> params = {torch::randn({4, 3}, torch::kDouble),
                                       torch::randn({5}, torch::kDouble)};
  std::vector<std::vector<torch::Tensor>> grads;
  for (int s = 0; s < 3; ++s)
    grads.push_back({torch::randn({4, 3}, torch::kDouble), torch::randn({5}, torch::kDouble)});
  for (const auto& [name, args] : std::vector<std::pair<std::string, std::string>>{
           {"Novograd",
            R"({"lr": 0.01, "betas": [0.9, 0.98], "weight_decay": 0.001, "grad_averaging": true})"},
           {"Adam", R"({"lr": 0.01, "weight_decay": 0.01})"},
           {"SGD", R"({"lr": 0.1, "momentum": 0.9, "nesterov": true, "weight_decay": 0.0003})"},
           {"AdamW",
            R"({"lr": 0.01, "betas": [0.8, 0.99], "weight_decay": 0.05, "amsgrad": true})"}}) {
    SCOPED_TRACE(name);
    json req = {{"kind", "optimizer"}, {"name", name}, {"args", json::parse(args)}};
    for (const auto& p : params) req["params"].push_back(twin.spec(p));
    for (const auto& step : grads) {
      json gs = json::array();
      for (const auto& g : step) gs.push_back(twin.spec(g));
      req["grads"].push_back(gs);
    }
    const auto r = twin.run(req);
    std::vector<torch::Tensor> ours;
    for (const auto& p : params) ours.push_back(p.clone().requires_grad_(true));
    auto opt = optim::make_optimizer(name, ConfigNode::parse(args, "o.json"), ours);
    for (const auto& step : grads) {
      for (std::size_t i = 0; i < ours.size(); ++i) ours[i].mutable_grad() = step[i].clone();
      opt->step();
    }
    for (std::size_t i = 0; i < ours.size(); ++i)
      EXPECT_LT(max_diff(ours[i], Twin::load(r["params"][i])), 1e-9);
  }
  for (const auto& [name, args] : std::vector<std::pair<std::string, std::string>>{
           {"StepLR", R"({"step_size": 3, "gamma": 0.5})"},
           {"MultiStepLR", R"({"milestones": [2, 5], "gamma": 0.1})"},
           {"CosineAnnealingLR", R"({"T_max": 7, "eta_min": 0.001})"},
           {"WarmupCosineSchedule", R"({"warmup_steps": 3, "t_total": 10, "end_lr": 0.0001})"},
           {"PolynomialLR", R"({"total_iters": 6, "power": 0.9})"},
           {"LinearLR", R"({"start_factor": 0.25, "total_iters": 4})"},
           {"ExponentialLR", R"({"gamma": 0.8})"}}) {
    SCOPED_TRACE(name);
    const auto r = twin.run({{"kind", "scheduler"},
                             {"name", name},
                             {"args", json::parse(args)},
                             {"base_lr", 0.1},
                             {"steps", 9}});
    std::vector<torch::Tensor> ps = {torch::zeros({1}, torch::requires_grad())};
    auto opt = optim::make_optimizer("SGD", ConfigNode::parse(R"({"lr": 0.1})", "o.json"), ps);
    auto sched = optim::make_scheduler(name, ConfigNode::parse(args, "s.json"), opt.get());
    const auto lrs = r["lrs"].get<std::vector<double>>();
    ASSERT_EQ(lrs.size(), 10u);
    for (int t = 0; t <= 9; ++t) {
      EXPECT_NEAR(opt->lr(0), lrs[t], 1e-12) << "step " << t;
      sched->step();
    }
  }
}

TEST(NnTwin, PlateauScheduleAndPlainTorchLossesMatch) {
  Twin twin;
  const std::vector<double> metrics = {1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.8, 0.85, 0.9, 0.91};
  const std::string args =
      R"({"mode": "min", "factor": 0.5, "patience": 1, "cooldown": 1, "min_lr": 0.01})";
  const auto r = twin.run({{"kind", "scheduler"},
                           {"name", "ReduceLROnPlateau"},
                           {"args", json::parse(args)},
                           {"base_lr", 0.1},
                           {"steps", metrics.size()},
                           {"metrics", metrics}});
  std::vector<torch::Tensor> ps = {torch::zeros({1}, torch::requires_grad())};
  auto opt = optim::make_optimizer("SGD", ConfigNode::parse(R"({"lr": 0.1})", "o.json"), ps);
  auto sched =
      optim::make_scheduler("ReduceLROnPlateau", ConfigNode::parse(args, "s.json"), opt.get());
  const auto lrs = r["lrs"].get<std::vector<double>>();
  for (std::size_t t = 0; t < metrics.size(); ++t) {
    EXPECT_NEAR(opt->lr(0), lrs[t], 1e-12) << "step " << t;
    sched->step(metrics[t]);
  }
  EXPECT_NEAR(opt->lr(0), lrs.back(), 1e-12);
  torch::manual_seed(5);
  const auto logits = torch::randn({2, 3, 5, 4});
  const auto labels = torch::randint(0, 3, {2, 1, 5, 4}).to(torch::kFloat);
  // Class-probability targets (the twin exchanges float64 tensors only).
  check_loss(twin, "CrossEntropyLoss", R"({"weight": [1, 2, 0.5], "label_smoothing": 0.05})",
             logits, losses::to_one_hot(labels, 3));
  check_loss(twin, "BCEWithLogitsLoss", R"({"pos_weight": [2.0]})", logits.slice(1, 0, 1),
             (labels > 0).to(torch::kFloat));
}

TEST(Optimizers, ParameterGroupsByNamePrefix) {
  std::vector<std::pair<std::string, torch::Tensor>> named = {
      {"model.0.weight", torch::ones({2}, torch::requires_grad())},
      {"model.2.weight", torch::ones({2}, torch::requires_grad())}};
  const auto args = ConfigNode::parse(
      R"({"lr": 0.1, "param_groups": [{"match": "model.2.", "lr": 0.0}]})", "o.json");
  auto opt = optim::make_optimizer("SGD", args, optim::param_groups(args, named));
  EXPECT_EQ(opt->num_groups(), 2u);
  for (auto& [n, t] : named) t.mutable_grad() = torch::ones({2});
  opt->step();
  EXPECT_NEAR(named[0].second[0].item<float>(), 0.9f, 1e-6);
  EXPECT_EQ(named[1].second[0].item<float>(), 1.0f);  // lr 0 group untouched
  test::expect_error_containing(
      [&] {
        optim::param_groups(
            ConfigNode::parse(R"({"param_groups": [{"match": "decoder."}]})", "o.json"), named);
      },
      "o.json:/param_groups/0/match: no parameter name starts with 'decoder.'");
}

TEST(NnTwin, SlidingWindowInferenceMatches) {
  Twin twin;
  torch::manual_seed(4);
  const auto x = torch::rand({2, 1, 21, 17, 9}, torch::kDouble);
  for (const auto& [mode, overlap, roi] :
       std::vector<std::tuple<std::string, double, std::vector<int64_t>>>{
           {"gaussian", 0.5, {8, 8, 8}}, {"constant", 0.25, {10, 20, 4}}}) {
    SCOPED_TRACE(mode);
    const auto r = twin.run({{"kind", "sliding_window"},
                             {"roi_size", roi},
                             {"sw_batch_size", 3},
                             {"overlap", overlap},
                             {"mode", mode},
                             {"sigma_scale", 0.125},
                             {"padding_mode", "constant"},
                             {"cval", 0},
                             {"input", twin.spec(x)},
                             {"predictor", "conv_seed0"}});
    const auto w = Twin::load(r["predictor_weights"]["weight"]),
               b = Twin::load(r["predictor_weights"]["bias"]);
    engine::SlidingWindowOptions o;
    o.roi_size = roi;
    o.sw_batch_size = 3;
    o.overlap = {overlap};
    o.mode = mode;
    const auto out = engine::sliding_window_inference(
        x, o, [&](const torch::Tensor& v) { return torch::sigmoid(torch::conv3d(v, w, b, 1, 1)); });
    EXPECT_LT(max_diff(out, Twin::load(r["output"])), 1e-5);
  }
}

}  // namespace
}  // namespace barton
