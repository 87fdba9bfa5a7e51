// The torch.save reader (zip container + pickle opcodes + tensor storages) on arbitrary bytes.
#include "core/errors.h"
#include "fuzz/fuzz_util.h"
#include "io/torch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = barton::fuzz::scratch_file("in.pt", barton::fuzz::as_view(data, size));
  try {
    (void)barton::io::load_state_dict_file(path);
  } catch (const barton::Error&) {
  }
  return 0;
}

// LibTorch is built without frame pointers: LeakSanitizer's fast unwinder stops inside it, and
// the suppression of its zip reader's leak (fuzz/lsan.supp) needs the full stack to match.
extern "C" const char* __lsan_default_options() {
  return "fast_unwind_on_malloc=0";
}
