#pragma once
/// Post-processing as pure tensor functions (MONAI's monai/transforms/post/array.py;
/// docs/monai-semantics-intensity.md section 7).

#include <optional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace barton::transforms::post {

/// Labels the connected components of a boolean [*spatial] mask (2D or 3D). Connectivity k in
/// 1..ndim: neighbours within k orthogonal steps (k = ndim: full). Labels are 1.. in raster order
/// of each component's first voxel (C order); 0 is background. Returns int64 labels and the count.
std::pair<at::Tensor, int64_t> label_components(const at::Tensor& mask, int connectivity);

/// The voxels of the `num_components` largest components of `mask` (all of it when it has no more).
/// Ties: the component whose first voxel comes later wins (MONAI's stable argsort reversed).
at::Tensor largest_components(const at::Tensor& mask, int connectivity, int num_components);

/// KeepLargestConnectedComponent on [C, *spatial].
at::Tensor keep_largest_connected_component(const at::Tensor& img,
                                            const std::vector<int64_t>& applied_labels,
                                            std::optional<bool> is_onehot,
                                            bool independent,
                                            std::optional<int> connectivity,
                                            int num_components);

/// FillHoles on [C, *spatial]: regions of "not label" unreachable from the border become label.
at::Tensor fill_holes(const at::Tensor& img,
                      const std::vector<int64_t>& applied_labels,
                      std::optional<int> connectivity);

/// AsDiscrete: argmax (keepdim, channel 0), one-hot to `to_onehot` classes, threshold (>=),
/// rounding (half to even); float32 out.
at::Tensor as_discrete(const at::Tensor& img,
                       bool argmax,
                       std::optional<int64_t> to_onehot,
                       std::optional<double> threshold,
                       bool rounding);

}  // namespace barton::transforms::post
