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
