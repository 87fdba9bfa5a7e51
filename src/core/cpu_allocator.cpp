#include "core/cpu_allocator.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include "core/logging.h"
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

namespace barton {

namespace {

constexpr std::size_t kHuge = std::size_t{2}
                              << 20;   // transparent huge page size with 4 KiB base pages (x86-64)
constexpr std::size_t kLarge = kHuge;  // blocks from this size on get their own mapping
constexpr std::size_t kDefaultCacheMb = 64;
constexpr std::size_t kHeader = 64;  // keeps the data 64-byte aligned, as c10's allocator does

// Every block carries where it came from just before its data, so one raw deleter frees both kinds.
struct BlockHeader {
  void* base;
  std::size_t mapped;  // 0: posix_memalign'd
  std::size_t bytes;   // as asked for
};

const char* g_mode = "glibc-defaults";

bool huge_pages_on_request() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(f, line);
  return line.find("[always]") != std::string::npos || line.find("[madvise]") != std::string::npos;
}

std::atomic<std::size_t> g_live{0}, g_peak{0},
    g_high{0};  // bytes in tensors: now, since reset, since start

// Freed mappings kept for reuse, by exact size, least recently freed evicted first: a training step
// or a sliding window asks for the same sizes again and again, and a reused block costs no page
// faults and no zeroing. The cache holds at most what the process has already needed at its peak
// beyond what it holds now (high-water mark of live bytes minus live bytes), or `floor` bytes if
// that is more: so cached blocks never raise the peak RSS by more than `floor`. Never destroyed:
// tensors may die during static destruction.
class BlockCache {
 public:
  explicit BlockCache(std::size_t floor) : floor_(floor) {}
  // The smallest cached mapping of at least `mapped` bytes and at most a quarter (or one huge
  // page) more, or nullptr; `mapped` is set to its size. Exact sizes are found first: a training
  // step asks for the same ones again. The slack serves what changes a little from call to call
  // (each case of a dataset is cropped to its own foreground), which would otherwise map and zero
  // fresh pages every time.
  void* take(std::size_t& mapped) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_size_.lower_bound(mapped);
    if (it == by_size_.end() || it->first > mapped + std::max(mapped / 4, kHuge)) return nullptr;
    it = std::prev(
        by_size_.upper_bound(it->first));  // of that size, the most recently freed (still in cache)
    void* base = it->second->base;
    mapped = it->first;
    lru_.erase(it->second);
    by_size_.erase(it);
    cached_ -= mapped;
    return base;
  }
  std::size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }
  std::size_t floor() const { return floor_; }
  void give(void* base, std::size_t mapped) {
    std::vector<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lru_.push_front({base, mapped});
      by_size_.emplace(mapped, lru_.begin());
      cached_ += mapped;
      evict_locked(evicted);
    }
    unmap(evicted);
  }
  // After live bytes grew with fresh mappings: back within the allowance.
  void trim() {
    std::vector<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      evict_locked(evicted);
    }
    unmap(evicted);
  }

 private:
  struct Block {
    void* base;
    std::size_t mapped;
  };
  std::size_t allowance() const {
    const std::size_t high = g_high.load(std::memory_order_relaxed),
                      live = g_live.load(std::memory_order_relaxed);
    return std::max(floor_, high > live ? high - live : 0);
  }
  void evict_locked(std::vector<Block>& evicted) {
    const std::size_t limit = allowance();
    while (cached_ > limit && !lru_.empty()) {
      const Block old = lru_.back();
      auto range = by_size_.equal_range(old.mapped);
      for (auto it = range.first; it != range.second; ++it) {
        if (it->second->base == old.base) {
          by_size_.erase(it);
          break;
        }
      }
      lru_.pop_back();
      cached_ -= old.mapped;
      evicted.push_back(old);
    }
  }
  static void unmap(const std::vector<Block>& blocks) {
    for (const auto& b : blocks) munmap(b.base, b.mapped);
  }
  std::mutex mu_;
  std::list<Block> lru_;  // most recently freed first
  std::multimap<std::size_t, std::list<Block>::iterator> by_size_;
  std::size_t cached_ = 0;
  const std::size_t floor_;
};

BlockCache* g_cache = nullptr;

void raise_to(std::atomic<std::size_t>& mark, std::size_t now) {
  std::size_t seen = mark.load(std::memory_order_relaxed);
  while (now > seen && !mark.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

void count_alloc(std::size_t bytes) {
  const std::size_t now = g_live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  raise_to(g_peak, now);
  raise_to(g_high, now);
}

void free_block(void* data) {
  if (data == nullptr) return;
  BlockHeader h;
  std::memcpy(&h, static_cast<char*>(data) - kHeader, sizeof h);
  g_live.fetch_sub(h.bytes, std::memory_order_relaxed);
  if (h.mapped == 0) {
    std::free(h.base);
  } else {
    g_cache->give(h.base, h.mapped);
  }
}

void* allocate_block(std::size_t n) {
  void* base = nullptr;
  char* data = nullptr;
  std::size_t mapped = 0;
  bool fresh = false;
  if (n >= kLarge) {
    // A mapping of its own, its data on a 2 MiB boundary and the header in the 4 KiB page before
    // it, with huge pages asked for: the first touch of 2 MiB costs one fault instead of 512.
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    // The body is a whole number of huge pages: a 4 KiB-paged tail would cost a fault per 4 KiB on
    // every fresh block (a 3.4 MiB patch: 352 faults, about 6 ms here).
    const std::size_t body = (n + kHuge - 1) / kHuge * kHuge;
    mapped = body + page;
    base = g_cache->take(mapped);
    if (base == nullptr) {
      const std::size_t reserve = body + kHuge + page;
      void* m = mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      // As LibTorch's own allocator reports it: a c10::Error with the size.
      TORCH_CHECK(m != MAP_FAILED, "not enough memory: tried to allocate ", n,
                  " bytes for a tensor");
      const auto start = reinterpret_cast<std::uintptr_t>(m);
      const std::uintptr_t aligned = (start + page + kHuge - 1) & ~(kHuge - 1);
      const std::uintptr_t first = aligned - page;
      const std::uintptr_t end = aligned + body;
      if (first > start) munmap(m, first - start);
      if (start + reserve > end) munmap(reinterpret_cast<void*>(end), start + reserve - end);
      base = reinterpret_cast<void*>(first);
      madvise(reinterpret_cast<void*>(aligned), body, MADV_HUGEPAGE);
      fresh = true;
    }
    data = static_cast<char*>(base) + page;
  } else {
    TORCH_CHECK(posix_memalign(&base, kHeader, n + kHeader) == 0,
                "not enough memory: tried to allocate ", n, " bytes for a tensor");
    data = static_cast<char*>(base) + kHeader;
  }
  const BlockHeader h{base, mapped, n};
  count_alloc(n);
  if (fresh) g_cache->trim();  // more live bytes: less room for cached ones
  std::memcpy(data - kHeader, &h, sizeof h);
  return data;
}

// LibTorch's CPU allocator with large blocks on huge pages. Used for every CPU tensor (and oneDNN's
// scratch memory, which LibTorch takes from the same allocator); freed large blocks go to the
// BlockCache, and past its budget back to the OS.
struct HugePageAllocator final : c10::Allocator {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(std::size_t n) override {
    return make(n);
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#else
  c10::DataPtr allocate(std::size_t n) const override {
    return make(n);
  }
#endif
  c10::DeleterFnPtr raw_deleter() const override {
    return &free_block;
  }

 private:
  static c10::DataPtr make(std::size_t n) {
    void* p = allocate_block(n == 0 ? 1 : n);
    return {p, p, &free_block, c10::Device(c10::DeviceType::CPU)};
  }
};

HugePageAllocator g_huge_page_allocator;

// BARTON_CPU_CACHE_MB: the cache's floor, a whole number of MiB; anything else is reported and the
// default kept.
std::size_t cache_budget_mb() {
  const char* v = std::getenv("BARTON_CPU_CACHE_MB");
  if (v == nullptr) return kDefaultCacheMb;
  char* end = nullptr;
  errno = 0;
  const unsigned long long mb = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0' || errno != 0 || v[0] == '-' || mb > (std::size_t{1} << 30)) {
    log::warn(std::string("BARTON_CPU_CACHE_MB='") + v + "' is not a number of MiB; keeping " +
              std::to_string(kDefaultCacheMb));
    return kDefaultCacheMb;
  }
  return static_cast<std::size_t>(mb);
}

}  // namespace

void tune_allocator() {
  if (std::getenv("BARTON_MALLOC_DEFAULTS") != nullptr) return;
  if (huge_pages_on_request()) {
    g_cache = new BlockCache(cache_budget_mb() << 20);
    c10::SetCPUAllocator(&g_huge_page_allocator, /*priority=*/1);
    // Below 2 MiB glibc's heap serves and reuses blocks of any size (by default it maps fresh
    // 4 KiB pages from 128 KiB on); it returns memory once 64 MiB at its top are free.
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(kLarge));
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    g_mode = "huge-pages";
    return;
  }
  mallopt(M_MMAP_MAX, 0);  // large blocks come from the heap and are reused
  mallopt(M_TRIM_THRESHOLD,
          512 * 1024 * 1024);  // return memory to the OS only past 512 MiB of free heap
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);
  g_mode = "heap";
}

const char* allocator_mode() {
  return g_mode;
}

AllocatorStats allocator_stats() {
  AllocatorStats st;
  st.live_bytes = g_live.load(std::memory_order_relaxed);
  st.peak_live_bytes = g_peak.load(std::memory_order_relaxed);
  st.high_water_bytes = g_high.load(std::memory_order_relaxed);
  if (g_cache != nullptr) {
    st.cached_bytes = g_cache->cached();
    st.cache_floor_bytes = g_cache->floor();
  }
  return st;
}

void reset_peak_live() {
  g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

}  // namespace barton
