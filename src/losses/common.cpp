// Helpers shared by the loss files (common.h).
#include "losses/common.h"

#include <torch/torch.h>

#include "core/errors.h"
#include "core/logging.h"

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

Activation Activation::from(const ConfigNode& a) {
  Activation x;
  x.sigmoid = a.require<bool>("sigmoid");
  x.softmax = a.require<bool>("softmax");
  if (x.sigmoid && x.softmax) throw a.error("sigmoid and softmax are mutually exclusive");
  if (a.given("other_act")) {
    throw a.at("other_act").error("other_act (a Python callable) is not supported");
  }
  return x;
}

torch::Tensor Activation::apply(torch::Tensor x) const {
  if (sigmoid) x = torch::sigmoid(x);
  if (softmax && x.size(1) > 1) x = torch::softmax(x, 1);
  return x;
}

DiceOptions DiceOptions::from(const ConfigNode& a) {
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

DiceOptions DiceOptions::from_dice(const ConfigNode& a) {
  DiceOptions o = from(a);
  o.squared_pred = a.require<bool>("squared_pred");
  o.jaccard = a.require<bool>("jaccard");
  o.weight = weight_arg(a, "weight");
  return o;
}

std::vector<ArgSpec> dice_common_args_spec() {
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
      opt("reduction", A::kString, "\"mean\"",
          "Reduction over batch and classes: mean, sum or none."),
      opt("smooth_nr", A::kFloat, "1e-05", "Constant added to the numerator."),
      opt("smooth_dr", A::kFloat, "1e-05",
          "Constant added to the denominator (avoids division by zero)."),
      opt("batch", A::kBool, "false",
          "Sum over the batch before dividing (one value per class, not per sample and class)."),
      opt("soft_label", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")};
}

std::vector<ArgSpec> dice_args_spec() {
  auto args = dice_common_args_spec();
  args.push_back(
      opt("squared_pred", A::kBool, "false", "Use squared input and label in the denominator."));
  args.push_back(
      opt("jaccard", A::kBool, "false", "Compute the Jaccard (IoU) form instead of Dice."));
  args.push_back(
      opt("weight", A::kFloats, "null",
          "Class weights: one value or one per class (DiceCE and DiceFocal weight both terms)."));
  return args;
}

}  // namespace barton::losses
