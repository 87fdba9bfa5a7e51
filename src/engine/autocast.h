#pragma once
/// Mixed precision around a network's forward: MONAI's amp on CUDA, Barton's --bf16 on CPU.

#include <torch/types.h>

namespace barton::engine {

/// Runs a network under autocast: fp16 on CUDA when `amp`; bf16 on CPU when `cpu_bf16` and the CPU
/// has native bf16 (AVX512-BF16 or AMX); a no-op otherwise.
class AutocastGuard {
 public:
  AutocastGuard(bool amp, bool cpu_bf16, const torch::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;
  bool active() const { return active_; }

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool prev_enabled_ = false;
};

/// True when the CPU does bf16 arithmetic natively (cpuinfo flags avx512_bf16 or amx_bf16).
bool cpu_has_bf16();

}  // namespace barton::engine
