#pragma once
/// MONAI's FocalLoss (monai/losses/focal_loss.py): sigmoid or softmax form; DiceFocalLoss uses it.

#include <optional>
#include <vector>

#include "losses/common.h"

namespace barton::losses {

struct FocalOptions {
  // from sets every field from the arguments, whose defaults are the spec's.
  bool include_background = false, to_onehot_y = false, use_softmax = false;
  double gamma = 0;
  std::optional<double> alpha;
  std::vector<double> weight;
  Reduction reduction = Reduction::kMean;
  static FocalOptions from(const ConfigNode& a);
};

class FocalLoss final : public Loss {
 public:
  explicit FocalLoss(FocalOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "FocalLoss"; }
  torch::Tensor forward(const torch::Tensor& in, const torch::Tensor& tg) const override;
  /// On prepared (one-hot, background handled) float tensors.
  torch::Tensor focal(const torch::Tensor& input, const torch::Tensor& target) const;

 private:
  FocalOptions o_;
};

}  // namespace barton::losses
