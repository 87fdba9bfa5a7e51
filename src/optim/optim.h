#pragma once
/// Optimizers (torch's Adam, AdamW, SGD; MONAI's Novograd) and LR schedules (torch's and MONAI's
/// definitions), built from config components. Parameters come from the BuildContext
/// ("model.parameters()"); schedules drive an Optimizer's learning rates.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "core/registry.h"

namespace torch::optim {
class Optimizer;
}

namespace barton::optim {

/// Thread-safety: single-threaded use (the trainer's thread).
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  virtual void step() = 0;
  virtual void zero_grad() = 0;
  virtual std::size_t num_groups() const = 0;
  virtual double lr(std::size_t group = 0) const = 0;
  virtual void set_lr(double lr, std::size_t group) = 0;
  /// Learning rates the optimizer was built with (the schedules' base_lrs).
  const std::vector<double>& initial_lrs() const { return initial_; }
  /// Multiplies every group's learning rate and base learning rate by `factor` (the linear scaling
  /// rule for data-parallel training: lr x world size).
  void scale_lr(double factor) {
    for (std::size_t g = 0; g < num_groups(); ++g) set_lr(lr(g) * factor, g);
    for (auto& v : initial_) v *= factor;
  }
  /// The wrapped LibTorch optimizer for save/load of its state, or nullptr (Novograd).
  virtual torch::optim::Optimizer* torch_optimizer() { return nullptr; }
  /// Optimizer state as named tensors (for checkpoints) and back.
  virtual std::vector<std::pair<std::string, torch::Tensor>> state() const = 0;
  virtual void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& s) = 0;

 protected:
  std::vector<double> initial_;
};

/// An LR schedule stepped per iteration or per epoch (LrScheduleHandler decides).
class LrScheduler {
 public:
  virtual ~LrScheduler() = default;
  virtual std::string name() const = 0;
  /// Advances one step; `metric` feeds ReduceLROnPlateau.
  virtual void step(std::optional<double> metric = std::nullopt) = 0;
  int64_t last_step() const { return t_; }
  /// For resume: sets the step counter (and re-applies the rate).
  virtual void set_step(int64_t t) = 0;

 protected:
  int64_t t_ = 0;
};

using OptimizerRegistry = Registry<Optimizer>;
using SchedulerRegistry = Registry<LrScheduler>;
void register_optimizers(OptimizerRegistry& r);
void register_schedulers(SchedulerRegistry& r);

/// A parameter group: its tensors and the options it overrides (lr, weight_decay).
struct ParamGroup {
  std::vector<torch::Tensor> params;
  std::optional<double> lr, weight_decay;
};

/// Splits named parameters into groups by the "param_groups" argument
/// ([{"match": "model.2.", "lr": 1e-3, "weight_decay": 0}, ...]: a parameter joins the first group
/// whose "match" prefixes its name); the rest form the first, default group. Without the argument,
/// one group. Errors name the argument's pointer (a group that matches nothing is an error).
std::vector<ParamGroup> param_groups(
    const ConfigNode& args, const std::vector<std::pair<std::string, torch::Tensor>>& named);

/// Builds an optimizer directly (tests, benchmarks).
std::unique_ptr<Optimizer> make_optimizer(const std::string& name,
                                          const ConfigNode& args,
                                          std::vector<torch::Tensor> params);
std::unique_ptr<Optimizer> make_optimizer(const std::string& name,
                                          const ConfigNode& args,
                                          std::vector<ParamGroup> groups);
/// Builds a schedule directly on `opt` (not owned; must outlive the schedule).
std::unique_ptr<LrScheduler> make_scheduler(const std::string& name,
                                            const ConfigNode& args,
                                            Optimizer* opt);

}  // namespace barton::optim
