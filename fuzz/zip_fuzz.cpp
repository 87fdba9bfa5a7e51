// The MMAR zip reader of `barton serve`'s PUT /admin/model (serve::extract_zip, zip_holds_mmar).
// Input: an archive's bytes. Besides crashes, a finding is anything written outside the
// extraction folder, a symbolic link inside it, or anything left behind by a refused archive.
#include <filesystem>

#include "core/errors.h"
#include "fuzz/fuzz_util.h"
#include "serve/admin.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const fs::path root = barton::fuzz::scratch_dir() / "zip";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root);
  const fs::path dest = root / "out";
  try {
    (void)barton::serve::zip_holds_mmar(bytes);
  } catch (const barton::Error&) {
  }
  bool ok = true;
  try {
    barton::serve::extract_zip(bytes, dest.string(), 1 << 20);
  } catch (const barton::Error&) {
    ok = false;
  }
  for (const auto& e : fs::directory_iterator(root))
    if (!ok || e.path() != dest) __builtin_trap();  // a refusal leaves nothing; a success only dest
  if (ok) {
    std::uintmax_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(dest)) {
      if (e.is_symlink()) __builtin_trap();
      if (e.is_regular_file()) total += e.file_size();
    }
    if (total > (1u << 20)) __builtin_trap();  // the limit holds for what was written
  }
  fs::remove_all(root, ec);
  return 0;
}
