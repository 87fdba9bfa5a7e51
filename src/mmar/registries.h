#pragma once
/// Every registry Barton has, one per component kind, filled by builtins.cpp through the
/// domains' explicit register_<domain>() functions (no static self-registration).

#include <string>
#include <vector>

#include "core/registry.h"

namespace barton::transforms {
class Transform;
}
namespace barton::nets {
class Network;
}
namespace barton::losses {
class Loss;
}
namespace barton::engine {
class Inferer;
class Handler;
class Metric;
class Trainer;
class Evaluator;
class Interaction;
}  // namespace barton::engine
namespace barton::data {
class Dataset;
class DataLoader;
}  // namespace barton::data
namespace barton::optim {
class Optimizer;
class LrScheduler;
}  // namespace barton::optim

namespace barton {

/// Placeholder base for kinds whose C++ interface arrives with a later issue. Components of those
/// kinds are registered as planned (spec only) until then.
struct Component {
  virtual ~Component() = default;
};

struct Registries {
  Registry<transforms::Transform> transforms{"transform"};
  Registry<nets::Network> networks{"network"};
  Registry<losses::Loss> losses{"loss"};
  Registry<optim::Optimizer> optimizers{"optimizer"};
  Registry<optim::LrScheduler> lr_schedulers{"lr_scheduler"};
  Registry<data::Dataset> datasets{"dataset"};
  Registry<data::DataLoader> dataloaders{"dataloader"};
  Registry<engine::Inferer> inferers{"inferer"};
  Registry<engine::Metric> metrics{"metric"};
  Registry<engine::Handler> handlers{"handler"};
  /// Trainers and evaluators are assembled by mmar/workflow.cpp from their arguments; their
  /// entries carry the specs and mark them available.
  Registry<engine::Trainer> trainers{"trainer"};
  Registry<engine::Evaluator> evaluators{"evaluator"};
  Registry<engine::Interaction> interactions{"iteration"};

  /// All registries in listing order.
  std::vector<const RegistryBase*> all() const;
  /// By kind name ("loss", "transform", ...); nullptr if unknown.
  const RegistryBase* by_kind(std::string_view kind) const;
};

/// The process-wide registries with every built-in component. Thread-safe (built once).
const Registries& builtin_registries();

namespace mmar {
/// Adds the MONAI / Clara components that later issues implement, as planned entries.
void register_planned_components(Registries& r);
}  // namespace mmar

}  // namespace barton
