#include "core/atomic_file.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "core/errors.h"
#include "support/test_support.h"

namespace barton {
namespace {

TEST(AtomicFile, WritesAndReplacesLeavingNoTempFiles) {
  test::TempDir tmp;
  write_file_atomic(tmp.file("a/b/x.txt"), "one");
  write_file_atomic(tmp.file("a/b/x.txt"), "two");
  EXPECT_EQ(read_file(tmp.file("a/b/x.txt")), "two");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.file("a/b"))) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, 1);
}

TEST(AtomicFile, FailedWriteKeepsTheOldFile) {
  test::TempDir tmp;
  write_file_atomic(tmp.file("x.txt"), "old");
  // A folder where the temp file would go cannot be written: make the target a directory path.
  EXPECT_THROW(write_file_atomic(tmp.file("x.txt/inner"), "new"), IoError);
  EXPECT_EQ(read_file(tmp.file("x.txt")), "old");
}

TEST(AtomicFile, MissingFileNamesThePath) {
  test::expect_error_containing([] { read_file("/no/such/file.json"); },
                                "/no/such/file.json: no such file");
}

}  // namespace
}  // namespace barton
