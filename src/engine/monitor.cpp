#include "engine/monitor.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include <dlfcn.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef BARTON_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace barton::engine {

namespace {

double process_cpu_seconds() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double rss_mb_now() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

/// The few NVML entry points used, resolved from libnvidia-ml.so.1 when it exists.
struct Nvml {
  struct Util {
    unsigned int gpu, memory;
  };
  struct Memory {
    unsigned long long total, free, used;
  };
  using Init = int (*)();
  using Handle = int (*)(unsigned int, void**);
  using GetUtil = int (*)(void*, Util*);
  using GetMem = int (*)(void*, Memory*);
  bool ok = false;
  Handle handle = nullptr;
  GetUtil util = nullptr;
  GetMem mem = nullptr;
  Nvml() {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    auto init = reinterpret_cast<Init>(dlsym(lib, "nvmlInit_v2"));
    handle = reinterpret_cast<Handle>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    util = reinterpret_cast<GetUtil>(dlsym(lib, "nvmlDeviceGetUtilizationRates"));
    mem = reinterpret_cast<GetMem>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
    ok = init && handle && util && mem && init() == 0;
  }
  static const Nvml& get() {
    static const Nvml n;
    return n;
  }
};

}  // namespace

SystemMonitor::SystemMonitor(int cuda_device)
    : device_(cuda_device), last_wall_(std::chrono::steady_clock::now()) {
  last_cpu_s_ = process_cpu_seconds();
}

SystemSample SystemMonitor::sample() {
  SystemSample s;
  const auto now = std::chrono::steady_clock::now();
  const double cpu = process_cpu_seconds();
  const double wall = std::chrono::duration<double>(now - last_wall_).count();
  if (wall > 0) s.cpu_percent = 100.0 * (cpu - last_cpu_s_) / wall;
  last_cpu_s_ = cpu;
  last_wall_ = now;
  s.rss_mb = rss_mb_now();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  s.peak_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
  if (device_ < 0) return s;
  const auto& nvml = Nvml::get();
  void* h = nullptr;
  if (nvml.ok && nvml.handle(static_cast<unsigned int>(device_), &h) == 0) {
    Nvml::Util u{};
    Nvml::Memory m{};
    if (nvml.util(h, &u) == 0 && nvml.mem(h, &m) == 0) {
      s.has_gpu = true;
      s.gpu_source = "nvml";
      s.gpu_util_percent = u.gpu;
      s.gpu_mem_used_mb = static_cast<double>(m.used) / 1048576.0;
      s.gpu_mem_total_mb = static_cast<double>(m.total) / 1048576.0;
      return s;
    }
  }
#ifdef BARTON_WITH_CUDA
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_);
  s.has_gpu = true;
  s.gpu_source = "allocator";
  s.gpu_mem_used_mb = static_cast<double>(stats.reserved_bytes[0].current) / 1048576.0;
#endif
  return s;
}

std::string format_sample(const SystemSample& s) {
  std::string out = fmt::format("cpu {:.0f}%  RSS {:.2f} GB (peak {:.2f})", s.cpu_percent,
                                s.rss_mb / 1024.0, s.peak_rss_mb / 1024.0);
  if (s.has_gpu) {
    out += s.gpu_util_percent >= 0 ? fmt::format("  gpu {:.0f}%", s.gpu_util_percent)
                                   : std::string("  gpu");
    out += s.gpu_mem_total_mb > 0 ? fmt::format(" {:.1f}/{:.1f} GB", s.gpu_mem_used_mb / 1024.0,
                                                s.gpu_mem_total_mb / 1024.0)
                                  : fmt::format(" {:.1f} GB reserved", s.gpu_mem_used_mb / 1024.0);
  }
  return out;
}

}  // namespace barton::engine
