#pragma once
/// The evaluation loop (MONAI's SupervisedEvaluator).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "data/loader.h"
#include "engine/engine.h"
#include "engine/inferer.h"
#include "engine/interaction.h"
#include "transforms/transform.h"

namespace barton::engine {

/// Evaluates a network over a loader: inferer, post transforms per case, metrics.
class Evaluator final : public Engine {
 public:
  std::string role() const override { return "validate"; }
  std::shared_ptr<data::DataLoader> loader;
  std::shared_ptr<torch::nn::Module> network_module;  ///< Keeps the network alive.
  Predictor predictor;                                ///< The network's forward (eval mode).
  std::function<void(bool train)> set_mode;           ///< Switches the network's mode.
  std::shared_ptr<Inferer> inferer;
  std::shared_ptr<transforms::Compose> post;
  /// Simulated clicks before each prediction (interactive models); may be null.
  std::shared_ptr<Interaction> interaction;
  int64_t epoch_length = 0;  ///< 0: the whole loader.
  /// Data-parallel validation: each rank evaluates its shard of the loader, and the metrics are
  /// merged over ranks before they are computed (null: one process).
  std::shared_ptr<Distributed> dist;
  /// Case names of the last run (all ranks' in rank order when data-parallel).
  std::vector<std::string> cases;

  /// One pass over the loader; returns the key metric (NaN without one).
  double run();
};

}  // namespace barton::engine
