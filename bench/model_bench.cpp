// Model benchmark (Barton side): MONAI's spleen UNet training step (DiceLoss softmax + Adam) and
// sliding-window inference (gaussian), timed after warm-up. bench/model_bench.py runs the same in
// Python with the MONAI-layout UNet of tests/golden/monai_twin/nn_twin.py (torch's
// ConvTranspose3d).
//
// usage: model_bench [--mode step|sw|all] [--size 64] [--batch 2] [--steps 5] [--threads T] [--sw
// 192,192,96]
//                    [--sw-repeats 2] [--device cpu|cuda]
// --mode step runs only the training steps, --mode sw only the sliding window, so that each
// process's peak RSS belongs to one of them (bench/run.sh runs them apart); all (the default) runs
// both.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <unordered_set>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "bench_util.h"
#include "core/config.h"
#include "core/cpu_allocator.h"
#include "engine/inferer.h"
#include "export/graph.h"
#include "losses/loss.h"
#include "mmar/registries.h"
#include "nets/network.h"
#include "optim/optim.h"
#include <sys/resource.h>

using namespace barton;

namespace {
// BENCH_MEM_TRACE: after every autograd node of the first backward pass, the live tensor bytes and
// the peak reached while it ran (Barton's allocator counts them), for finding where the peak is.
struct MemHook : torch::autograd::FunctionPostHook {
  std::string name;
  explicit MemHook(std::string n) : name(std::move(n)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& out,
                                            const torch::autograd::variable_list&) override {
    const auto st = barton::allocator_stats();
    std::fprintf(stderr, "[mem-bwd] %-40s live %7.1f MB  peak %7.1f MB\n", name.c_str(),
                 st.live_bytes / 1e6, st.peak_live_bytes / 1e6);
    barton::reset_peak_live();
    return out;
  }
};
void hook_graph(const std::shared_ptr<torch::autograd::Node>& root) {
  std::unordered_set<torch::autograd::Node*> seen;
  std::vector<std::shared_ptr<torch::autograd::Node>> todo = {root};
  while (!todo.empty()) {
    auto n = todo.back();
    todo.pop_back();
    if (!n || !seen.insert(n.get()).second) continue;
    n->add_post_hook(std::make_unique<MemHook>(n->name()));
    for (const auto& e : n->next_edges()) todo.push_back(e.function);
  }
}
}  // namespace

using bench::median;
using bench::now;

int main(int argc, char** argv) {
  int64_t size = 64, batch = 2, steps = 5, threads = 2, sw_repeats = 2;
  std::string device_name = "cpu", mode = "all";
  std::vector<int64_t> sw = {192, 192, 96};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--size")) size = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--sw-repeats")) sw_repeats = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--sw"))
      std::sscanf(argv[i + 1], "%ld,%ld,%ld", &sw[0], &sw[1], &sw[2]);
    if (!std::strcmp(argv[i], "--device")) device_name = argv[i + 1];
    if (!std::strcmp(argv[i], "--mode")) mode = argv[i + 1];
  }
  const bool run_step = mode != "sw", run_sw = mode != "step";
  const torch::Device device(device_name);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  tune_allocator();
  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  const auto& reg = builtin_registries();
  auto net = reg.networks.create(
      ConfigNode::parse(R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1,
      "out_channels": 2, "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 2, "norm": "batch"}})",
                        "bench.json"));
  auto loss = reg.losses.create(ConfigNode::parse(
      R"({"name": "DiceLoss", "args": {"to_onehot_y": true, "softmax": true}})", "bench.json"));
  auto opt = optim::make_optimizer("Adam", ConfigNode::parse(R"({"lr": 0.0001})", "bench.json"),
                                   nets::unique_parameters(*net));
  net->to(device);
  auto x = torch::randn({batch, 1, size, size, size}).to(device);
  auto y = (torch::rand({batch, 1, size, size, size}) > 0.7).to(torch::kFloat).to(device);
  net->train();
  std::vector<double> times;
  for (int64_t s = 0; run_step && s < steps + 2; ++s) {
    const double t0 = now();
    opt->zero_grad();
    static const bool trace_mem = std::getenv("BENCH_MEM_TRACE") != nullptr;
    auto mem = [&](const char* what) {
      if (!trace_mem) return;
      const auto st = allocator_stats();
      std::fprintf(stderr, "[mem] %-14s live %7.1f MB  peak %7.1f MB  cached %6.1f MB\n", what,
                   st.live_bytes / 1e6, st.peak_live_bytes / 1e6, st.cached_bytes / 1e6);
    };
    mem("start");
    auto logits = net->forward(x);
    mem("forward");
    auto l = loss->forward(logits, y);
    logits = torch::Tensor();
    mem("loss");
    if (trace_mem && s == 0) {
      hook_graph(l.grad_fn());
      reset_peak_live();
    }
    l.backward();
    mem("backward");
    opt->step();
    mem("step");
    sync();
    if (s >= 2) times.push_back(now() - t0);
  }
  const double step = run_step ? median(times) : 0.0;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double step_peak_mb = ru.ru_maxrss / 1024.0;  // before the FLOP count traces the network
  // Achieved arithmetic rate of the step: convolution FLOPs of one forward, counted on the traced
  // graph (2 x multiply-adds), times 3 for forward + backward (input and weight gradients), against
  // the CPU's fp32 peak (cores x clock x FLOP per cycle from the vector width and two FMA units).
  double fwd_flops = 0;
  if (run_step) {
    auto g = exporter::trace_network(*net, x);
    for (auto* n : g->nodes()) {
      if (n->kind() != c10::Symbol::fromQualString("aten::_convolution")) continue;
      const auto w = torch::jit::toIValue(n->input(1))->toTensor();
      const bool transposed = torch::jit::toIValue(n->input(6))->toBool();
      const auto io =
          transposed ? n->input(0) : n->output();  // the side every weight tap visits once
      const auto sizes = *io->type()->cast<c10::TensorType>()->sizes().concrete_sizes();
      double voxels = static_cast<double>(sizes[0]);
      for (std::size_t d = 2; d < sizes.size(); ++d) voxels *= static_cast<double>(sizes[d]);
      fwd_flops += 2.0 * voxels * static_cast<double>(w.numel());
    }
    net->train();
  }
  x = y = torch::Tensor();
  const double step_flops = 3.0 * fwd_flops;
  double mhz = 0;
  bool avx512 = false;
  {
    std::ifstream cpu("/proc/cpuinfo");
    for (std::string line; std::getline(cpu, line);) {
      if (line.rfind("cpu MHz", 0) == 0 && mhz == 0)
        mhz = std::stod(line.substr(line.find(':') + 1));
      if (line.rfind("flags", 0) == 0) avx512 = line.find(" avx512f") != std::string::npos;
    }
  }
  const double peak = static_cast<double>(threads) * mhz * 1e6 * (avx512 ? 64.0 : 32.0);
  // Sliding-window inference over a CT-sized volume (roi 96^3, overlap 0.25, gaussian,
  // sw_batch_size 2).
  net->eval();
  const auto vol = run_sw ? torch::randn({1, 1, sw[0], sw[1], sw[2]}).to(device) : torch::Tensor();
  engine::SlidingWindowOptions o;
  o.roi_size = {96, 96, 96};
  o.sw_batch_size = 2;
  o.overlap = {0.25};
  o.mode = "gaussian";
  std::vector<double> sw_times;
  {
    torch::NoGradGuard g;
    for (int64_t r = 0; run_sw && r < sw_repeats; ++r) {
      const double t0 = now();
      auto out = engine::sliding_window_inference(vol, o, [&](const torch::Tensor& v) {
        // BENCH_MEM_TRACE: what the first forward passes add to the live tensor bytes at their
        // peak.
        static const bool trace = std::getenv("BENCH_MEM_TRACE") != nullptr;
        static int calls = 0;
        if (!trace || calls >= 2) return net->forward(v);
        const auto before = allocator_stats();
        reset_peak_live();
        auto y = net->forward(v);
        const auto after = allocator_stats();
        if (calls++ < 2)
          std::fprintf(
              stderr, "[sw] live before %.1f MB, forward peak %.1f MB (+%.1f), high %.1f\n",
              before.live_bytes / 1e6, after.peak_live_bytes / 1e6,
              (after.peak_live_bytes - before.live_bytes) / 1e6, after.high_water_bytes / 1e6);
        return y;
      });
      if (std::getenv("BENCH_MEM_TRACE") != nullptr) {
        const auto st = allocator_stats();
        std::fprintf(stderr, "[sw] end live %.1f MB, high %.1f MB, cached %.1f MB\n",
                     st.live_bytes / 1e6, st.high_water_bytes / 1e6, st.cached_bytes / 1e6);
      }
      sync();
      sw_times.push_back(now() - t0);
    }
  }
  getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "{\"impl\": \"barton\", \"mode\": \"%s\", \"allocator\": \"%s\", \"size\": %ld, \"batch\": "
      "%ld, \"threads\": %ld, \"train_step_s\": %.4f, \"train_step_min_s\": %.4f, "
      "\"train_step_max_s\": %.4f, \"sw_s\": %.4f, \"sw_volume\": [%ld, %ld, %ld], "
      "\"peak_rss_mb\": %.1f, \"step_peak_rss_mb\": %.1f, \"step_gflop\": %.1f, "
      "\"step_gflops_per_s\": %.1f, \"cpu_peak_gflops_per_s\": %.1f}\n",
      mode.c_str(), allocator_mode(), size, batch, threads, step,
      times.empty() ? 0.0 : *std::min_element(times.begin(), times.end()),
      times.empty() ? 0.0 : *std::max_element(times.begin(), times.end()),
      run_sw ? median(sw_times) : 0.0, sw[0], sw[1], sw[2], ru.ru_maxrss / 1024.0, step_peak_mb,
      step_flops / 1e9, run_step ? step_flops / step / 1e9 : 0.0,
      device.is_cuda() ? 0.0 : peak / 1e9);
  return 0;
}
