// MONAI's FocalLoss.
#include "losses/focal_loss.h"

#include <torch/torch.h>

#include "core/errors.h"
#include "core/logging.h"
#include "losses/register.h"

namespace barton::losses {

FocalOptions FocalOptions::from(const ConfigNode& a) {
  FocalOptions o;
  o.include_background = a.require<bool>("include_background");
  o.to_onehot_y = a.require<bool>("to_onehot_y");
  o.use_softmax = a.require<bool>("use_softmax");
  o.gamma = a.require<double>("gamma");
  if (auto v = a.get_optional<double>("alpha")) o.alpha = *v;
  o.weight = weight_arg(a, "weight");
  o.reduction = reduction_arg(a);
  return o;
}

torch::Tensor FocalLoss::forward(const torch::Tensor& in, const torch::Tensor& tg) const {
  auto [input, target] =
      prepare(in, tg, Activation{}, o_.to_onehot_y, o_.include_background, name());
  return focal(input.to(torch::kFloat), target.to(torch::kFloat));
}

torch::Tensor FocalLoss::focal(const torch::Tensor& input, const torch::Tensor& target) const {
  torch::Tensor loss;
  // MONAI drops alpha in the softmax form without the background channel.
  const bool use_alpha = o_.alpha.has_value() && !(o_.use_softmax && !o_.include_background);
  const double alpha = o_.alpha.value_or(0.0);
  if (o_.use_softmax) {
    const auto ls = torch::log_softmax(input, 1);
    loss = -(1 - ls.exp()).pow(o_.gamma) * ls * target;
    if (use_alpha) {
      std::vector<double> fac(target.size(1), alpha);
      fac[0] = 1 - alpha;
      std::vector<int64_t> view(target.dim(), 1);
      view[1] = -1;
      loss = torch::tensor(fac, loss.options()).view(view) * loss;
    }
  } else {
    const auto max_val = (-input).clamp_min(0);
    loss = input - input * target + max_val + ((-max_val).exp() + (-input - max_val).exp()).log();
    const auto invprobs = torch::log_sigmoid(-input * (target * 2 - 1));
    loss = (invprobs * o_.gamma).exp() * loss;
    if (use_alpha) loss = (target * alpha + (1 - target) * (1 - alpha)) * loss;
  }
  const int64_t classes = target.size(1);
  if (!o_.weight.empty() && classes != 1) {
    std::vector<double> cw =
        o_.weight.size() == 1 ? std::vector<double>(classes, o_.weight[0]) : o_.weight;
    BARTON_CHECK(static_cast<int64_t>(cw.size()) == classes,
                 "FocalLoss: weight has {} values for {} classes", cw.size(), classes);
    std::vector<int64_t> view(target.dim() - 1, 1);
    view[0] = -1;
    loss = torch::tensor(cw, loss.options()).view(view) * loss;
  }
  if (o_.reduction == Reduction::kSum) {
    std::vector<int64_t> sp;
    for (int64_t d = 2; d < target.dim(); ++d) sp.push_back(d);
    return loss.mean(sp).sum();  // MONAI's documented back-compat: mean over space, then sum
  }
  if (o_.reduction == Reduction::kMean) return loss.mean();
  return loss;
}

namespace {

ComponentSpec focal_loss_spec() {
  return ComponentSpec{
      "FocalLoss",
      "Focal loss (sigmoid or softmax form).",
      {opt("include_background", A::kBool, "true",
           "Include channel 0 (background); ignored when the input has one channel."),
       opt("to_onehot_y", A::kBool, "false",
           "One-hot encode the label to the input's channel count (not for one channel)."),
       opt("gamma", A::kFloat, "2.0", "Focusing exponent: down-weights well-classified voxels."),
       opt("alpha", A::kFloat, "null",
           "Balance factor: alpha for foreground, 1 - alpha for background; null: none."),
       opt("weight", A::kFloats, "null", "Class weights: one value or one per class."),
       opt("reduction", A::kString, "\"mean\"", "mean, sum (mean over space, then sum) or none."),
       opt("use_softmax", A::kBool, "false",
           "Softmax (multi-class) form on the logits instead of a sigmoid per channel.")}};
}

}  // namespace

void register_focal_loss(LossRegistry& r) {
  r.add(focal_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<FocalLoss>(FocalOptions::from(a));
  });
}

}  // namespace barton::losses
