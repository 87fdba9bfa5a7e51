// Barton's CPU tensor allocator (core/cpu_allocator.h): huge-page mappings for large blocks, a
// bounded cache of freed blocks, and the live/peak counters the memory benchmarks read.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include "core/cpu_allocator.h"

namespace barton {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

TEST(Allocator, LargeBlocksAreCountedReusedAndTheCacheStaysUnderThePeak) {
  unsetenv("BARTON_MALLOC_DEFAULTS");
  setenv("BARTON_CPU_CACHE_MB", "8", 1);
  tune_allocator();
  if (std::string(allocator_mode()) != "huge-pages")
    GTEST_SKIP() << "no transparent huge pages here: " << allocator_mode();
  EXPECT_EQ(allocator_stats().cache_floor_bytes, 8 * kMiB);
  const std::size_t base = allocator_stats().live_bytes;
  {
    auto big = at::empty({static_cast<int64_t>(3 * kMiB)}, at::kByte);  // own mapping, huge pages
    auto mid = at::empty({300 << 10}, at::kByte);                       // glibc's heap
    auto small = at::empty({1000}, at::kByte);                          // glibc's heap
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(big.data_ptr()) % (2 * kMiB), 0u);
    for (const auto* t : {&big, &mid, &small})
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t->data_ptr()) % 64, 0u);
    big.fill_(7);
    mid.fill_(8);
    small.fill_(9);
    EXPECT_EQ(big.sum().item<int64_t>(), 7 * static_cast<int64_t>(3 * kMiB));
    EXPECT_EQ(mid.sum().item<int64_t>(), 8 * (300 << 10));
    EXPECT_EQ(small.sum().item<int64_t>(), 9 * 1000);
    EXPECT_EQ(allocator_stats().live_bytes - base, 3 * kMiB + (300 << 10) + 1000);
  }
  EXPECT_EQ(allocator_stats().live_bytes, base);

  // A freed block comes back for the next request of the same size.
  void* first = nullptr;
  {
    auto a = at::empty({static_cast<int64_t>(3 * kMiB)}, at::kByte);
    first = a.data_ptr();
  }
  EXPECT_GT(allocator_stats().cached_bytes, 0u);
  {
    auto b = at::empty({static_cast<int64_t>(3 * kMiB)}, at::kByte);
    EXPECT_EQ(b.data_ptr(), first);
  }

  // Six 3 MiB tensors at once raise the high-water mark; once they are freed the cache may keep
  // what that peak allowed (more than its 8 MiB floor), and no more.
  {
    std::vector<at::Tensor> many;
    for (int i = 0; i < 6; ++i)
      many.push_back(at::empty({static_cast<int64_t>(3 * kMiB)}, at::kByte));
  }
  auto st = allocator_stats();
  EXPECT_GT(st.cached_bytes, 8 * kMiB);
  EXPECT_LE(st.cached_bytes, st.high_water_bytes - st.live_bytes);
  // A new, larger peak of live tensors leaves room for the floor only: the rest is unmapped.
  {
    auto huge = at::empty({static_cast<int64_t>(64 * kMiB)}, at::kByte);
    st = allocator_stats();
    EXPECT_LE(st.cached_bytes, 8 * kMiB);
    EXPECT_EQ(st.high_water_bytes, st.live_bytes);
  }

  // The peak counter sees a tensor that is gone again.
  reset_peak_live();
  { auto t = at::empty({static_cast<int64_t>(5 * kMiB)}, at::kByte); }
  EXPECT_GE(allocator_stats().peak_live_bytes, base + 5 * kMiB);
  EXPECT_EQ(allocator_stats().live_bytes, base);

  // The raw interface (what oneDNN's scratch memory uses) frees through the same deleter.
  auto* alloc = c10::GetCPUAllocator();
  void* raw = alloc->raw_allocate(5 * kMiB);
  std::memset(raw, 1, 5 * kMiB);
  EXPECT_EQ(allocator_stats().live_bytes, base + 5 * kMiB);
  alloc->raw_deallocate(raw);
  EXPECT_EQ(allocator_stats().live_bytes, base);
}

// A request takes the smallest cached block that fits it with at most a quarter (or one huge page)
// to spare: volumes cropped to each case's foreground differ a little in size from case to case.
TEST(Allocator, ASlightlySmallerRequestReusesACachedBlock) {
  unsetenv("BARTON_MALLOC_DEFAULTS");
  setenv("BARTON_CPU_CACHE_MB", "16", 1);
  tune_allocator();
  if (std::string(allocator_mode()) != "huge-pages")
    GTEST_SKIP() << "no transparent huge pages here: " << allocator_mode();
  void* six = nullptr;
  {
    auto a = at::empty({static_cast<int64_t>(6 * kMiB)}, at::kByte);
    a.fill_(1);
    six = a.data_ptr();
  }
  {
    auto small = at::empty({static_cast<int64_t>(2 * kMiB)},
                           at::kByte);  // 2 MiB body: 6 MiB is too much to waste
    EXPECT_NE(small.data_ptr(), six);
  }
  {
    auto b = at::empty({static_cast<int64_t>(3 * kMiB + kMiB / 2)},
                       at::kByte);  // 4 MiB body + 2 MiB slack
    EXPECT_EQ(b.data_ptr(), six);
    b.fill_(3);
    EXPECT_EQ(b.sum().item<int64_t>(), 3 * static_cast<int64_t>(3 * kMiB + kMiB / 2));
    EXPECT_EQ(allocator_stats().live_bytes, 3 * kMiB + kMiB / 2);
  }
  EXPECT_EQ(allocator_stats().live_bytes, 0u);
  {
    auto c = at::empty({static_cast<int64_t>(6 * kMiB)},
                       at::kByte);  // the block went back with its own size
    EXPECT_EQ(c.data_ptr(), six);
  }
}

TEST(Allocator, AMalformedCacheSizeKeepsTheDefault) {
  if (allocator_stats().live_bytes != 0)
    GTEST_SKIP() << "the allocator was replaced earlier in this process";
  unsetenv("BARTON_MALLOC_DEFAULTS");
  setenv("BARTON_CPU_CACHE_MB", "64MB", 1);
  tune_allocator();
  if (std::string(allocator_mode()) != "huge-pages")
    GTEST_SKIP() << "no transparent huge pages here: " << allocator_mode();
  EXPECT_EQ(allocator_stats().cache_floor_bytes, 64 * kMiB);
}

TEST(Allocator, MallocDefaultsLeavesLibTorchAlone) {
  // ctest runs each test in a process of its own; run together, the test above has replaced it.
  if (allocator_stats().live_bytes != 0)
    GTEST_SKIP() << "the allocator was replaced earlier in this process";
  setenv("BARTON_MALLOC_DEFAULTS", "1", 1);
  tune_allocator();
  EXPECT_STREQ(allocator_mode(), "glibc-defaults");
  { auto t = at::empty({static_cast<int64_t>(5 * kMiB)}, at::kByte); }
  EXPECT_EQ(allocator_stats().peak_live_bytes, 0u);  // LibTorch's own allocator: nothing counted
}

}  // namespace
}  // namespace barton
