#include "engine/autocast.h"

#include <fstream>
#include <string>

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace barton::engine {

bool cpu_has_bf16() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) == 0)
        return line.find(" avx512_bf16") != std::string::npos ||
               line.find(" amx_bf16") != std::string::npos;
    }
    return false;
  }();
  return has;
}

namespace {

// LibTorch 2.4 made autocast's switches per device type and deprecated the CPU/CUDA pairs that
// LibTorch 1.13 has.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocast_enabled(at::DeviceType d) {
  return at::autocast::is_autocast_enabled(d);
}
void set_autocast(at::DeviceType d, bool on) {
  at::autocast::set_autocast_enabled(d, on);
}
void set_cpu_autocast_dtype(at::ScalarType t) {
  at::autocast::set_autocast_dtype(at::kCPU, t);
}
#else
bool autocast_enabled(at::DeviceType d) {
  return d == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void set_autocast(at::DeviceType d, bool on) {
  if (d == at::kCUDA)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
}
void set_cpu_autocast_dtype(at::ScalarType t) {
  at::autocast::set_autocast_cpu_dtype(t);
}
#endif

}  // namespace

AutocastGuard::AutocastGuard(bool amp, bool cpu_bf16, const torch::Device& device) {
  cuda_ = device.is_cuda();
  if (cuda_) {
    if (!amp) return;
  } else {
    if (!cpu_bf16 || !cpu_has_bf16()) return;
    set_cpu_autocast_dtype(at::kBFloat16);
  }
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  prev_enabled_ = autocast_enabled(type);
  set_autocast(type, true);
  active_ = true;
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  set_autocast(cuda_ ? at::kCUDA : at::kCPU, prev_enabled_);
  at::autocast::clear_cache();
}

}  // namespace barton::engine
