#pragma once
/// Synthetic CT-like volumes with labels, for demos, tests and benchmarks: air, a body with a fat
/// layer and soft tissue, a spine, a labelled organ ("spleen") and an unlabelled look-alike
/// ("liver", similar Hounsfield units, other shape and side), realistic HU and noise,
/// anisotropic spacing and a non-RAS (LPS) orientation, as DICOM-derived NIfTI usually has.

#include <array>
#include <cstdint>
#include <string>

#include "io/image.h"

namespace barton::data {

struct SynthOptions {
  std::array<int64_t, 3> size = {112, 112, 40};     ///< Voxels (I, J, K). Default: 112x112x40.
  std::array<double, 3> spacing = {1.5, 1.5, 4.0};  ///< mm per voxel. Default: 1.5x1.5x4.0.
  uint64_t seed = 0;                                ///< Case seed. Default: 0.
  double noise_hu = 12.0;                           ///< Gaussian noise sigma in HU. Default: 12.
  /// How much darker the unlabelled look-alike is than the organ, in HU (+-5). Default: 10.
  double lookalike_contrast_hu = 10.0;
};

struct SynthCase {
  io::Image image;  ///< [1, I, J, K] int16, Hounsfield units, LPS-oriented affine.
  io::Image label;  ///< [1, I, J, K] uint8: 0 background, 1 organ.
};

/// Generates one case. Deterministic for a given options struct. Thread-safe.
SynthCase synthesize_case(const SynthOptions& options);

/// Writes `cases` cases to OUT/imagesTr, OUT/labelsTr and OUT/dataset.json (Decathlon layout;
/// about 80% training, the rest validation, at least one of each when cases >= 2; "test" lists the
/// validation images without labels, for inference configs).
/// Case k uses seed = options.seed * 1000 + k. Returns the dataset.json path.
std::string write_synthetic_dataset(const std::string& out_dir,
                                    int cases,
                                    const SynthOptions& options);

/// Builds a labelled datalist from the real MRIs listed in docs/architecture.md, test and sample
/// data (mricron-data's ch2 with the ch2bet brain mask, insighttoolkit5-examples' KmeansTest T1
/// with its skull-stripped mask): writes the masks (uint8 NIfTI) and dataset.json to OUT. Returns
/// the dataset.json path. Throws IoError naming the missing file and its Debian package.
std::string write_brain_sample(const std::string& out_dir);

}  // namespace barton::data
