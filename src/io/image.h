#pragma once
/// Images as Barton passes them around: a channel-first tensor plus a RAS affine
/// (docs/architecture.md, data conventions).

#include <array>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/affine.h"

namespace barton::io {

using barton::Affine;
using barton::identity_affine;
using barton::inverse;
using barton::matmul;
using barton::orientation_code;
using barton::voxel_spacing;

/// A loaded image. Ownership: value type; the tensor is shared on copy (as at::Tensor is).
struct Image {
  /// [C, I, J, K] (3D) or [C, I, J] (2D), contiguous, CPU. I, J, K are the image's own voxel
  /// axes in NIfTI order (I fastest on disk). dtype is the file's (uint16 -> int32,
  /// uint32 -> int64) or float32 when the file carries intensity scaling.
  at::Tensor data;
  /// Voxel -> RAS world. For 2D images the third row/column is the identity.
  Affine affine = identity_affine();
  /// The on-disk element type name ("uint8", "int16", "uint16", "float32", ...); writers keep it
  /// when the tensor's values fit. Empty: derive from the tensor.
  std::string file_dtype;
  /// Where the image came from (file or DICOM folder).
  std::string source;
  /// Free-form metadata (format, series UID, description, scaling...).
  std::map<std::string, std::string> meta;

  int spatial_dims() const { return static_cast<int>(data.dim()) - 1; }
  int64_t channels() const { return data.size(0); }
  /// Spatial sizes (I, J[, K]).
  std::vector<int64_t> spatial_shape() const;
};

/// Options for read_image.
struct ReadOptions {
  /// DICOM folders: the SeriesInstanceUID to read; empty = the series with the most slices.
  std::string series_uid;
};

/// Reads NIfTI-1/2 (.nii, .nii.gz, .hdr/.img), MetaImage (.mha/.mhd), NRRD (.nrrd/.nhdr) or a
/// DICOM series (a folder). Throws IoError naming the path on any failure.
Image read_image(const std::string& path, const ReadOptions& options = {});

/// Writes by extension: .nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr. Single-file formats are
/// written atomically (temp file + rename). Keeps geometry and dtype. Throws IoError.
void write_image(const Image& image, const std::string& path);

/// The file name without its image extension (.nii.gz, .nii, .mha, ...): "case_3" for
/// "/data/case_3.nii.gz".
std::string image_stem(const std::string& path);

/// True when `path` names a file format Barton reads or writes (by extension).
bool is_supported_image_path(const std::string& path);

/// One DICOM series found in a folder.
struct DicomSeries {
  std::string uid;
  std::string description;
  std::string modality;
  std::vector<std::string> files;
};
/// Lists the DICOM series in a folder (not recursive), largest first.
std::vector<DicomSeries> list_dicom_series(const std::string& folder);

}  // namespace barton::io
