#pragma once
/// Intensity transforms as pure tensor functions, following MONAI's definitions
/// (monai/transforms/intensity/array.py; docs/monai-semantics-intensity.md).
/// Inputs are channel-first images [C, *spatial]; outputs are new tensors.

#include <optional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace barton::transforms::intensity {

/// (x - a_min) / (a_max - a_min) * (b_max - b_min) + b_min, optionally clipped; float32.
/// a_max == a_min: x - a_min (+ b_min). Missing b_min/b_max: no output rescaling.
at::Tensor scale_intensity_range(const at::Tensor& img,
                                 double a_min,
                                 double a_max,
                                 std::optional<double> b_min,
                                 std::optional<double> b_max,
                                 bool clip);

/// Rescales to [minv, maxv] (MONAI's rescale_array); a constant image becomes img * minv.
at::Tensor rescale(const at::Tensor& img, std::optional<double> minv, std::optional<double> maxv);

/// (x - mean) / std over all voxels, or non-zero voxels, optionally per channel; std is the
/// population std and 0 is replaced by 1. Given subtrahend/divisor replace mean/std.
at::Tensor normalize_intensity(const at::Tensor& img,
                               const std::vector<double>& subtrahend,
                               const std::vector<double>& divisor,
                               bool nonzero,
                               bool channel_wise);

/// Keeps values above (or below) the threshold, others become cval. Keeps dtype.
at::Tensor threshold_intensity(const at::Tensor& img, double threshold, bool above, double cval);

/// Percentile of a tensor (linear interpolation, as numpy / torch.quantile); q in [0, 100].
double percentile(const at::Tensor& values, double q);

/// AdjustContrast: ((x - min) / (range + 1e-7))^gamma * range + min.
at::Tensor adjust_contrast(const at::Tensor& img,
                           double gamma,
                           bool invert_image,
                           bool retain_stats);

/// Piecewise-linear intensity mapping (np.interp semantics, clamped at the ends).
at::Tensor interp(const at::Tensor& img,
                  const std::vector<double>& xp,
                  const std::vector<double>& fp);

/// MONAI's 1-D Gaussian kernel (approx "erf", tail int(max(4 sigma, 0.5) + 0.5)), float32.
at::Tensor gaussian_kernel_erf(double sigma);

/// MONAI's Gaussian kernel (approx "erf", truncated at 4 sigma) applied separably along each
/// spatial axis with zero padding. sigma per spatial axis.
at::Tensor gaussian_smooth(const at::Tensor& img, const std::vector<double>& sigma);

}  // namespace barton::transforms::intensity
