// Inference plan benchmark: sliding-window inference (roi 96^3, overlap 0.25, gaussian,
// sw_batch_size 2) over a CT-sized volume with MONAI's spleen UNet, from the checkpoint (Barton's
// eager network) and from the exported plan (barton export: BatchNorm folded, per-layer
// ConvTranspose kernel), side by side, alternating, same process and threads. Also reports the
// agreement of the two segmentations (Dice of the argmax) and the largest logit difference.
//
// With --precision bf16 the plan holds bfloat16 weights and the checkpoint side runs under
// autocast (bfloat16), as `--bf16` does on CPUs with bfloat16 support.
//
// usage: plan_bench [--threads T] [--sw 192,192,96] [--repeats 3] [--norm batch|instance]
// [--precision fp32|bf16]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <ATen/autocast_mode.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include "bench_util.h"
#include "core/config.h"
#include "core/cpu_allocator.h"
#include "engine/inferer.h"
#include "export/export.h"
#include "export/plan.h"
#include "mmar/registries.h"
#include "nets/network.h"
#include <unistd.h>

using namespace barton;

using bench::median;
using bench::now;

int main(int argc, char** argv) {
  int64_t threads = 2, repeats = 3;
  std::vector<int64_t> sw = {192, 192, 96};
  std::string norm = "batch", precision = "fp32";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--norm")) norm = argv[i + 1];
    if (!std::strcmp(argv[i], "--precision")) precision = argv[i + 1];
    if (!std::strcmp(argv[i], "--sw"))
      std::sscanf(argv[i + 1], "%ld,%ld,%ld", &sw[0], &sw[1], &sw[2]);
  }
  tune_allocator();
  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  const std::string spec =
      R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
      "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 2, "norm": ")" +
      norm + R"("}})";
  auto net = std::shared_ptr<nets::Network>(
      builtin_registries().networks.create(ConfigNode::parse(spec, "bench.json")));
  {
    // BatchNorm statistics as training leaves them (a few forwards in train mode).
    torch::NoGradGuard g;
    net->train();
    for (int i = 0; i < 4; ++i) net->forward(torch::randn({2, 1, 32, 32, 32}));
  }
  net->eval();
  const auto dir =
      std::filesystem::temp_directory_path() / ("barton-plan-bench-" + std::to_string(getpid()));
  exporter::ExportOptions eo;
  eo.formats = {"barton"};
  eo.input_shape = {1, 1, 96, 96, 96};
  eo.network = nlohmann::ordered_json::parse(spec);
  eo.precision = precision == "fp32" ? "" : precision;
  const double te = now();
  const auto r = exporter::export_network(*net, dir, eo);
  const double export_s = now() - te;
  auto plan = exporter::load_plan((dir / "model.plan").string());
  std::filesystem::remove_all(dir);

  const auto vol = torch::randn({1, 1, sw[0], sw[1], sw[2]});
  engine::SlidingWindowOptions o;
  o.roi_size = {96, 96, 96};
  o.sw_batch_size = 2;
  o.overlap = {0.25};
  o.mode = "gaussian";
  torch::NoGradGuard g;
  torch::jit::GraphOptimizerEnabledGuard plain(false);  // as barton infer runs TorchScript
  auto eager = [&](const torch::Tensor& v) {
    if (precision != "bf16") return net->forward(v);
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    auto y = net->forward(v).to(torch::kFloat);
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
    return y;
  };
  auto planned = [&](const torch::Tensor& v) { return plan.module.forward({v}).toTensor(); };
  std::vector<double> te_s, tp_s;
  torch::Tensor ye, yp;
  for (int64_t i = 0; i < repeats; ++i) {
    double t0 = now();
    ye = engine::sliding_window_inference(vol, o, eager);
    te_s.push_back(now() - t0);
    t0 = now();
    yp = engine::sliding_window_inference(vol, o, planned);
    tp_s.push_back(now() - t0);
  }
  const auto ae = ye.argmax(1), ap = yp.argmax(1);
  const double inter = ((ae > 0) & (ap > 0)).sum().item<double>(),
               tot = (ae > 0).sum().item<double>() + (ap > 0).sum().item<double>();
  std::printf(
      "{\"bench\": \"plan\", \"norm\": \"%s\", \"precision\": \"%s\", \"threads\": %ld, "
      "\"repeats\": %ld, \"sw_volume\": [%ld, %ld, %ld], "
      "\"checkpoint_s\": %.4f, \"checkpoint_min_s\": %.4f, \"checkpoint_max_s\": %.4f, \"plan_s\": "
      "%.4f, \"plan_min_s\": %.4f, "
      "\"plan_max_s\": %.4f, \"export_s\": %.2f, \"folded_batchnorms\": %d, "
      "\"phase_convtransposes\": %d, "
      "\"argmax_dice\": %.6f, \"argmax_equal_fraction\": %.8f, \"max_abs_diff\": %.3g}\n",
      norm.c_str(), precision.c_str(), threads, repeats, sw[0], sw[1], sw[2], median(te_s),
      *std::min_element(te_s.begin(), te_s.end()), *std::max_element(te_s.begin(), te_s.end()),
      median(tp_s), *std::min_element(tp_s.begin(), tp_s.end()),
      *std::max_element(tp_s.begin(), tp_s.end()), export_s, r.folded_batchnorms,
      r.phase_convtransposes, tot > 0 ? 2 * inter / tot : 1.0,
      (ae == ap).to(torch::kDouble).mean().item<double>(), (ye - yp).abs().max().item<double>());
  return 0;
}
