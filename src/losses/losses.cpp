// DiceLoss and friends, FocalLoss, DiceCE/DiceFocal, Tversky, torch's CE/BCE, deep supervision.
#include <cmath>
#include <optional>

#include <torch/torch.h>

#include "core/errors.h"
#include "core/logging.h"
#include "losses/loss.h"

namespace barton::losses {

torch::Tensor to_one_hot(const torch::Tensor& labels, int64_t num_classes) {
  BARTON_CHECK(labels.dim() >= 2 && labels.size(1) == 1,
               "one_hot needs [B, 1, ...] labels, got {} dims with {} channels", labels.dim(),
               labels.dim() >= 2 ? labels.size(1) : 0);
  auto idx = labels.to(torch::kLong);
  auto shape = labels.sizes().vec();
  shape[1] = num_classes;
  auto out = torch::zeros(shape, labels.options().dtype(torch::kFloat));
  return out.scatter_(1, idx, 1.0);
}

namespace {

using A = ArgType;

enum class Reduction { kMean, kSum, kNone };

Reduction reduction_arg(const ConfigNode& a) {
  const auto r = a.require<std::string>("reduction");
  if (r == "mean") return Reduction::kMean;
  if (r == "sum") return Reduction::kSum;
  if (r == "none") return Reduction::kNone;
  throw a.at("reduction").error("must be mean, sum or none, got '" + r + "'");
}

std::vector<double> weight_arg(const ConfigNode& a, const char* name) {
  if (a.at(name).is_null()) return {};
  const auto v = a.at(name);
  auto w = v.is_array() ? v.as<std::vector<double>>() : std::vector<double>{v.as<double>()};
  for (double x : w) {
    if (x < 0) throw v.error("weights must be non-negative");
  }
  return w;
}

torch::Tensor reduce(const torch::Tensor& f, Reduction r, int64_t spatial) {
  if (r == Reduction::kMean) return f.mean();
  if (r == Reduction::kSum) return f.sum();
  auto shape = f.sizes().vec();
  for (int64_t i = 0; i < spatial; ++i) shape.push_back(1);
  return f.view(shape);
}

struct Activation {
  bool sigmoid = false, softmax = false;
  static Activation from(const ConfigNode& a) {
    Activation x;
    x.sigmoid = a.require<bool>("sigmoid");
    x.softmax = a.require<bool>("softmax");
    if (x.sigmoid && x.softmax) throw a.error("sigmoid and softmax are mutually exclusive");
    if (a.given("other_act")) {
      throw a.at("other_act").error("other_act (a Python callable) is not supported");
    }
    return x;
  }
  torch::Tensor apply(torch::Tensor x) const {
    if (sigmoid) x = torch::sigmoid(x);
    if (softmax && x.size(1) > 1) x = torch::softmax(x, 1);
    return x;
  }
};

// Shared preparation: activation, one-hot, background removal, shape check.
std::pair<torch::Tensor, torch::Tensor> prepare(torch::Tensor input,
                                                torch::Tensor target,
                                                const Activation& act,
                                                bool to_onehot_y,
                                                bool include_background,
                                                const std::string& who) {
  input = act.apply(input);
  const int64_t c = input.size(1);
  if (to_onehot_y && c > 1) target = to_one_hot(target, c);
  if (!include_background && c > 1) {
    target = target.slice(1, 1);
    input = input.slice(1, 1);
  }
  if (target.sizes() != input.sizes()) {
    throw ShapeError(fmt::format("{}: ground truth has shape [{}] but input has shape [{}]", who,
                                 fmt::join(target.sizes(), ", "), fmt::join(input.sizes(), ", ")));
  }
  return {input, target.to(input.scalar_type())};
}

std::vector<int64_t> reduce_axes(const torch::Tensor& t, bool batch) {
  std::vector<int64_t> axes;
  if (batch) axes.push_back(0);
  for (int64_t d = 2; d < t.dim(); ++d) axes.push_back(d);
  return axes;
}

torch::Tensor apply_class_weight(torch::Tensor f,
                                 const std::vector<double>& w,
                                 int64_t classes,
                                 const std::string& who) {
  if (w.empty() || classes == 1) return f;
  std::vector<double> cw = w.size() == 1 ? std::vector<double>(classes, w[0]) : w;
  BARTON_CHECK(static_cast<int64_t>(cw.size()) == classes,
               "{}: weight has {} values for {} classes", who, cw.size(), classes);
  return f * torch::tensor(cw, f.options());
}

struct DiceOptions {
  bool include_background = true, to_onehot_y = false, squared_pred = false, jaccard = false,
       batch = false;
  Activation act;
  Reduction reduction = Reduction::kMean;
  double smooth_nr = 1e-5, smooth_dr = 1e-5;
  std::vector<double> weight;
  /// The arguments every Dice-family loss has (GeneralizedDiceLoss and TverskyLoss: these only).
  static DiceOptions from(const ConfigNode& a) {
    DiceOptions o;
    o.include_background = a.require<bool>("include_background");
    o.to_onehot_y = a.require<bool>("to_onehot_y");
    o.batch = a.require<bool>("batch");
    o.act = Activation::from(a);
    o.reduction = reduction_arg(a);
    o.smooth_nr = a.require<double>("smooth_nr");
    o.smooth_dr = a.require<double>("smooth_dr");
    return o;
  }
  /// DiceLoss's arguments (dice_args_spec): the common ones plus squared_pred, jaccard and weight.
  static DiceOptions from_dice(const ConfigNode& a) {
    DiceOptions o = from(a);
    o.squared_pred = a.require<bool>("squared_pred");
    o.jaccard = a.require<bool>("jaccard");
    o.weight = weight_arg(a, "weight");
    return o;
  }
};

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

struct FocalOptions {
  bool include_background = true, to_onehot_y = false, use_softmax = false;
  double gamma = 2.0;
  std::optional<double> alpha;
  std::vector<double> weight;
  Reduction reduction = Reduction::kMean;
  static FocalOptions from(const ConfigNode& a, const char* weight_key = "weight") {
    FocalOptions o;
    o.include_background = a.require<bool>("include_background");
    o.to_onehot_y = a.require<bool>("to_onehot_y");
    o.use_softmax = a.require<bool>("use_softmax");
    o.gamma = a.require<double>("gamma");
    if (auto v = a.get_optional<double>("alpha")) o.alpha = *v;
    o.weight = weight_arg(a, weight_key);
    o.reduction = reduction_arg(a);
    return o;
  }
};

class FocalLoss final : public Loss {
 public:
  explicit FocalLoss(FocalOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "FocalLoss"; }
  torch::Tensor forward(const torch::Tensor& in, const torch::Tensor& tg) const override {
    auto [input, target] =
        prepare(in, tg, Activation{}, o_.to_onehot_y, o_.include_background, name());
    return focal(input.to(torch::kFloat), target.to(torch::kFloat));
  }
  torch::Tensor focal(const torch::Tensor& input, const torch::Tensor& target) const {
    torch::Tensor loss;
    auto alpha = o_.alpha;
    if (o_.use_softmax) {
      if (!o_.include_background && alpha) alpha.reset();
      const auto ls = torch::log_softmax(input, 1);
      loss = -(1 - ls.exp()).pow(o_.gamma) * ls * target;
      if (alpha) {
        std::vector<double> fac(target.size(1), *alpha);
        fac[0] = 1 - *alpha;
        std::vector<int64_t> view(target.dim(), 1);
        view[1] = -1;
        loss = torch::tensor(fac, loss.options()).view(view) * loss;
      }
    } else {
      const auto max_val = (-input).clamp_min(0);
      loss = input - input * target + max_val + ((-max_val).exp() + (-input - max_val).exp()).log();
      const auto invprobs = torch::log_sigmoid(-input * (target * 2 - 1));
      loss = (invprobs * o_.gamma).exp() * loss;
      if (alpha) loss = (target * *alpha + (1 - target) * (1 - *alpha)) * loss;
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

 private:
  FocalOptions o_;
};

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

std::vector<ArgSpec> dice_args_spec() {
  return {
      opt("include_background", A::kBool, "true",
          "Include channel 0 (background); ignored when the input has one channel."),
      opt("to_onehot_y", A::kBool, "false",
          "One-hot encode the label to the input's channel count (not for one channel)."),
      opt("sigmoid", A::kBool, "false", "Apply a sigmoid to the input first."),
      opt("softmax", A::kBool, "false",
          "Apply a softmax over the channels to the input first (not for one channel)."),
      opt("other_act", A::kCallable, "null",
          "Custom activation callable; not supported (must be null)."),
      opt("squared_pred", A::kBool, "false", "Use squared input and label in the denominator."),
      opt("jaccard", A::kBool, "false", "Compute the Jaccard (IoU) form instead of Dice."),
      opt("reduction", A::kString, "\"mean\"",
          "Reduction over batch and classes: mean, sum or none."),
      opt("smooth_nr", A::kFloat, "1e-05", "Constant added to the numerator."),
      opt("smooth_dr", A::kFloat, "1e-05",
          "Constant added to the denominator (avoids division by zero)."),
      opt("batch", A::kBool, "false",
          "Sum over the batch before dividing (one value per class, not per sample and class)."),
      opt("weight", A::kFloats, "null",
          "Class weights: one value or one per class (DiceCE and DiceFocal weight both terms)."),
      opt("soft_label", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")};
}

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
  return ComponentSpec{
      "GeneralizedDiceLoss",
      "Generalised Dice with class weights.",
      {opt("include_background", A::kBool, "true",
           "Include channel 0 (background); ignored when the input has one channel."),
       opt("to_onehot_y", A::kBool, "false",
           "One-hot encode the label to the input's channel count (not for one channel)."),
       opt("sigmoid", A::kBool, "false", "Apply a sigmoid to the input first."),
       opt("softmax", A::kBool, "false",
           "Apply a softmax over the channels to the input first (not for one channel)."),
       opt("other_act", A::kCallable, "null",
           "Custom activation callable; not supported (must be null)."),
       opt("w_type", A::kString, "\"square\"",
           "Class weights from the label volume: square (1/vol^2), simple (1/vol) or uniform."),
       opt("reduction", A::kString, "\"mean\"",
           "Reduction over batch and classes: mean, sum or none."),
       opt("smooth_nr", A::kFloat, "1e-05", "Constant added to the numerator."),
       opt("smooth_dr", A::kFloat, "1e-05",
           "Constant added to the denominator (avoids division by zero)."),
       opt("batch", A::kBool, "false",
           "Sum over the batch before dividing (one value per class, not per sample and class)."),
       opt("soft_label", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")}};
}

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

ComponentSpec tversky_loss_spec() {
  return ComponentSpec{
      "TverskyLoss",
      "Tversky loss (alpha weights FP, beta FN).",
      {opt("include_background", A::kBool, "true",
           "Include channel 0 (background); ignored when the input has one channel."),
       opt("to_onehot_y", A::kBool, "false",
           "One-hot encode the label to the input's channel count (not for one channel)."),
       opt("sigmoid", A::kBool, "false", "Apply a sigmoid to the input first."),
       opt("softmax", A::kBool, "false",
           "Apply a softmax over the channels to the input first (not for one channel)."),
       opt("other_act", A::kCallable, "null",
           "Custom activation callable; not supported (must be null)."),
       opt("alpha", A::kFloat, "0.5", "Weight of the false positives."),
       opt("beta", A::kFloat, "0.5", "Weight of the false negatives."),
       opt("reduction", A::kString, "\"mean\"",
           "Reduction over batch and classes: mean, sum or none."),
       opt("smooth_nr", A::kFloat, "1e-05", "Constant added to the numerator."),
       opt("smooth_dr", A::kFloat, "1e-05",
           "Constant added to the denominator (avoids division by zero)."),
       opt("batch", A::kBool, "false",
           "Sum over the batch before dividing (one value per class, not per sample and class)."),
       opt("soft_label", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")}};
}

ComponentSpec cross_entropy_loss_spec() {
  return ComponentSpec{
      "CrossEntropyLoss",
      "torch.nn.CrossEntropyLoss.",
      {opt("weight", A::kFloats, "null", "Class weights, one per class."),
       opt("ignore_index", A::kInt, "-100", "Target value that does not contribute to the loss."),
       opt("reduction", A::kString, "\"mean\"", "mean, sum or none."),
       opt("label_smoothing", A::kFloat, "0.0", "Label smoothing amount in [0, 1].")}};
}

ComponentSpec bce_with_logits_loss_spec() {
  return ComponentSpec{
      "BCEWithLogitsLoss",
      "torch.nn.BCEWithLogitsLoss.",
      {opt("weight", A::kFloats, "null", "Weight per channel."),
       opt("reduction", A::kString, "\"mean\"", "mean, sum or none."),
       opt("pos_weight", A::kFloats, "null", "Weight of the positive examples, per channel.")}};
}

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

void register_losses(LossRegistry& r) {
  r.add(deep_supervision_loss_spec(), [&r](const ConfigNode& a, const BuildContext& ctx) {
    const auto mode = a.require<std::string>("weight_mode");
    if (mode != "same" && mode != "exp" && mode != "two") {
      throw a.at("weight_mode").error("must be same, exp or two");
    }
    auto inner = r.create(a.at("loss"), ctx);
    if (!inner) throw a.at("loss").error("the wrapped loss cannot be disabled");
    return std::make_unique<DeepSupervisionLoss>(std::move(inner), mode, weight_arg(a, "weights"));
  });
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
  r.add(tversky_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<TverskyLoss>(DiceOptions::from(a), a.require<double>("alpha"),
                                         a.require<double>("beta"));
  });
  r.add(focal_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<FocalLoss>(FocalOptions::from(a));
  });
  r.add(cross_entropy_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<CrossEntropy>(weight_arg(a, "weight"), reduction_arg(a),
                                          a.require<double>("label_smoothing"),
                                          a.require<int64_t>("ignore_index"));
  });
  r.add(bce_with_logits_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<BCEWithLogits>(weight_arg(a, "weight"), weight_arg(a, "pos_weight"),
                                           reduction_arg(a));
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
