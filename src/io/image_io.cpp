#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>

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

Image read_image(const std::string& path, const ReadOptions& options) {
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
