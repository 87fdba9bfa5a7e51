#pragma once
/// Helpers shared by the fuzz targets (fuzz/README.md). Each target is one file defining
/// LLVMFuzzerTestOneInput; built with clang's libFuzzer by `make fuzz`, and with replay_main.cpp
/// into a plain executable that ctest runs over the kept crash inputs and the seed corpus.
///
/// A target returns normally for input Barton refuses with its own error (barton::Error: a clear
/// message naming the file); anything else escaping (std::exception from a library, a crash, a
/// sanitizer report, an abort inside a dependency) is a finding.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <unistd.h>

namespace barton::fuzz {

/// A per-process scratch folder in /dev/shm (tmpfs: no disk wear at millions of executions).
inline std::filesystem::path scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    auto d = base / ("barton-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes `bytes` to scratch_dir()/name (replacing it) and returns the path.
inline std::string scratch_file(const std::string& name, std::string_view bytes) {
  const auto path = scratch_dir() / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Splits `input` at the first occurrence of `separator`: (before, after). No separator: (input,
/// "").
inline std::pair<std::string_view, std::string_view> split_once(std::string_view input,
                                                                std::string_view separator) {
  const auto at = input.find(separator);
  if (at == std::string_view::npos) return {input, {}};
  return {input.substr(0, at), input.substr(at + separator.size())};
}

}  // namespace barton::fuzz
