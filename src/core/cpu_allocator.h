#pragma once
/// Process-wide settings that entry points (CLI, benchmarks, server) apply once at start.

#include <cstddef>

namespace barton {

/// Makes large allocations cheap to touch without keeping freed memory resident.
///
/// glibc serves blocks above 128 KiB with fresh mmap'd 4 KiB pages, and on virtual machines
/// touching those pages again for every intermediate tensor costs more than the arithmetic
/// (measured on the 2-core CI VM: 0.24 GB/s for fresh 4 KiB pages, 10 GB/s for fresh transparent
/// huge pages).
///
/// Where the kernel gives transparent huge pages on request (`[madvise]` or `[always]` in
/// /sys/kernel/mm/transparent_hugepage/enabled), LibTorch's CPU allocator is replaced by one that
/// maps every block of 2 MiB or more on its own, 2 MiB-aligned, in whole huge pages, with
/// MADV_HUGEPAGE; smaller blocks come from glibc's heap, which reuses them at any size (its mmap
/// threshold raised to 2 MiB, memory returned past 64 MiB free at the top). Freed large blocks are
/// kept for reuse by exact size, least recently freed evicted first, while live and cached bytes
/// together stay under the most live bytes the process has needed so far, or the cache under
/// BARTON_CPU_CACHE_MB (default 64; a malformed value is reported and the default kept): the cache
/// raises the peak by that much at most. Blocks past it are unmapped. Without huge pages, glibc
/// keeps freed large blocks in its heap instead (no mmap'd blocks, a 512 MiB trim threshold): as
/// fast, but freed memory stays resident. BARTON_MALLOC_DEFAULTS=1 changes nothing.
/// Call once, before any thread starts and before the first tensor that outlives the call.
void tune_allocator();

/// Which allocator set-up is in effect: "huge-pages", "heap" or "glibc-defaults".
const char* allocator_mode();

/// Bytes of CPU tensor memory, counted by Barton's allocator ("huge-pages" mode; zero otherwise).
struct AllocatorStats {
  std::size_t live_bytes = 0;         // in tensors now
  std::size_t peak_live_bytes = 0;    // the most at once since start or reset_peak_live()
  std::size_t cached_bytes = 0;       // freed blocks kept for reuse
  std::size_t high_water_bytes = 0;   // the most at once since start
  std::size_t cache_floor_bytes = 0;  // BARTON_CPU_CACHE_MB
};
AllocatorStats allocator_stats();
void reset_peak_live();

}  // namespace barton
