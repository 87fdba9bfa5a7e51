// The DICOM series assembler on arbitrary bytes: the bounds-checking walk, then GDCM's header and
// pixel reading, series grouping and geometry checks. The input is one file in a series folder
// beside a whole slice copied from the seed corpus when one is given in BARTON_FUZZ_DICOM_SLICE.
#include <cstdlib>

#include "core/errors.h"
#include "fuzz/fuzz_util.h"
#include "io/image.h"
#include "io/internal/dicom_walk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = barton::fuzz::as_view(data, size);
  try {
    (void)barton::io::internal::walk_dicom_bytes("input", bytes);
  } catch (const barton::Error&) {
  }
  const auto path = barton::fuzz::scratch_file("series/slice.dcm", bytes);
  try {
    (void)barton::io::read_image(std::filesystem::path(path).parent_path().string());
  } catch (const barton::Error&) {
  }
  return 0;
}
