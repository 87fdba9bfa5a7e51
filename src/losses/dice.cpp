// MONAI's monai/losses/dice.py: DiceLoss, MaskedDiceLoss, GeneralizedDiceLoss, DiceCELoss,
// DiceFocalLoss.
#include <torch/torch.h>

#include "core/errors.h"
#include "core/logging.h"
#include "losses/common.h"
#include "losses/focal_loss.h"
#include "losses/register.h"
#include "losses/torch_losses.h"

namespace barton::losses {
namespace {

class DiceLoss : public Loss {
 public:
  explicit DiceLoss(DiceOptions o, std::string name = "DiceLoss")
      : o_(std::move(o)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  torch::Tensor forward(const torch::Tensor& in, const torch::Tensor& tg) const override {
    auto [input, target] = prepare(in, tg, o_.act, o_.to_onehot_y, o_.include_background, name_);
    return dice(input, target);
  }
  /// On already prepared (activated, one-hot) tensors.
  torch::Tensor dice(const torch::Tensor& input, const torch::Tensor& target) const {
    const auto axes = reduce_axes(input, o_.batch);
    const auto inter = (target * input).sum(axes);
    auto ground = o_.squared_pred ? (target * target).sum(axes) : target.sum(axes);
    auto pred = o_.squared_pred ? (input * input).sum(axes) : input.sum(axes);
    auto denom = ground + pred;
    if (o_.jaccard) denom = 2.0 * (denom - inter);
    auto f = 1.0 - (2.0 * inter + o_.smooth_nr) / (denom + o_.smooth_dr);
    f = apply_class_weight(f, o_.weight, target.size(1), name_);
    return reduce(f, o_.reduction, input.dim() - 2);
  }

 protected:
  DiceOptions o_;
  std::string name_;
};

class MaskedDiceLoss final : public DiceLoss {
 public:
  explicit MaskedDiceLoss(DiceOptions o) : DiceLoss(std::move(o), "MaskedDiceLoss") {}
  torch::Tensor forward(const torch::Tensor& in,
                        const torch::Tensor& tg,
                        const torch::Tensor& mask) const override {
    // MONAI multiplies the mask into the raw input and the target, then runs DiceLoss (activation
    // included): masked voxels of a sigmoid input count as 0.5.
    BARTON_CHECK(mask.size(1) == 1, "MaskedDiceLoss: the mask needs one channel");
    const auto m = mask.to(in.scalar_type());
    return DiceLoss(o_).forward(in * m, tg * m.to(tg.scalar_type()));
  }
};

class GeneralizedDiceLoss final : public Loss {
 public:
  GeneralizedDiceLoss(DiceOptions o, std::string w_type)
      : o_(std::move(o)), w_type_(std::move(w_type)) {}
  std::string name() const override { return "GeneralizedDiceLoss"; }
  torch::Tensor forward(const torch::Tensor& in, const torch::Tensor& tg) const override {
    auto [input, target] = prepare(in, tg, o_.act, o_.to_onehot_y, o_.include_background, name());
    const auto axes = reduce_axes(input, o_.batch);
    const auto inter = (target * input).sum(axes);
    const auto ground = target.sum(axes);
    const auto pred = input.sum(axes);
    const auto denom = ground + pred;
    torch::Tensor w;
    if (w_type_ == "simple")
      w = 1.0 / ground;
    else if (w_type_ == "uniform")
      w = torch::ones_like(ground);
    else
      w = 1.0 / (ground * ground);
    // Infinite weights (empty classes) become the largest finite weight (per item, or global with
    // batch).
    auto inf = torch::isinf(w);
    w = torch::where(inf, torch::zeros_like(w), w);
    if (o_.batch) {
      w = torch::where(inf, w.max().expand_as(w), w);
    } else {
      const auto mx = std::get<0>(w.max(1, true)).expand_as(w);
      w = torch::where(inf, mx, w);
    }
    const int64_t cdim = o_.batch ? 0 : 1;
    const auto numer = 2.0 * (inter * w).sum(cdim, true) + o_.smooth_nr;
    const auto den = (denom * w).sum(cdim, true) + o_.smooth_dr;
    const auto f = 1.0 - numer / den;
    return reduce(f, o_.reduction, input.dim() - 2);
  }

 private:
  DiceOptions o_;
  std::string w_type_;
};

class DiceCELoss final : public Loss {
 public:
  DiceCELoss(DiceOptions d, std::vector<double> ce_weight, double smoothing, double ld, double lc)
      : dice_(d),
        ce_weight_(std::move(ce_weight)),
        smoothing_(smoothing),
        ld_(ld),
        lc_(lc),
        r_(d.reduction) {
    BARTON_CHECK(ld >= 0 && lc >= 0, "lambda_dice and lambda_ce must be non-negative");
  }
  std::string name() const override { return "DiceCELoss"; }
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& target) const override {
    const auto d = dice_.forward(input, target);
    torch::Tensor ce;
    if (input.size(1) == 1) {
      ce = BCEWithLogits({}, ce_weight_, r_).forward(input, target);
    } else {
      ce = CrossEntropy(ce_weight_, r_, smoothing_, -100).forward(input, target);
    }
    return ld_ * d + lc_ * ce;
  }

 private:
  DiceLoss dice_;
  std::vector<double> ce_weight_;
  double smoothing_, ld_, lc_;
  Reduction r_;
};

class DiceFocalLoss final : public Loss {
 public:
  DiceFocalLoss(DiceOptions d, FocalOptions f, double ld, double lf)
      : d_(d), f_(f), ld_(ld), lf_(lf) {}
  std::string name() const override { return "DiceFocalLoss"; }
  torch::Tensor forward(const torch::Tensor& in, const torch::Tensor& tg) const override {
    // One-hot and background removal once, then both terms on the same tensors.
    auto target = tg;
    if (d_.to_onehot_y && in.size(1) > 1) target = to_one_hot(target, in.size(1));
    auto input = in;
    if (!d_.include_background && in.size(1) > 1) {
      input = input.slice(1, 1);
      target = target.slice(1, 1);
    }
    DiceOptions dopt = d_;
    dopt.to_onehot_y = false;
    dopt.include_background = true;
    FocalOptions fopt = f_;
    fopt.to_onehot_y = false;
    fopt.include_background = true;
    const auto dice = DiceLoss(dopt).forward(input, target);
    const auto focal = FocalLoss(fopt).forward(input, target);
    return ld_ * dice + lf_ * focal;
  }

 private:
  DiceOptions d_;
  FocalOptions f_;
  double ld_, lf_;
};

ComponentSpec dice_loss_spec() {
  return ComponentSpec{"DiceLoss", "1 - Dice (MONAI's definition).", dice_args_spec()};
}

ComponentSpec masked_dice_loss_spec() {
  return ComponentSpec{"MaskedDiceLoss", "DiceLoss inside a mask.", dice_args_spec()};
}

ComponentSpec dice_focal_loss_spec() {
  auto args = dice_args_spec();
  args.push_back(opt("gamma", A::kFloat, "2.0", "Focusing exponent of the focal term."));
  args.push_back(opt("lambda_dice", A::kFloat, "1.0", "Weight of the Dice term."));
  args.push_back(opt("lambda_focal", A::kFloat, "1.0", "Weight of the focal term."));
  args.push_back(
      opt("alpha", A::kFloat, "null",
          "Balance factor of the focal term: alpha for foreground, 1 - alpha for background."));
  args.push_back(opt("use_softmax", A::kBool, "false", "Softmax form of the focal term."));
  return ComponentSpec{"DiceFocalLoss", "lambda_dice * Dice + lambda_focal * Focal.", args};
}

ComponentSpec dice_ce_loss_spec() {
  auto args = dice_args_spec();
  args.push_back(opt("lambda_dice", A::kFloat, "1.0", "Weight of the Dice term."));
  args.push_back(opt("lambda_ce", A::kFloat, "1.0",
                     "Weight of the cross-entropy term (binary cross-entropy for one channel)."));
  args.push_back(opt("label_smoothing", A::kFloat, "0.0",
                     "Label smoothing of the cross-entropy term (multi-channel inputs)."));
  args.push_back(opt("ce_weight", A::kFloats, "null",
                     "Deprecated alias of weight: class weights, used when weight is null."));
  return ComponentSpec{"DiceCELoss", "lambda_dice * Dice + lambda_ce * cross-entropy.", args};
}

ComponentSpec generalized_dice_loss_spec() {
  auto args = dice_common_args_spec();
  args.push_back(
      opt("w_type", A::kString, "\"square\"",
          "Class weights from the label volume: square (1/vol^2), simple (1/vol) or uniform."));
  return ComponentSpec{"GeneralizedDiceLoss", "Generalised Dice with class weights.", args};
}

}  // namespace

void register_dice_losses(LossRegistry& r) {
  r.add(dice_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<DiceLoss>(DiceOptions::from_dice(a));
  });
  r.add(masked_dice_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<MaskedDiceLoss>(DiceOptions::from_dice(a));
  });
  r.add(generalized_dice_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    const auto w = a.require<std::string>("w_type");
    if (w != "square" && w != "simple" && w != "uniform") {
      throw a.at("w_type").error("must be square, simple or uniform");
    }
    return std::make_unique<GeneralizedDiceLoss>(DiceOptions::from(a), w);
  });
  r.add(dice_ce_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto d = DiceOptions::from_dice(a);
    if (d.reduction == Reduction::kNone)
      throw a.at("reduction").error("DiceCELoss supports mean or sum");
    // MONAI: one class weight for both terms (ce_weight is its deprecated alias); the Dice term
    // drops the background entry when include_background is false.
    auto w = d.weight;
    if (w.empty()) w = weight_arg(a, "ce_weight");
    d.weight =
        (!d.include_background && w.size() > 1) ? std::vector<double>(w.begin() + 1, w.end()) : w;
    const auto ce_w = w;
    return std::make_unique<DiceCELoss>(d, ce_w, a.require<double>("label_smoothing"),
                                        a.require<double>("lambda_dice"),
                                        a.require<double>("lambda_ce"));
  });
  r.add(dice_focal_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    auto d = DiceOptions::from_dice(a);
    auto f = FocalOptions::from(a);
    return std::make_unique<DiceFocalLoss>(d, f, a.require<double>("lambda_dice"),
                                           a.require<double>("lambda_focal"));
  });
}

}  // namespace barton::losses
