#pragma once
/// torch.nn's CrossEntropyLoss and BCEWithLogitsLoss (Clara configs name them; DiceCELoss uses
/// them).

#include <vector>

#include <torch/torch.h>

#include "losses/common.h"

namespace barton::losses {

class CrossEntropy final : public Loss {
 public:
  CrossEntropy(std::vector<double> weight, Reduction r, double smoothing, int64_t ignore_index)
      : weight_(std::move(weight)), r_(r), smoothing_(smoothing), ignore_(ignore_index) {}
  std::string name() const override { return "CrossEntropyLoss"; }
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& target) const override {
    auto opts = torch::nn::functional::CrossEntropyFuncOptions()
                    .label_smoothing(smoothing_)
                    .ignore_index(ignore_);
    if (!weight_.empty()) opts = opts.weight(torch::tensor(weight_, input.options()));
    if (r_ == Reduction::kMean)
      opts = opts.reduction(torch::kMean);
    else if (r_ == Reduction::kSum)
      opts = opts.reduction(torch::kSum);
    else
      opts = opts.reduction(torch::kNone);
    auto t = target;
    if (t.dim() == input.dim() && t.size(1) == 1)
      t = t.squeeze(1).to(torch::kLong);
    else if (t.dim() == input.dim() - 1)
      t = t.to(torch::kLong);
    else
      t = t.to(input.scalar_type());  // probabilities
    return torch::nn::functional::cross_entropy(input, t, opts);
  }

 private:
  std::vector<double> weight_;
  Reduction r_;
  double smoothing_;
  int64_t ignore_;
};

class BCEWithLogits final : public Loss {
 public:
  BCEWithLogits(std::vector<double> weight, std::vector<double> pos_weight, Reduction r)
      : weight_(std::move(weight)), pos_weight_(std::move(pos_weight)), r_(r) {}
  std::string name() const override { return "BCEWithLogitsLoss"; }
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& target) const override {
    auto opts = torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions();
    if (r_ == Reduction::kMean)
      opts = opts.reduction(torch::kMean);
    else if (r_ == Reduction::kSum)
      opts = opts.reduction(torch::kSum);
    else
      opts = opts.reduction(torch::kNone);
    std::vector<int64_t> view(input.dim(), 1);
    view[1] = -1;
    if (!weight_.empty()) opts = opts.weight(torch::tensor(weight_, input.options()).view(view));
    if (!pos_weight_.empty())
      opts = opts.pos_weight(torch::tensor(pos_weight_, input.options()).view(view));
    return torch::nn::functional::binary_cross_entropy_with_logits(
        input, target.to(input.scalar_type()), opts);
  }

 private:
  std::vector<double> weight_, pos_weight_;
  Reduction r_;
};

}  // namespace barton::losses
