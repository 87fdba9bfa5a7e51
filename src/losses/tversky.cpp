// MONAI's TverskyLoss (monai/losses/tversky.py).
#include <torch/torch.h>

#include "losses/common.h"
#include "losses/register.h"

namespace barton::losses {
namespace {

class TverskyLoss final : public Loss {
 public:
  TverskyLoss(DiceOptions o, double alpha, double beta)
      : o_(std::move(o)), alpha_(alpha), beta_(beta) {}
  std::string name() const override { return "TverskyLoss"; }
  torch::Tensor forward(const torch::Tensor& in, const torch::Tensor& tg) const override {
    auto [p0, g0] = prepare(in, tg, o_.act, o_.to_onehot_y, o_.include_background, name());
    const auto axes = reduce_axes(p0, o_.batch);
    const auto p1 = 1 - p0, g1 = 1 - g0;
    const auto tp = (p0 * g0).sum(axes), fp = alpha_ * (p0 * g1).sum(axes),
               fn = beta_ * (p1 * g0).sum(axes);
    const auto f = 1.0 - (tp + o_.smooth_nr) / (tp + fp + fn + o_.smooth_dr);
    return reduce(f, o_.reduction, p0.dim() - 2);
  }

 private:
  DiceOptions o_;
  double alpha_, beta_;
};

ComponentSpec tversky_loss_spec() {
  auto args = dice_common_args_spec();
  args.push_back(opt("alpha", A::kFloat, "0.5", "Weight of the false positives."));
  args.push_back(opt("beta", A::kFloat, "0.5", "Weight of the false negatives."));
  return ComponentSpec{"TverskyLoss", "Tversky loss (alpha weights FP, beta FN).", args};
}

}  // namespace

void register_tversky_loss(LossRegistry& r) {
  r.add(tversky_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<TverskyLoss>(DiceOptions::from(a), a.require<double>("alpha"),
                                         a.require<double>("beta"));
  });
}

}  // namespace barton::losses
