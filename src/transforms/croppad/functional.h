#pragma once
/// Crop and pad as pure functions with their affine updates (MONAI's croppad/array.py;
/// docs/monai-semantics-spatial.md). Images are [C, *spatial].

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/affine.h"

namespace barton::transforms::croppad {

/// Entries <= 0 (or missing) of `size` take the image's size (MONAI's fall_back_tuple); a single
/// value applies to every axis.
std::vector<int64_t> fall_back(const std::vector<int64_t>& size, const std::vector<int64_t>& shape);

/// Pads [C, *S] by (before, after) per spatial axis with `mode`: constant (0), edge, reflect,
/// symmetric, wrap/circular. Returns the new tensor.
at::Tensor pad(const at::Tensor& img,
               const std::vector<int64_t>& before,
               const std::vector<int64_t>& after,
               const std::string& mode);

/// Crops spatial [start, end) per axis; the box may leave the image: the part outside is padded
/// with `mode` (MONAI's crop-then-pad of CropForeground). Returns the new tensor.
at::Tensor crop_or_pad(const at::Tensor& img,
                       const std::vector<int64_t>& start,
                       const std::vector<int64_t>& end,
                       const std::string& mode = "constant");

/// A @ T(shift): the affine of a crop starting at `shift` (negative = padding before).
Affine translate_affine(const Affine& a, const std::vector<int64_t>& shift);

/// SpatialPad's (before, after) to reach at least `target` (symmetric: extra voxel at the end).
std::pair<std::vector<int64_t>, std::vector<int64_t>> pad_amounts(
    const std::vector<int64_t>& shape, const std::vector<int64_t>& target, bool symmetric);

/// CenterSpatialCrop's start: max(S // 2 - roi // 2, 0).
std::vector<int64_t> center_crop_start(const std::vector<int64_t>& shape,
                                       const std::vector<int64_t>& roi);

/// CropForeground's box from a foreground mask [*S] (any channel): start (inclusive) / end
/// (exclusive) with margin, clipping (allow_smaller) and k_divisible growth. Empty mask: all zeros.
std::pair<std::vector<int64_t>, std::vector<int64_t>> foreground_box(
    const at::Tensor& mask,
    const std::vector<int64_t>& margin,
    bool allow_smaller,
    const std::vector<int64_t>& k_divisible);

/// MONAI's correct_crop_centers: clamps a crop centre so a `size` patch fits in `shape`.
std::vector<int64_t> correct_crop_center(const std::vector<int64_t>& center,
                                         const std::vector<int64_t>& size,
                                         const std::vector<int64_t>& shape);

/// Start of a crop of `size` centred at `center` (SpatialCrop(roi_center, roi_size)): max(c -
/// size//2, 0).
std::vector<int64_t> crop_start_from_center(const std::vector<int64_t>& center,
                                            const std::vector<int64_t>& size);

/// C-order unravel of a flat spatial index.
std::vector<int64_t> unravel(int64_t flat, const std::vector<int64_t>& shape);

}  // namespace barton::transforms::croppad
