#include "support/test_support.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

namespace barton::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device rd;
  path_ = (fs::temp_directory_path() /
           ("barton-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd())))
              .string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string source_dir() {
  const char* s = std::getenv("BARTON_SOURCE_DIR");
  return s ? s : fs::current_path().string();
}

std::string clara_refdata_default() {
  return (fs::path(source_dir()) / ".." / "shared" / "refdata" / "clara")
      .lexically_normal()
      .string();
}

std::string clara_refdata() {
  if (const char* s = std::getenv("BARTON_CLARA_REFDATA"); s != nullptr && *s != '\0') {
    // Asked for by name: a wrong path is a failure, not a reason to skip.
    if (!fs::is_directory(s)) ADD_FAILURE() << "BARTON_CLARA_REFDATA=" << s << " is not a folder";
    return s;
  }
  const auto d = clara_refdata_default();
  return fs::is_directory(d) ? d : std::string();
}

std::string clara_refdata_skip_reason() {
  return "interop suite: no Clara reference configs (set BARTON_CLARA_REFDATA to the folder "
         "holding v4_pytorch/; "
         "default " +
         clara_refdata_default() + " does not exist)";
}

std::string barton_bin() {
  const char* s = std::getenv("BARTON_BIN");
  return s ? s : (fs::path(source_dir()) / "build" / "barton").string();
}

int run_command(const std::string& cmd, std::string* output, bool merge_stderr) {
  const std::string full = cmd + (merge_stderr ? " 2>&1" : "");
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf{};
  std::string out;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string sh(const std::string& cmd, int expect_rc) {
  std::string out;
  const int rc = run_command(cmd, &out);
  EXPECT_EQ(rc, expect_rc) << cmd << "\n" << out;
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

Reference python_reference(const std::string& kind,
                           const std::string& path,
                           const std::string& series) {
  TempDir tmp;
  const auto raw = tmp.file("ref.f64");
  std::string out;
  const std::string cmd = "/usr/bin/python3 " + source_dir() + "/tests/golden/dump_image.py " +
                          kind + " '" + path + "' " + raw + (series.empty() ? "" : " " + series);
  const int rc = run_command(cmd, &out, false);
  Reference ref;
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  if (rc != 0) return ref;
  const auto j = nlohmann::json::parse(out);
  ref.shape = j["shape"].get<std::vector<int64_t>>();
  for (const auto& row : j["affine"])
    for (const auto& v : row) ref.affine.push_back(v.get<double>());
  std::ifstream in(raw, std::ios::binary);
  int64_t n = 1;
  for (auto s : ref.shape) n *= s;
  ref.data.resize(static_cast<std::size_t>(n));
  in.read(reinterpret_cast<char*>(ref.data.data()), n * 8);
  EXPECT_TRUE(in.good()) << "short reference data for " << path;
  return ref;
}

void expect_error_containing(const std::function<void()>& fn, const std::string& expected) {
  try {
    fn();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << expected;
    return;
  }
  ADD_FAILURE() << "expected an exception containing: " << expected;
}

}  // namespace barton::test
