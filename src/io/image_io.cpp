#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "core/errors.h"
#include "core/strings.h"
#include "io/image.h"
#include "io/internal/formats.h"

namespace barton::io {

namespace fs = std::filesystem;

std::vector<int64_t> Image::spatial_shape() const {
  std::vector<int64_t> out;
  for (int64_t d = 1; d < data.dim(); ++d) out.push_back(data.size(d));
  return out;
}

namespace {

enum class Format { kNifti, kItk, kDicomFolder, kUnknown };

Format format_of(const std::string& path) {
  const auto p = to_lower(path);
  for (const char* s : {".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz"}) {
    if (ends_with(p, s)) return Format::kNifti;
  }
  for (const char* s : {".mha", ".mhd", ".nrrd", ".nhdr"}) {
    if (ends_with(p, s)) return Format::kItk;
  }
  return Format::kUnknown;
}

}  // namespace

std::string image_stem(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  for (const char* ext : {".nii.gz", ".hdr.gz", ".img.gz", ".nii", ".hdr", ".img", ".mha", ".mhd",
                          ".nrrd", ".nhdr"}) {
    if (ends_with(to_lower(name), ext))
      return name.substr(0, name.size() - std::string(ext).size());
  }
  return fs::path(name).stem().string();
}

bool is_supported_image_path(const std::string& path) {
  return format_of(path) != Format::kUnknown;
}

namespace {

/// Refuses an affine that cannot place voxels in space: a NaN or infinite entry, or a singular
/// 3x3 part (every voxel at one point or on one plane). Resampling with it would spread NaN or
/// divide by zero far from the file that caused it.
void check_geometry(const Image& img, const std::string& path) {
  const auto& a = img.affine;
  const char* source = "affine";
  if (img.meta.count("sform_code") && img.meta.at("sform_code") != "0") {
    source = "sform";
  } else if (img.meta.count("qform_code") && img.meta.at("qform_code") != "0") {
    source = "qform";
  }
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) {
      if (!std::isfinite(a[r * 4 + c])) {
        throw IoError(path,
                      fmt::format("the {} holds a non-finite value ({}) at row {}, column {}: "
                                  "the image has no usable geometry",
                                  source, a[r * 4 + c], r, c));
      }
    }
  }
  const double det = a[0] * (a[5] * a[10] - a[6] * a[9]) - a[1] * (a[4] * a[10] - a[6] * a[8]) +
                     a[2] * (a[4] * a[9] - a[5] * a[8]);
  if (det == 0.0) {
    throw IoError(path, fmt::format("the {} is singular (determinant 0): the image has no usable "
                                    "geometry",
                                    source));
  }
}

Image read_any(const std::string& path, const ReadOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return internal::read_dicom_series(path, options);
  if (!fs::exists(path, ec)) throw IoError(path, "no such file");
  switch (format_of(path)) {
    case Format::kNifti:
      return internal::read_nifti(path);
    case Format::kItk:
      return internal::read_itk(path);
    default:
      break;
  }
  // A single DICOM file or an unrecognised extension: let ITK try.
  return internal::read_itk(path);
}

}  // namespace

Image read_image(const std::string& path, const ReadOptions& options) {
  Image img = read_any(path, options);
  check_geometry(img, path);
  return img;
}

void write_image(const Image& image, const std::string& path) {
  BARTON_CHECK(image.data.defined(), "{}: cannot write an image without data", path);
  BARTON_CHECK(image.data.dim() == 3 || image.data.dim() == 4,
               "{}: image data must be [C, I, J] or [C, I, J, K], got {} dimensions", path,
               image.data.dim());
  switch (format_of(path)) {
    case Format::kNifti: {
      const auto p = to_lower(path);
      if (!ends_with(p, ".nii") && !ends_with(p, ".nii.gz")) {
        throw IoError(path,
                      "Barton writes NIfTI as single files (.nii or .nii.gz), not .hdr/.img pairs");
      }
      return internal::write_nifti(image, path);
    }
    case Format::kItk:
      return internal::write_itk(image, path);
    default:
      throw IoError(path,
                    "unknown output format; use .nii, .nii.gz, .mha, .mhd, .nrrd or .nhdr "
                    "(DICOM output is not supported)");
  }
}

}  // namespace barton::io
