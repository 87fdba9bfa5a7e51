#include "core/process.h"

#include <malloc.h>

#include <cstdlib>

namespace barton {

void tune_allocator() {
  if (std::getenv("BARTON_MALLOC_DEFAULTS") != nullptr) return;
  mallopt(M_MMAP_MAX, 0);                      // large blocks come from the heap and are reused
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);  // return memory to the OS only past 512 MiB of free heap
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);
}

}  // namespace barton
