#pragma once
/// Inferers (MONAI's SimpleInferer and SlidingWindowInferer; monai/inferers/utils.py).

#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "core/registry.h"

namespace barton::engine {

using Predictor = std::function<torch::Tensor(const torch::Tensor&)>;

class Inferer {
 public:
  virtual ~Inferer() = default;
  virtual std::string name() const = 0;
  /// inputs: [B, C, *spatial]; returns the predictor's output for the whole input.
  virtual torch::Tensor infer(const torch::Tensor& inputs, const Predictor& predictor) const = 0;
};

struct SlidingWindowOptions {
  std::vector<int64_t> roi_size;
  int64_t sw_batch_size = 1;
  std::vector<double> overlap = {0.25};
  std::string mode = "constant";  ///< constant or gaussian
  std::vector<double> sigma_scale = {0.125};
  std::string padding_mode = "constant";  ///< constant, reflect, replicate, circular
  double cval = 0.0;
  bool progress = false;
  /// Test-time augmentation: also predict on the input flipped along each spatial axis and average
  /// the (flipped back) predictions. Default: false.
  bool tta_flips = false;
};

/// MONAI's sliding_window_inference: scan interval int(roi * (1 - overlap)) (min 1; roi when it
/// equals the image), windows pulled back inside the image, inputs smaller than roi padded
/// (diff // 2 before), windows batched sw_batch_size at a time, output = sum(w * pred) / sum(w)
/// with w constant or a separable Gaussian (sigma = sigma_scale * roi) clamped at max(min, 1e-3).
/// The output buffer is allocated once and each window's result is added in place; the weight sums
/// are made one slab of the first axis at a time at the end, so no whole-volume count map is held.
torch::Tensor sliding_window_inference(const torch::Tensor& inputs,
                                       const SlidingWindowOptions& o,
                                       const Predictor& predictor);

/// The importance map of a window (float32, [*roi]).
torch::Tensor importance_map(const std::vector<int64_t>& roi,
                             const std::string& mode,
                             const std::vector<double>& sigma_scale);

/// Window start coordinates (MONAI's dense_patch_slices), C order.
std::vector<std::vector<int64_t>> window_starts(const std::vector<int64_t>& image,
                                                const std::vector<int64_t>& roi,
                                                const std::vector<double>& overlap);

using InfererRegistry = Registry<Inferer>;
void register_inferers(InfererRegistry& r);

}  // namespace barton::engine
