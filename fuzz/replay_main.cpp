// Runs a fuzz target over files and folders given on the command line, the way libFuzzer runs one
// input: the plain (non-libFuzzer) build of every target, so that ctest replays the kept crash
// inputs (fuzz/regressions/<target>/) and the seed corpus with the normal compiler.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) runs += run_file(f);
    } else if (std::filesystem::is_regular_file(p)) {
      runs += run_file(p);
    } else {
      std::cerr << "replay: " << p.string() << ": no such file or folder\n";
      return 2;
    }
  }
  std::cout << "replay: " << runs << " input(s), no crash\n";
  return 0;
}
