#pragma once
/// Process-wide settings that entry points (CLI, benchmarks, server) apply once at start.

namespace barton {

/// Keeps freed large blocks in the heap instead of returning them to the OS after every tensor:
/// glibc serves allocations above 128 KiB with fresh mmap'd pages, and touching those pages again
/// for every intermediate tensor costs more than the arithmetic (measured on this VM: a 4.4 M-voxel
/// ScaleIntensityRanged 300 ms -> 5 ms, Spacingd 1.8 s -> 0.3 s). Set BARTON_MALLOC_DEFAULTS=1 to opt out.
/// Thread-safety: call before starting threads.
void tune_allocator();

}  // namespace barton
