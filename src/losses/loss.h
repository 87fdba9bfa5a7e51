#pragma once
/// Segmentation losses with MONAI's names, arguments and formulas (monai/losses;
/// docs/monai-semantics-nn.md). input: [B, C, *spatial] logits or probabilities; target: [B, C,
/// ...] one-hot or [B, 1, ...] class indices.

#include <torch/types.h>

#include "core/registry.h"

namespace barton::losses {

class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  /// Scalar for reduction mean/sum; per-(batch, channel) values for "none".
  virtual torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& target) const = 0;
  /// Masked losses (MaskedDiceLoss) take a [B, 1, *spatial] 0/1 mask; others ignore it.
  virtual torch::Tensor forward(const torch::Tensor& input,
                                const torch::Tensor& target,
                                const torch::Tensor& mask) const {
    (void)mask;
    return forward(input, target);
  }
};

/// MONAI's one_hot: [B, 1, *S] class indices -> [B, C, *S] float.
torch::Tensor to_one_hot(const torch::Tensor& labels, int64_t num_classes);

using LossRegistry = Registry<Loss>;
void register_losses(LossRegistry& r);

}  // namespace barton::losses
