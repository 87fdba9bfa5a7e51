#pragma once
/// Helpers shared by Barton's tests: temp folders, running commands, the Python reference
/// readers, and exact-message assertions for config errors.

#include <functional>
#include <string>
#include <vector>

namespace barton::test {

/// A fresh folder under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// The repository root (BARTON_SOURCE_DIR, else the current folder).
std::string source_dir();
/// The real Clara Train files the interop suite reads (v4_pytorch/, v3_tensorflow/, ...):
/// $BARTON_CLARA_REFDATA, else ../shared/refdata/clara beside the checkout when it exists, else "".
/// A BARTON_CLARA_REFDATA that names no folder fails the calling test.
std::string clara_refdata();
/// The message an interop test skips with when clara_refdata() is empty.
std::string clara_refdata_skip_reason();
/// The barton binary (BARTON_BIN).
std::string barton_bin();

/// Runs a shell command; returns its exit status and fills stdout (and stderr when merged).
int run_command(const std::string& cmd, std::string* output, bool merge_stderr = true);

/// Runs a shell command (stderr merged), expects exit status `expect_rc` (a test failure naming
/// the command and its output otherwise), and returns the output.
std::string sh(const std::string& cmd, int expect_rc = 0);

/// Writes a text file (creating folders).
void write_text(const std::string& path, const std::string& text);

/// The reference reader's view of an image (tests/golden/dump_image.py).
struct Reference {
  std::vector<int64_t> shape;  ///< [C, I, J, K]
  std::vector<double> affine;  ///< 16 values, row-major
  std::vector<double> data;    ///< C-order float64
};
/// Runs /usr/bin/python3 tests/golden/dump_image.py KIND PATH. Fails the test if Python fails.
Reference python_reference(const std::string& kind,
                           const std::string& path,
                           const std::string& series = "");

/// Asserts that `fn` throws an exception whose what() contains `expected`.
void expect_error_containing(const std::function<void()>& fn, const std::string& expected);

}  // namespace barton::test

/// Declares `const std::string dir` = the Clara reference folder, or skips the test (reported by
/// ctest as skipped, by name, with the reason in its output) when there is none.
#define BARTON_NEEDS_CLARA_REFDATA(dir)                    \
  const std::string dir = ::barton::test::clara_refdata(); \
  if (dir.empty()) GTEST_SKIP() << ::barton::test::clara_refdata_skip_reason()
