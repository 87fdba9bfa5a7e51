#pragma once
/// Click simulation and guidance for interactive models (MONAI's apps.deepgrow transforms) as pure
/// functions (docs/annotation.md). Images are [C, *spatial].

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "transforms/sample.h"

namespace barton::transforms::deepgrow {

/// scipy's distance_transform_cdt(metric="chessboard") over every axis of `region` (non-zero =
/// inside): for each inside voxel the chessboard distance to the nearest zero voxel, 0 on zero
/// voxels; the border is not background. When the array holds no zero voxel at all, every entry is
/// -1 (as scipy). Returns int32 of the same shape.
at::Tensor chessboard_distance(const at::Tensor& region);

/// Connected components of `mask` (non-zero) with full connectivity over every axis, numbered 1..n
/// in raster order of each component's first voxel (scipy.ndimage.label with a ones structure and
/// skimage.measure.label both number them so). Returns (int32 labels, n).
std::pair<at::Tensor, int64_t> label_components(const at::Tensor& mask);

/// MONAI's click sampling map over `region`: p = exp(d) - 1 on the voxels with region > 0 (d the
/// chessboard distance), normalised to sum 1, 0 elsewhere. float64, region's shape. A region that
/// fills its whole array (d = -1 everywhere) gets the uniform map, as MONAI's normalisation of the
/// equal negative weights gives. Throws Error when the region is empty.
at::Tensor click_probability(const at::Tensor& region, const at::Tensor& distance);

/// Draws a flat index from a probability map (one uniform draw from `rng`).
int64_t draw_flat_index(const at::Tensor& probability, Rng& rng);

/// A click as MONAI writes it: unravel(flat, shape) with entry 0 replaced by the distance at flat.
std::vector<int64_t> click_point(int64_t flat,
                                 const std::vector<int64_t>& shape,
                                 const at::Tensor& distance);

/// Guidance [[pos...], [neg...], ...] from a sample value: a JSON string (MONAI writes one), or
/// absent (Error naming the key).
nlohmann::json read_guidance(const Sample& s, const std::string& key, const std::string& who);
/// A number value (a double, the first of an integer list, or a JSON string holding a number or a
/// nested list whose first leaf is one); nullopt when absent or not a number.
std::optional<double> number_value(const Sample& s, const std::string& key);
/// Writes guidance as a JSON string value.
void write_guidance(Sample& s, const std::string& key, const nlohmann::json& g);

/// Gaussian guidance channels: one float32 channel per guidance group over `spatial`; each point
/// without a negative entry sets the voxel at its last rank entries (int, clamped into the image)
/// to 1; a channel with a point is smoothed with MONAI's erf Gaussian (sigma, 4-sigma tail) and
/// min-max normalised. Returns [G, *spatial].
at::Tensor guidance_signal(const std::vector<int64_t>& spatial,
                           const nlohmann::json& guidance,
                           double sigma);

/// MONAI's get_extreme_points on a spatial label (no channel axis): for each axis, the voxel where
/// the foreground (value != background) reaches its minimum, then its maximum, along that axis
/// (ties: one of them at random, in raster order of the foreground), each coordinate moved by
/// 2 * pert * U[0, 1) (MONAI's perturbation only adds), truncated and clamped into the image.
/// Returns 2 * rank points. Throws Error when the label has no foreground.
std::vector<std::vector<int64_t>> extreme_points(const at::Tensor& label,
                                                 double background,
                                                 double pert,
                                                 Rng& rng);

/// MONAI's extreme_points_to_image: the points set to 1 on a zero grid of `spatial`, smoothed with
/// MONAI's erf Gaussian (sigma, 4-sigma tail) and min-max rescaled to [rescale_min, rescale_max].
/// Returns [1, *spatial] float32.
at::Tensor extreme_points_image(const std::vector<int64_t>& spatial,
                                const std::vector<std::vector<int64_t>>& points,
                                double sigma,
                                double rescale_min,
                                double rescale_max);

/// Positive and negative discrepancy of a prediction against a label (both thresholded at 0.5):
/// [2C, *S] float32, channels [0, C) where the label is missed, [C, 2C) where the prediction
/// overshoots.
at::Tensor discrepancy(const at::Tensor& label, const at::Tensor& pred);

/// MONAI's SpatialCrop slices: from a centre and size, start = max(c - size // 2, 0), end = start +
/// size; from a box, start = max(start, 0), end = max(end, start).
std::pair<std::vector<int64_t>, std::vector<int64_t>> crop_from_center(
    const std::vector<int64_t>& center, const std::vector<int64_t>& size);
std::pair<std::vector<int64_t>, std::vector<int64_t>> crop_from_box(
    const std::vector<int64_t>& start, const std::vector<int64_t>& end);

/// The affine of slice `idx` along spatial `axis` of a 3-D image with affine `a`: the other two
/// axes' columns first, the sliced axis's column third, the origin moved onto the slice, so that
/// voxel (p, q) of the slice is the world point of the volume's voxel it came from.
Affine slice_affine(const Affine& a, int axis, int64_t idx);

/// Slices `img` spatially to [start, end) clipped to the image (numpy slicing, no padding), with
/// the affine moved to the clipped start and the step recorded under `name`. The result owns its
/// storage.
void slice_item(ImageItem& img,
                const std::vector<int64_t>& start,
                const std::vector<int64_t>& end,
                const std::string& name);

}  // namespace barton::transforms::deepgrow
