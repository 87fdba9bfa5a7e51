// MONAI's DeepSupervisionLoss (monai/losses/ds_loss.py).
#include <cmath>

#include <torch/torch.h>

#include "losses/common.h"
#include "losses/register.h"

namespace barton::losses {
namespace {

/// Weighted sum of a loss over deep-supervision heads: input [B, heads, C, *S] (DynUNet's stacked
/// training output) or a single head; the target is resized to each head with nearest-exact.
class DeepSupervisionLoss final : public Loss {
 public:
  DeepSupervisionLoss(std::unique_ptr<Loss> inner, std::string mode, std::vector<double> weights)
      : inner_(std::move(inner)), mode_(std::move(mode)), weights_(std::move(weights)) {}
  std::string name() const override { return "DeepSupervisionLoss"; }
  std::vector<double> level_weights(std::size_t levels) const {
    if (weights_.size() >= levels)
      return std::vector<double>(weights_.begin(), weights_.begin() + levels);
    std::vector<double> w(levels, 1.0);
    for (std::size_t l = 0; l < levels; ++l) {
      if (mode_ == "exp")
        w[l] = std::max(std::pow(0.5, static_cast<double>(l)), 0.0625);
      else if (mode_ == "two")
        w[l] = l == 0 ? 1.0 : 0.5;
    }
    return w;
  }
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& target) const override {
    if (input.dim() == target.dim()) return inner_->forward(input.to(torch::kFloat), target);
    const auto heads = input.unbind(1);
    const auto w = level_weights(heads.size());
    auto total = torch::zeros({}, input.options().dtype(torch::kFloat));
    for (std::size_t l = 0; l < heads.size(); ++l) {
      auto t = target;
      if (heads[l].sizes().slice(2) != target.sizes().slice(2)) {
        std::vector<int64_t> size(heads[l].sizes().begin() + 2, heads[l].sizes().end());
        t = target.dim() == 5
                ? torch::_upsample_nearest_exact3d(target.to(torch::kFloat), size, c10::nullopt,
                                                   c10::nullopt, c10::nullopt)
                : torch::_upsample_nearest_exact2d(target.to(torch::kFloat), size, c10::nullopt,
                                                   c10::nullopt);
      }
      total = total + w[l] * inner_->forward(heads[l].to(torch::kFloat), t);
    }
    return total;
  }

 private:
  std::unique_ptr<Loss> inner_;
  std::string mode_;
  std::vector<double> weights_;
};

ComponentSpec deep_supervision_loss_spec() {
  return ComponentSpec{
      "DeepSupervisionLoss",
      "Weighted sum of a loss over deep-supervision heads.",
      {req("loss", A::kAny, "The wrapped loss component."),
       opt("weight_mode", A::kString, "\"exp\"",
           "Head weights without weights: same (all 1), exp (0.5^level, min 1/16) or two (1, then "
           "0.5)."),
       opt("weights", A::kFloats, "null",
           "Explicit weight per head, used when it covers every head; otherwise weight_mode.")}};
}

}  // namespace

void register_deep_supervision_loss(LossRegistry& r) {
  r.add(deep_supervision_loss_spec(), [&r](const ConfigNode& a, const BuildContext& ctx) {
    const auto mode = a.require<std::string>("weight_mode");
    if (mode != "same" && mode != "exp" && mode != "two") {
      throw a.at("weight_mode").error("must be same, exp or two");
    }
    auto inner = r.create(a.at("loss"), ctx);
    if (!inner) throw a.at("loss").error("the wrapped loss cannot be disabled");
    return std::make_unique<DeepSupervisionLoss>(std::move(inner), mode, weight_arg(a, "weights"));
  });
}

}  // namespace barton::losses
