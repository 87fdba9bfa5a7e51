#pragma once
/// What MONAI's losses share: reduction, class weights, activation, one-hot and background removal.

#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "core/config.h"
#include "core/registry.h"
#include "losses/loss.h"

namespace barton::losses {

using A = ArgType;

enum class Reduction { kMean, kSum, kNone };

/// `reduction`: mean, sum or none.
Reduction reduction_arg(const ConfigNode& a);
/// A weight argument: null (empty), one number or a list; every value non-negative.
std::vector<double> weight_arg(const ConfigNode& a, const char* name);
/// Reduces per-(batch, class) values; "none" keeps them with singleton spatial dims, as MONAI.
torch::Tensor reduce(const torch::Tensor& f, Reduction r, int64_t spatial);

/// MONAI's sigmoid / softmax flags (other_act is rejected).
struct Activation {
  bool sigmoid = false, softmax = false;
  static Activation from(const ConfigNode& a);
  torch::Tensor apply(torch::Tensor x) const;
};

/// Activation, one-hot, background removal and the shape check, as every MONAI Dice-family loss.
std::pair<torch::Tensor, torch::Tensor> prepare(torch::Tensor input,
                                                torch::Tensor target,
                                                const Activation& act,
                                                bool to_onehot_y,
                                                bool include_background,
                                                const std::string& who);
/// The axes a Dice-family loss sums over: spatial, plus the batch when `batch`.
std::vector<int64_t> reduce_axes(const torch::Tensor& t, bool batch);
/// Multiplies per-class values by the class weights (one value or one per class).
torch::Tensor apply_class_weight(torch::Tensor f,
                                 const std::vector<double>& w,
                                 int64_t classes,
                                 const std::string& who);

/// Arguments of the Dice family except the Dice-only ones (GeneralizedDiceLoss, TverskyLoss).
struct DiceOptions {
  // from / from_dice set every field from the arguments, whose defaults are the spec's.
  bool include_background = false, to_onehot_y = false, squared_pred = false, jaccard = false,
       batch = false;
  Activation act;
  Reduction reduction = Reduction::kMean;
  double smooth_nr = 0, smooth_dr = 0;
  std::vector<double> weight;
  /// The arguments every Dice-family loss has (GeneralizedDiceLoss and TverskyLoss: these only).
  static DiceOptions from(const ConfigNode& a);
  /// DiceLoss's arguments (dice_args_spec): the common ones plus squared_pred, jaccard and weight.
  static DiceOptions from_dice(const ConfigNode& a);
};

/// The argument rows of DiceLoss (DiceCE and DiceFocal add theirs).
std::vector<ArgSpec> dice_args_spec();
/// The rows DiceOptions::from reads, plus soft_label: every Dice-family loss has them.
std::vector<ArgSpec> dice_common_args_spec();

}  // namespace barton::losses
