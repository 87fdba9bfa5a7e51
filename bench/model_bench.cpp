// Model benchmark (Barton side): MONAI's spleen UNet training step (DiceLoss softmax + Adam) and
// sliding-window inference (gaussian), timed after warm-up. bench/model_bench.py runs the same in
// Python with the MONAI-layout UNet of tests/golden/monai_twin/nn_twin.py (torch's ConvTranspose3d).
//
// usage: model_bench [--size 64] [--batch 2] [--steps 5] [--threads T] [--sw 192,192,96] [--sw-repeats 2] [--device cpu|cuda]
#include <torch/cuda.h>
#include <torch/torch.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <torch/csrc/jit/ir/constants.h>

#include "bench_util.h"
#include "core/config.h"
#include "core/process.h"
#include "engine/inferer.h"
#include "export/graph.h"
#include "losses/loss.h"
#include "mmar/registries.h"
#include "nets/network.h"
#include "optim/optim.h"

using namespace barton;

using bench::median;
using bench::now;

int main(int argc, char** argv) {
  int64_t size = 64, batch = 2, steps = 5, threads = 2, sw_repeats = 2;
  std::string device_name = "cpu";
  std::vector<int64_t> sw = {192, 192, 96};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--size")) size = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--sw-repeats")) sw_repeats = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--sw")) std::sscanf(argv[i + 1], "%ld,%ld,%ld", &sw[0], &sw[1], &sw[2]);
    if (!std::strcmp(argv[i], "--device")) device_name = argv[i + 1];
  }
  const torch::Device device(device_name);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  tune_allocator();
  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  const auto& reg = builtin_registries();
  auto net = reg.networks.create(ConfigNode::parse(R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1,
      "out_channels": 2, "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 2, "norm": "batch"}})",
                                                   "bench.json"));
  auto loss = reg.losses.create(ConfigNode::parse(R"({"name": "DiceLoss", "args": {"to_onehot_y": true, "softmax": true}})", "bench.json"));
  auto opt = optim::make_optimizer("Adam", ConfigNode::parse(R"({"lr": 0.0001})", "bench.json"), nets::unique_parameters(*net));
  net->to(device);
  const auto x = torch::randn({batch, 1, size, size, size}).to(device);
  const auto y = (torch::rand({batch, 1, size, size, size}) > 0.7).to(torch::kFloat).to(device);
  net->train();
  std::vector<double> times;
  for (int64_t s = 0; s < steps + 2; ++s) {
    const double t0 = now();
    opt->zero_grad();
    auto l = loss->forward(net->forward(x), y);
    l.backward();
    opt->step();
    sync();
    if (s >= 2) times.push_back(now() - t0);
  }
  const double step = median(times);
  // Achieved arithmetic rate of the step: convolution FLOPs of one forward, counted on the traced
  // graph (2 x multiply-adds), times 3 for forward + backward (input and weight gradients), against
  // the CPU's fp32 peak (cores x clock x FLOP per cycle from the vector width and two FMA units).
  double fwd_flops = 0;
  {
    auto g = exporter::trace_network(*net, x);
    for (auto* n : g->nodes()) {
      if (n->kind() != c10::Symbol::fromQualString("aten::_convolution")) continue;
      const auto w = torch::jit::toIValue(n->input(1))->toTensor();
      const bool transposed = torch::jit::toIValue(n->input(6))->toBool();
      const auto io = transposed ? n->input(0) : n->output();  // the side every weight tap visits once
      const auto sizes = *io->type()->cast<c10::TensorType>()->sizes().concrete_sizes();
      double voxels = static_cast<double>(sizes[0]);
      for (std::size_t d = 2; d < sizes.size(); ++d) voxels *= static_cast<double>(sizes[d]);
      fwd_flops += 2.0 * voxels * static_cast<double>(w.numel());
    }
    net->train();
  }
  const double step_flops = 3.0 * fwd_flops;
  double mhz = 0;
  bool avx512 = false;
  {
    std::ifstream cpu("/proc/cpuinfo");
    for (std::string line; std::getline(cpu, line);) {
      if (line.rfind("cpu MHz", 0) == 0 && mhz == 0) mhz = std::stod(line.substr(line.find(':') + 1));
      if (line.rfind("flags", 0) == 0) avx512 = line.find(" avx512f") != std::string::npos;
    }
  }
  const double peak = static_cast<double>(threads) * mhz * 1e6 * (avx512 ? 64.0 : 32.0);
  // Sliding-window inference over a CT-sized volume (roi 96^3, overlap 0.25, gaussian, sw_batch_size 2).
  net->eval();
  const auto vol = torch::randn({1, 1, sw[0], sw[1], sw[2]}).to(device);
  engine::SlidingWindowOptions o;
  o.roi_size = {96, 96, 96};
  o.sw_batch_size = 2;
  o.overlap = {0.25};
  o.mode = "gaussian";
  std::vector<double> sw_times;
  {
    torch::NoGradGuard g;
    for (int64_t r = 0; r < sw_repeats; ++r) {
      const double t0 = now();
      auto out = engine::sliding_window_inference(vol, o, [&](const torch::Tensor& v) { return net->forward(v); });
      sync();
      sw_times.push_back(now() - t0);
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("{\"impl\": \"barton\", \"size\": %ld, \"batch\": %ld, \"threads\": %ld, \"train_step_s\": %.4f, \"train_step_min_s\": %.4f, "
              "\"train_step_max_s\": %.4f, \"sw_s\": %.4f, \"sw_volume\": [%ld, %ld, %ld], \"peak_rss_mb\": %.1f, \"step_gflop\": %.1f, "
              "\"step_gflops_per_s\": %.1f, \"cpu_peak_gflops_per_s\": %.1f}\n",
              size, batch, threads, step, *std::min_element(times.begin(), times.end()), *std::max_element(times.begin(), times.end()),
              median(sw_times), sw[0], sw[1], sw[2], ru.ru_maxrss / 1024.0, step_flops / 1e9, step_flops / step / 1e9,
              device.is_cuda() ? 0.0 : peak / 1e9);
  return 0;
}
