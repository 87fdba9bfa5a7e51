// The datalist reader (MONAI / Decathlon JSON: splits, folds, plain-string entries) on arbitrary
// text, without checking that listed files exist.
#include "core/errors.h"
#include "data/datalist.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = barton::fuzz::scratch_file("datalist.json", barton::fuzz::as_view(data, size));
  barton::data::DatalistOptions options;
  options.check_files = false;
  for (const char* key : {"training", "validation", "test"}) {
    try {
      const auto items = barton::data::load_datalist(path, key, options);
      (void)barton::data::select_fold(items, 0, true);
    } catch (const barton::Error&) {
    }
  }
  try {
    (void)barton::data::datalist_keys(path);
  } catch (const barton::Error&) {
  }
  return 0;
}
