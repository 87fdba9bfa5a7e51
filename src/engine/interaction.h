#pragma once
/// Simulated clicks during training and validation of interactive models (MONAI's deepgrow
/// Interaction; Clara's ClickInteraction).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <torch/types.h>

#include "data/loader.h"
#include "engine/inferer.h"
#include "transforms/transform.h"

namespace barton::engine {

/// Before each iteration: `max_interactions` rounds of predicting the batch with the network in
/// eval mode and without gradients, putting each item's prediction under "pred" and the round's
/// click probability under `key_probability` (1 - j / max_interactions in round j when training,
/// else 1), running `transforms` on every item (they find where the prediction is wrong and add a
/// click there), and batching the items again. The iteration itself then trains or evaluates on
/// the batch with the simulated clicks.
class Interaction {
 public:
  std::shared_ptr<transforms::Compose> transforms;
  int64_t max_interactions = 15;
  std::string key_probability = "probability";
  bool train = true;
  /// DeepEdit (MONAI's apps.deepedit Interaction): the chance that an iteration runs click rounds
  /// at all; otherwise the image's channels from 1 on (the click channels) are zeroed and the
  /// network learns the automatic segmentation. 1 = always click (DeepGrow).
  double deepgrow_probability = 1.0;

  /// Runs the rounds on `batch`. `set_mode(false)` is called before predicting and
  /// `set_mode(true)` after when `restore_train` (the trainer's network goes back to training).
  /// Draws come from `seed` only, so a run is repeatable.
  void run(data::Batch& batch,
           const Inferer* inferer,
           const Predictor& predictor,
           const std::function<void(bool)>& set_mode,
           bool restore_train,
           torch::Device device,
           uint64_t seed) const;
};

}  // namespace barton::engine
