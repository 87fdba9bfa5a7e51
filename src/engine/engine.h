#pragma once
/// What the training and evaluation loops share (ignite's Engine): state, handlers, metrics,
/// device.
///
/// Determinism: every random draw of a run is a function of (seed, epoch, position): the data
/// pipeline draws from data::sample_rng(seed, epoch, index), the loader shuffles with
/// mix_seed(seed, epoch) and the trainer reseeds LibTorch's generator at the start of each epoch.
/// An interrupted run resumed at an epoch boundary therefore continues exactly.

#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "engine/handler.h"
#include "engine/metric.h"
#include "engine/monitor.h"

namespace barton::engine {

/// What a loop knows about itself (ignite's engine.state).
struct RunState {
  int64_t epoch = 0;  ///< Current (1-based) epoch; the last finished one between epochs.
  int64_t max_epochs = 1;
  int64_t iteration = 0;        ///< Global iteration count, 1-based after the first iteration.
  int64_t epoch_iteration = 0;  ///< Iteration within the epoch.
  int64_t epoch_length = 0;     ///< Iterations per epoch.
  double loss = std::numeric_limits<double>::quiet_NaN();  ///< Last iteration's loss (trainer).
  int64_t batch_size = 0;
  std::map<std::string, double> metrics;     ///< Last epoch's metrics by log label.
  std::map<std::string, double> validation;  ///< Trainer: the last validation's metrics.
  std::string key_metric_name;
  double best_metric = -std::numeric_limits<double>::infinity();
  int64_t best_metric_epoch = -1;
  bool terminate = false;
  double epoch_seconds = 0;  ///< Duration of the last epoch.
  std::vector<double> epoch_times;
  std::chrono::steady_clock::time_point epoch_start, run_start;
  SystemSample system;  ///< Trainer: CPU, memory and GPU over the last epoch.
};

/// What loops share: state, handlers, metrics, device.
class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string role() const = 0;  ///< "train" or "validate"
  RunState state;
  std::vector<std::shared_ptr<Handler>> handlers;
  std::vector<NamedMetric> metrics;  ///< Key metric first (when there is one).
  bool has_key_metric = false;
  torch::Device device = torch::kCPU;
  /// Config `amp`: fp16 autocast with loss scaling on CUDA. As in MONAI, whose autocast is CUDA's,
  /// it changes nothing on CPU: a CPU run computes in float32 unless cpu_bf16 is set.
  bool amp = false;
  /// bfloat16 autocast on CPU (`--bf16`; CPUs with native bf16 only). Not MONAI's behaviour: it is
  /// faster and lowers the best Dice on some seeds (docs/accuracy.md).
  bool cpu_bf16 = false;
  /// The trainer an evaluator reports to (its epoch labels the evaluator's events), or nullptr.
  Engine* parent = nullptr;
  /// Batch keys of the last iteration, for handlers that show images.
  std::map<std::string, at::Tensor> last_output;

  /// The epoch that events are labelled with: the parent's for an evaluator.
  int64_t global_epoch() const { return parent ? parent->state.epoch : state.epoch; }
  /// Sets (or replaces) the handlers, loader first.
  void set_handlers(std::vector<std::shared_ptr<Handler>> h);

 protected:
  void fire_started();
  void fire_epoch_started();
  void fire_iteration_completed();
  void fire_epoch_completed();
  void fire_completed();
  /// Computes the metrics into state.metrics and tracks the best key metric (greater is better).
  void compute_metrics(int64_t epoch_for_best);
};

}  // namespace barton::engine
