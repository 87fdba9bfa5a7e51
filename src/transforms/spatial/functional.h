#pragma once
/// Spatial transforms as pure functions with their affine updates, following MONAI
/// (docs/monai-semantics-spatial.md). Images are [C, *spatial] (2D or 3D); affines are 4x4 (2D
/// images use the top-left 2x2 block and column 3).

#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/affine.h"

namespace barton::transforms::spatial {

/// An image and its affine.
struct Spatial {
  at::Tensor data;
  Affine affine;
};

/// MONAI's to_affine_nd for r = 2: keeps the in-plane block and translation, identity elsewhere.
Affine to_nd(const Affine& a, int r);

/// Resamples by a voxel map M (output index -> input index; 4x4 embedded) to `out` with torch's
/// affine_grid / grid_sample, as MONAI's AffineTransform does. mode: bilinear | nearest | bicubic;
/// padding: zeros | border | reflection. Computes in `compute` dtype; returns `out_dtype`
/// (default: compute). Axis-aligned maps take a separable path with the same values.
at::Tensor affine_resample(const at::Tensor& img,
                           const Affine& M,
                           const std::vector<int64_t>& out,
                           const std::string& mode,
                           const std::string& padding,
                           bool align_corners,
                           at::ScalarType compute,
                           at::ScalarType out_dtype = at::ScalarType::Undefined);

/// nibabel-style orientation of an affine: per voxel axis (world axis, +1/-1).
std::vector<std::pair<int, int>> io_orientation(const Affine& a, int r);

/// Orientationd: reorients to `axcodes` ("RAS", "LPS", ...). Output keeps the dtype.
Spatial orientation(const Spatial& in, const std::string& axcodes);

/// Spacingd for one key: new affine, output shape and resampled data (float32).
struct SpacingOptions {
  std::vector<double> pixdim;
  bool diagonal = false;
  std::string mode = "bilinear";
  std::string padding_mode = "border";
  bool align_corners = false;
  at::ScalarType dtype = at::kDouble;
  bool scale_extent = false;
  bool recompute_affine = false;
  std::vector<double> min_pixdim, max_pixdim;  // empty = none
};
/// `force_shape`: the output shape to use (ensure_same_shape for later keys), empty = computed.
Spatial spacing(const Spatial& in,
                const SpacingOptions& o,
                const std::vector<int64_t>& force_shape = {});
/// The output affine and shape Spacing would produce (no resampling).
std::pair<Affine, std::vector<int64_t>> spacing_geometry(const Affine& a,
                                                         const std::vector<int64_t>& shape,
                                                         const SpacingOptions& o);

/// SpatialResample to a destination affine and shape (Spacing's step 7; Invertd of Spacing).
Spatial spatial_resample(const Spatial& in,
                         const Affine& dst_affine,
                         const std::vector<int64_t>& out,
                         const std::string& mode,
                         const std::string& padding,
                         bool align_corners,
                         at::ScalarType compute);

/// torch.nn.functional.interpolate to `out` (nearest, nearest-exact, area, bilinear, trilinear,
/// bicubic); "bilinear"/"linear" on 3D means trilinear. Computes in float32.
at::Tensor interpolate(const at::Tensor& img,
                       const std::vector<int64_t>& out,
                       const std::string& mode,
                       std::optional<bool> align_corners);

/// A @ scale_affine(S, out): the affine after resizing S to out (centre aligned).
Affine resize_affine(const Affine& a,
                     const std::vector<int64_t>& in,
                     const std::vector<int64_t>& out);

/// Flips spatial axes (0-based spatial indices); affine updated.
Spatial flip(const Spatial& in, const std::vector<int64_t>& axes);

/// Rotates by k*90 degrees in the plane of spatial axes (a0, a1) (np.rot90 semantics).
Spatial rotate90(const Spatial& in, int k, int a0, int a1);

/// Rotation matrix (MONAI's create_rotate) for 2D (one angle) or 3D (three angles), embedded 4x4.
Affine create_rotate(int r, const std::vector<double>& angles);
/// create_shear, create_translate, create_scale (embedded 4x4).
Affine create_shear(int r, const std::vector<double>& coefs);
Affine create_translate(int r, const std::vector<double>& shift);
Affine create_scale(int r, const std::vector<double>& scale);

/// Rotated: angles (radians), keep_size, float32 output.
Spatial rotate(const Spatial& in,
               const std::vector<double>& angles,
               bool keep_size,
               const std::string& mode,
               const std::string& padding,
               bool align_corners);

/// Zoomd: zoom factors per axis, keep_size (crop/pad back with padding_mode), float32 output.
Spatial zoom(const Spatial& in,
             const std::vector<double>& factors,
             const std::string& mode,
             const std::string& padding_mode,
             std::optional<bool> align_corners,
             bool keep_size);

/// Affined / RandAffined: the matrix Rot @ Shear @ Trans @ Scale sampled on a centred grid of `out`
/// with MONAI's Resample (norm_coords). `compute` is float32 (Affined) or float64 (RandAffined).
Spatial affine_grid_resample(const Spatial& in,
                             const Affine& aff,
                             const std::vector<int64_t>& out,
                             const std::string& mode,
                             const std::string& padding,
                             bool align_corners,
                             at::ScalarType compute);

/// Resample on an explicit centred grid [r, *out] (input-centred voxel coordinates); MONAI's
/// Resample with norm_coords, align_corners=False. Used by Rand3DElastic.
at::Tensor grid_resample(const at::Tensor& img,
                         const at::Tensor& grid,
                         const std::string& mode,
                         const std::string& padding,
                         at::ScalarType compute);

}  // namespace barton::transforms::spatial
