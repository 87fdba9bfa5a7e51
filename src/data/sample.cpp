// `barton data sample brain`: a labelled datalist from the real MRIs that Debian packages ship.

#include <filesystem>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "data/synth.h"

namespace barton::data {

namespace fs = std::filesystem;

namespace {

struct BrainSource {
  const char* name;
  const char* image;
  const char* mask_source;  // brain-only image; mask = value > 0
  const char* package;
  const char* split;
};

constexpr const char* kMricron = "/usr/share/mricron/templates/";
constexpr const char* kItkData = "/usr/share/doc/insighttoolkit5-examples/examples/Data/";

}  // namespace

std::string write_brain_sample(const std::string& out_dir) {
  const std::string ch2 = std::string(kMricron) + "ch2.nii.gz";
  const std::string ch2bet = std::string(kMricron) + "ch2bet.nii.gz";
  const std::string km = std::string(kItkData) + "KmeansTest_T1UCharRaw.nii.gz";
  const std::string kmbet = std::string(kItkData) + "KmeansTest_T1RawSkullStrip.nii.gz";
  const BrainSource sources[] = {
      {"ch2", ch2.c_str(), ch2bet.c_str(), "mricron-data", "training"},
      {"kmeans_t1", km.c_str(), kmbet.c_str(), "insighttoolkit5-examples", "validation"},
  };
  nlohmann::ordered_json ds = {
      {"name", "BartonBrainMask"},
      {"description", "Brain masks on real T1 MRIs shipped by Debian packages"},
      {"modality", {{"0", "MR"}}},
      {"labels", {{"0", "background"}, {"1", "brain"}}},
      {"training", nlohmann::ordered_json::array()},
      {"validation", nlohmann::ordered_json::array()}};
  for (const auto& s : sources) {
    for (const char* f : {s.image, s.mask_source}) {
      std::error_code ec;
      if (!fs::exists(f, ec)) {
        throw IoError(f, std::string("missing; install the Debian package ") + s.package +
                             " (scripts/install-deps.sh does)");
      }
    }
    const auto image = io::read_image(s.image);
    auto mask_src = io::read_image(s.mask_source);
    BARTON_CHECK(mask_src.spatial_shape() == image.spatial_shape(),
                 "{}: mask source shape differs from {}", s.mask_source, s.image);
    io::Image mask;
    mask.data = (mask_src.data > 0).to(at::kByte);
    mask.affine = image.affine;  // same grid; take the image's geometry exactly
    mask.file_dtype = "uint8";
    const auto rel = std::string("labels/") + s.name + "_brainmask.nii.gz";
    io::write_image(mask, (fs::path(out_dir) / rel).string());
    ds[s.split].push_back({{"image", s.image}, {"label", rel}});
  }
  const auto path = (fs::path(out_dir) / "dataset.json").string();
  write_file_atomic(path, ds.dump(2) + "\n");
  return path;
}

}  // namespace barton::data
