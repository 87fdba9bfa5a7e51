// barton convert IN OUT [--series UID] / barton info FILE [--series UID] [--list-series]
#include <cmath>
#include <iostream>
#include <memory>

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/errors.h"
#include "io/image.h"

namespace barton::cli {

void setup_convert(CLI::App& app, Runner& runner) {
  struct Args {
    std::string in, out, series;
  };
  auto a = std::make_shared<Args>();
  app.add_option("IN", a->in, "Input file or DICOM folder")->required();
  app.add_option("OUT", a->out, "Output file (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr)")
      ->required();
  app.add_option("--series", a->series, "DICOM SeriesInstanceUID (default: the largest series)");
  runner = [a]() {
    const auto img = io::read_image(a->in, {a->series});
    io::write_image(img, a->out);
    const auto sp = img.spatial_shape();
    std::cout << fmt::format("wrote {} ({} voxels, {}, {})\n", a->out, fmt::join(sp, "x"),
                             img.file_dtype, io::orientation_code(img.affine, img.spatial_dims()));
    return 0;
  };
}

void setup_info(CLI::App& app, Runner& runner) {
  struct Args {
    std::string path, series;
    bool list_series = false;
  };
  auto a = std::make_shared<Args>();
  app.add_option("FILE", a->path, "Image file or DICOM folder")->required();
  app.add_option("--series", a->series, "DICOM SeriesInstanceUID (default: the largest series)");
  app.add_flag("--list-series", a->list_series, "List the DICOM series in the folder");
  runner = [a]() {
    if (a->list_series) {
      for (const auto& s : io::list_dicom_series(a->path)) {
        std::cout << fmt::format("{}  {} slice(s)  {}  {}\n", s.uid, s.files.size(), s.modality,
                                 s.description);
      }
      return 0;
    }
    const auto img = io::read_image(a->path, {a->series});
    const int d = img.spatial_dims();
    const auto& A = img.affine;
    const auto f = img.data.to(at::kDouble);
    std::cout << fmt::format("file:        {}\n", img.source);
    if (img.meta.count("format"))
      std::cout << fmt::format("format:      {}\n", img.meta.at("format"));
    std::cout << fmt::format("shape:       [{}] (C, {})\n", fmt::join(img.data.sizes(), ", "),
                             d == 3 ? "I, J, K" : "I, J");
    std::cout << fmt::format("dtype:       {} (tensor {})\n", img.file_dtype,
                             c10::toString(img.data.scalar_type()));
    std::cout << fmt::format("spacing:     {:.6g} mm\n", fmt::join(io::voxel_spacing(A, d), " x "));
    std::cout << fmt::format("orientation: {}\n", io::orientation_code(A, d));
    std::cout << "affine:\n";
    for (int r = 0; r < 4; ++r) {
      std::cout << fmt::format("  [{:12.6f} {:12.6f} {:12.6f} {:12.6f}]\n", A[r * 4], A[r * 4 + 1],
                               A[r * 4 + 2], A[r * 4 + 3]);
    }
    std::cout << fmt::format("range:       min {:.6g}, max {:.6g}, mean {:.6g}\n",
                             f.min().item<double>(), f.max().item<double>(),
                             f.mean().item<double>());
    for (const auto& [k, v] : img.meta) {
      if (k != "format") std::cout << fmt::format("{:<12} {}\n", k + ":", v);
    }
    // Label maps (whole values 0..255): how much is labelled, and where, in voxel indices (a point
    // to click for an interactive model).
    if (img.data.scalar_type() == at::kByte && (f > 0).any().item<bool>()) {
      const auto idx = (f[0] > 0).nonzero().to(at::kDouble);
      const auto c = idx.mean(0);
      std::vector<int64_t> centre;
      for (int i = 0; i < d; ++i) centre.push_back(std::llround(c[i].item<double>()));
      std::cout << fmt::format("foreground:  {} voxels, centre [{}]\n", idx.size(0),
                               fmt::join(centre, ", "));
      // Its extreme points (DEXTR3D's six clicks): for each axis the first voxel, in raster
      // order, where the foreground reaches its minimum, then its maximum, along that axis.
      std::vector<std::string> ends;
      for (int axis = 0; axis < d; ++axis) {
        const auto col = idx.select(1, axis);
        for (const auto& target : {col.min(), col.max()}) {
          const auto row = (col == target).nonzero()[0][0].item<int64_t>();
          std::vector<int64_t> p;
          for (int i = 0; i < d; ++i) p.push_back(std::llround(idx[row][i].item<double>()));
          ends.push_back(fmt::format("[{}]", fmt::join(p, ", ")));
        }
      }
      std::cout << fmt::format("extremes:    [{}]\n", fmt::join(ends, ", "));
    }
    return 0;
  };
}

}  // namespace barton::cli
