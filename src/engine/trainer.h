#pragma once
/// The training loop (MONAI's SupervisedTrainer), with gradient accumulation, loss scaling,
/// data-parallel gradient averaging and full-state checkpoints for resuming.

#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "engine/engine.h"
#include "engine/inferer.h"
#include "engine/interaction.h"
#include "losses/loss.h"
#include "nets/network.h"
#include "optim/optim.h"
#include "transforms/transform.h"

namespace barton::engine {

class GradReducer;

/// Options of the training loop beyond MONAI's arguments.
struct TrainerOptions {
  int64_t max_epochs = 1;
  int64_t epoch_length = 0;       ///< 0: the whole loader.
  int64_t grad_accumulation = 1;  ///< Optimizer step every N iterations, on their mean gradient.
  double grad_clip_norm = 0;      ///< Clip the global gradient norm when > 0.
  uint64_t seed = 0;
  bool deterministic = false;  ///< determinism.random_seed was set: reseed per epoch.
  std::string resume_path;     ///< Full-state checkpoint written at each epoch's end ("" = none).
};

class Trainer final : public Engine {
 public:
  std::string role() const override { return "train"; }
  TrainerOptions options;
  /// Data-parallel group (null: one process). Parameters are broadcast from rank 0 at the start,
  /// gradients averaged before each optimizer step, and a stop requested on any rank stops all.
  std::shared_ptr<Distributed> dist;
  double comm_seconds =
      0;  ///< Gradient all-reduce time not hidden behind backward (data-parallel runs).
  int64_t comm_steps = 0;
  std::shared_ptr<nets::Network> network;
  std::shared_ptr<data::DataLoader> loader;
  std::shared_ptr<losses::Loss> loss;
  std::shared_ptr<optim::Optimizer> optimizer;
  std::shared_ptr<optim::LrScheduler> scheduler;  ///< May be null.
  std::shared_ptr<Inferer> inferer;
  /// Simulated clicks before each iteration (interactive models); may be null.
  std::shared_ptr<Interaction> interaction;
  std::shared_ptr<transforms::Compose> post;  ///< For train metrics; may be null.
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
  std::vector<torch::Tensor> params_;     // the network's parameters, each once (set by run())
  int64_t pending_ = 0;                   // iterations accumulated since the last optimizer step
  std::shared_ptr<GradReducer> reducer_;  // data-parallel gradient averaging (made on first use)
  double scale_ = 65536.0;
  int64_t clean_steps_ = 0;
};

}  // namespace barton::engine
