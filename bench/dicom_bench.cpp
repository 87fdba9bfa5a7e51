// DICOM series reading: what the GDCM guard (io/dicom_guard.cpp: every file decoded first in a
// forked child, so that a GDCM assertion cannot end the process) costs against the whole read.
// Usage: dicom_bench SERIES_DIR [--repeats N]. Prints one JSON line.
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench_util.h"
#include "io/image.h"
#include "io/internal/dicom_walk.h"

int main(int argc, char** argv) {
  using namespace barton;
  if (argc < 2) {
    std::cerr << "usage: dicom_bench SERIES_DIR [--repeats N]\n";
    return 2;
  }
  const std::string dir = argv[1];
  int repeats = 3;
  if (argc >= 4 && std::string(argv[2]) == "--repeats") repeats = std::stoi(argv[3]);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<double> whole, guard;
  std::vector<int64_t> shape;
  for (int r = 0; r < repeats; ++r) {
    double t0 = bench::now();
    const auto img = io::read_image(dir);  // walk + guard + ITK/GDCM read
    whole.push_back(bench::now() - t0);
    shape = img.data.sizes().vec();
    t0 = bench::now();
    io::internal::check_gdcm_decodes(files);  // the guard alone
    guard.push_back(bench::now() - t0);
  }
  const double w = bench::median(whole), g = bench::median(guard);
  std::cout
      << fmt::format(
             "{{\"bench\": \"dicom_read\", \"files\": {}, \"shape\": [{}], \"read_s\": {:.3f}, "
             "\"guard_s\": {:.3f}, \"guard_share\": {:.3f}, \"read_without_guard_s\": {:.3f}}}",
             files.size(), fmt::join(shape, ", "), w, g, g / w, w - g)
      << std::endl;
  return 0;
}
