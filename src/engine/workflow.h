#pragma once
/// The training and evaluation loops (MONAI's SupervisedTrainer / SupervisedEvaluator on ignite's
/// event model), handlers that hook into them, and metric accumulators.
///
/// Determinism: every random draw of a run is a function of (seed, epoch, position): the data
/// pipeline draws from data::sample_rng(seed, epoch, index), the loader shuffles with
/// mix_seed(seed, epoch) and the trainer reseeds LibTorch's generator at the start of each epoch.
/// An interrupted run resumed at an epoch boundary therefore continues exactly.

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "core/registry.h"
#include "data/loader.h"
#include "engine/inferer.h"
#include "engine/monitor.h"
#include "losses/loss.h"
#include "nets/network.h"
#include "optim/optim.h"
#include "transforms/transform.h"

namespace barton::engine {

class Engine;

/// What a loop knows about itself (ignite's engine.state).
struct RunState {
  int64_t epoch = 0;            ///< Current (1-based) epoch; the last finished one between epochs.
  int64_t max_epochs = 1;
  int64_t iteration = 0;        ///< Global iteration count, 1-based after the first iteration.
  int64_t epoch_iteration = 0;  ///< Iteration within the epoch.
  int64_t epoch_length = 0;     ///< Iterations per epoch.
  double loss = std::numeric_limits<double>::quiet_NaN();  ///< Last iteration's loss (trainer).
  int64_t batch_size = 0;
  std::map<std::string, double> metrics;  ///< Last epoch's metrics by log label.
  std::map<std::string, double> validation;  ///< Trainer: the last validation's metrics.
  std::string key_metric_name;
  double best_metric = -std::numeric_limits<double>::infinity();
  int64_t best_metric_epoch = -1;
  bool terminate = false;
  double epoch_seconds = 0;     ///< Duration of the last epoch.
  std::vector<double> epoch_times;
  std::chrono::steady_clock::time_point epoch_start, run_start;
  SystemSample system;  ///< Trainer: CPU, memory and GPU over the last epoch.
};

/// Hooks into a loop. Handlers run in config order, except that CheckpointLoader runs first.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual std::string name() const = 0;
  virtual void started(Engine& e) { (void)e; }
  virtual void epoch_started(Engine& e) { (void)e; }
  virtual void iteration_completed(Engine& e) { (void)e; }
  virtual void epoch_completed(Engine& e) { (void)e; }
  virtual void completed(Engine& e) { (void)e; }
  /// Runs before others on "started" when true (checkpoint loading).
  virtual bool early() const { return false; }
};

/// Per-case metric accumulation (MONAI's IgniteMetric / CumulativeIterationMetric).
class Distributed;
class GradReducer;

class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;
  virtual void reset() = 0;
  /// pred, label: [B, C, *spatial] binarised (one-hot) on the same grid; spacing in mm per spatial
  /// axis; cases: one name per batch item.
  virtual void update(const at::Tensor& pred, const at::Tensor& label, const std::vector<double>& spacing,
                      const std::vector<std::string>& cases) = 0;
  virtual double compute() const = 0;
  /// Per-case, per-class values [N, C] for reports, or an undefined tensor.
  virtual at::Tensor details() const { return {}; }
  virtual std::vector<std::string> detail_cases() const { return {}; }
  /// Data-parallel evaluation: replaces what this rank accumulated by the union over all ranks, so
  /// that every rank computes the metric over every case exactly once. Every rank must call it.
  virtual void merge(Distributed& dist);
};

struct NamedMetric {
  std::string label;  ///< log_label ("val_mean_dice"), or the component name.
  std::shared_ptr<Metric> metric;
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

/// Runs a network under autocast: fp16 on CUDA when `amp`; bf16 on CPU when `cpu_bf16` and the CPU
/// has native bf16 (AVX512-BF16 or AMX); a no-op otherwise.
class AutocastGuard {
 public:
  AutocastGuard(bool amp, bool cpu_bf16, const torch::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;
  bool active() const { return active_; }

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool prev_enabled_ = false;
};

/// True when the CPU does bf16 arithmetic natively (cpuinfo flags avx512_bf16 or amx_bf16).
bool cpu_has_bf16();

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
  int64_t epoch_length = 0;  ///< 0: the whole loader.
  /// Data-parallel validation: each rank evaluates its shard of the loader, and the metrics are
  /// merged over ranks before they are computed (null: one process).
  std::shared_ptr<Distributed> dist;
  /// Case names of the last run (all ranks' in rank order when data-parallel).
  std::vector<std::string> cases;

  /// One pass over the loader; returns the key metric (NaN without one).
  double run();
};

/// Options of the training loop beyond MONAI's arguments.
struct TrainerOptions {
  int64_t max_epochs = 1;
  int64_t epoch_length = 0;      ///< 0: the whole loader.
  int64_t grad_accumulation = 1; ///< Optimizer step every N iterations, on their mean gradient.
  double grad_clip_norm = 0;     ///< Clip the global gradient norm when > 0.
  uint64_t seed = 0;
  bool deterministic = false;    ///< determinism.random_seed was set: reseed per epoch.
  std::string resume_path;       ///< Full-state checkpoint written at each epoch's end ("" = none).
};

class Trainer final : public Engine {
 public:
  std::string role() const override { return "train"; }
  TrainerOptions options;
  /// Data-parallel group (null: one process). Parameters are broadcast from rank 0 at the start,
  /// gradients averaged before each optimizer step, and a stop requested on any rank stops all.
  std::shared_ptr<Distributed> dist;
  double comm_seconds = 0;  ///< Gradient all-reduce time not hidden behind backward (data-parallel runs).
  int64_t comm_steps = 0;
  std::shared_ptr<nets::Network> network;
  std::shared_ptr<data::DataLoader> loader;
  std::shared_ptr<losses::Loss> loss;
  std::shared_ptr<optim::Optimizer> optimizer;
  std::shared_ptr<optim::LrScheduler> scheduler;  ///< May be null.
  std::shared_ptr<Inferer> inferer;
  std::shared_ptr<transforms::Compose> post;      ///< For train metrics; may be null.
  std::string network_config;  ///< {"name", "args"} of the model, stored in checkpoints.

  /// Trains from state.epoch + 1 to max_epochs (or until a handler terminates).
  void run();
  /// Writes the full training state (model, optimizer, schedule, epoch, iteration, best metric).
  void save_state(const std::string& path) const;
  /// Restores what save_state wrote. Throws IoError naming the file.
  void load_state(const std::string& path);

 private:
  void train_iteration(data::Batch& batch);
  /// fp16 autocast on CUDA: dynamic loss scaling (torch.cuda.amp.GradScaler's defaults: 2^16,
  /// halved and the step skipped on inf/NaN gradients, doubled after 2000 clean steps).
  bool scaling() const { return amp && device.is_cuda(); }
  bool unscale_and_check();
  std::vector<torch::Tensor> params_;  // the network's parameters, each once (set by run())
  int64_t pending_ = 0;  // iterations accumulated since the last optimizer step
  std::shared_ptr<GradReducer> reducer_;  // data-parallel gradient averaging (made on first use)
  double scale_ = 65536.0;
  int64_t clean_steps_ = 0;
};

/// Runs the post transforms on per-case samples built from a batch and the prediction:
/// "pred" takes the image's geometry and history (MONAI's decollate_batch + MetaTensor).
std::vector<transforms::Sample> decollate(const data::Batch& batch, const at::Tensor& pred,
                                          const transforms::Compose* post, transforms::Rng& rng);

/// Stacks key `key` of the post-processed samples to [B, C, *spatial].
at::Tensor stack_key(const std::vector<transforms::Sample>& samples, const std::string& key);

/// Spacing (mm) of a sample's image item.
std::vector<double> item_spacing(const transforms::ImageItem& item);

using HandlerRegistry = Registry<Handler>;
using MetricRegistry = Registry<Metric>;
void register_handlers(HandlerRegistry& r);
void register_metrics(MetricRegistry& r);

}  // namespace barton::engine
