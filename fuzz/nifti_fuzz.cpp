// The NIfTI reader (header, extensions, scaling, gzip) on arbitrary bytes, named .nii.gz when they
// start with the gzip magic and .nii otherwise.
#include "core/errors.h"
#include "fuzz/fuzz_util.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const auto path =
      barton::fuzz::scratch_file(gz ? "in.nii.gz" : "in.nii", barton::fuzz::as_view(data, size));
  try {
    (void)barton::io::read_image(path);
  } catch (const barton::Error&) {
  }
  return 0;
}
