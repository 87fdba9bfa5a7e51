#pragma once
/// System monitoring for training runs, like Clara's GPU dashboard: the process's CPU use and
/// memory, and the GPU's utilisation and memory through NVML (libnvidia-ml, loaded at run time
/// when the machine has it) or, in CUDA builds without NVML, LibTorch's allocator statistics.

#include <chrono>
#include <string>

namespace barton::engine {

struct SystemSample {
  double cpu_percent =
      0;              ///< Process CPU time / wall time since the previous sample (100 = one core).
  double rss_mb = 0;  ///< Resident memory now.
  double peak_rss_mb = 0;  ///< Peak resident memory of the process.
  bool has_gpu = false;
  double gpu_util_percent = -1;  ///< -1 when unknown (allocator statistics only).
  double gpu_mem_used_mb = 0, gpu_mem_total_mb = 0;
  std::string gpu_source;  ///< "nvml" or "allocator".
};

/// One per loop. Thread-safety: one caller.
class SystemMonitor {
 public:
  /// `cuda_device` < 0: no GPU figures.
  explicit SystemMonitor(int cuda_device = -1);
  SystemSample sample();

 private:
  int device_;
  double last_cpu_s_ = -1;
  std::chrono::steady_clock::time_point last_wall_;
};

/// "cpu 187%  RSS 2.14 GB (peak 3.02)  gpu 83% 10.2/80.0 GB": for log lines.
std::string format_sample(const SystemSample& s);

}  // namespace barton::engine
