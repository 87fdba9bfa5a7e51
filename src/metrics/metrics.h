#pragma once
/// Segmentation metrics as MONAI computes them (monai/metrics; docs/monai-semantics-nn.md).
/// Inputs are binarised one-hot [B, C, *spatial] tensors; results are [B, C] float64 with NaN where
/// MONAI gives NaN. Distances are in physical units given per-axis `spacing` (empty = 1).

#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace barton::metrics {

at::Tensor dice(const at::Tensor& y_pred,
                const at::Tensor& y,
                bool include_background = true,
                bool ignore_empty = true);

/// Hausdorff distance (max, or `percentile` e.g. 95), symmetric unless `directed`.
at::Tensor hausdorff(const at::Tensor& y_pred,
                     const at::Tensor& y,
                     bool include_background = false,
                     std::optional<double> percentile = std::nullopt,
                     bool directed = false,
                     const std::vector<double>& spacing = {});

/// Mean surface distance (pred -> gt; with `symmetric` both directions pooled: ASSD).
at::Tensor surface_distance(const at::Tensor& y_pred,
                            const at::Tensor& y,
                            bool include_background = false,
                            bool symmetric = false,
                            const std::vector<double>& spacing = {});

/// Normalised surface Dice at per-class tolerances (mm), over the classes kept.
at::Tensor surface_dice(const at::Tensor& y_pred,
                        const at::Tensor& y,
                        const std::vector<double>& class_thresholds,
                        bool include_background = false,
                        const std::vector<double>& spacing = {});

/// [B, C, 4]: tp, fp, tn, fn.
at::Tensor confusion_counts(const at::Tensor& y_pred,
                            const at::Tensor& y,
                            bool include_background = true);
/// A named confusion-matrix metric (sensitivity, specificity, precision, f1 score, accuracy, ...)
/// from counts [..., 4]; zero denominators give NaN.
at::Tensor confusion_metric(const at::Tensor& counts, const std::string& name);

/// Voxel accuracy per item (ignite's Accuracy on one-hot predictions, as Clara's configs use it):
/// the fraction of voxels whose predicted class (argmax over C) equals the label's. [B] float64.
at::Tensor accuracy(const at::Tensor& y_pred, const at::Tensor& y);

/// MONAI's do_metric_reduction, NaN-aware: none, mean, sum, mean_batch, sum_batch, mean_channel,
/// sum_channel.
at::Tensor reduce(const at::Tensor& f, const std::string& reduction);

/// Exact Euclidean distance transform: for every voxel, the distance to the nearest `true` voxel of
/// `sites` ([*spatial] bool), in units of `spacing`; +inf when there are no sites.
at::Tensor distance_to(const at::Tensor& sites, const std::vector<double>& spacing);

/// Boundary voxels of a mask: mask & ~erosion(mask) with the face-connected structuring element and
/// zeros beyond the border (scipy's binary_erosion defaults, as MONAI uses).
at::Tensor edges(const at::Tensor& mask);

}  // namespace barton::metrics
