// torch.nn.CrossEntropyLoss and BCEWithLogitsLoss: specs and registration.
#include "losses/torch_losses.h"

#include "losses/register.h"

namespace barton::losses {
namespace {

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

}  // namespace

void register_torch_losses(LossRegistry& r) {
  r.add(cross_entropy_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<CrossEntropy>(weight_arg(a, "weight"), reduction_arg(a),
                                          a.require<double>("label_smoothing"),
                                          a.require<int64_t>("ignore_index"));
  });
  r.add(bce_with_logits_loss_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<BCEWithLogits>(weight_arg(a, "weight"), weight_arg(a, "pos_weight"),
                                           reduction_arg(a));
  });
}

}  // namespace barton::losses
