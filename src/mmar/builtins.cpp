#include "data/register.h"
#include "engine/evaluator.h"
#include "engine/handler.h"
#include "engine/inferer.h"
#include "engine/metric.h"
#include "engine/trainer.h"
#include "losses/loss.h"
#include "mmar/registries.h"
#include "mmar/workflow.h"
#include "nets/register.h"
#include "optim/optim.h"
#include "transforms/register.h"

namespace barton {

std::vector<const RegistryBase*> Registries::all() const {
  return {&transforms, &networks,    &losses,      &optimizers, &lr_schedulers,
          &datasets,   &dataloaders, &inferers,    &metrics,    &handlers,
          &trainers,   &evaluators,  &interactions};
}

const RegistryBase* Registries::by_kind(std::string_view kind) const {
  for (const auto* r : all()) {
    if (r->kind() == kind) return r;
  }
  return nullptr;
}

const Registries& builtin_registries() {
  static const Registries kRegistries = [] {
    Registries r;
    // The catalogue first (every component's spec), then the domains attach implementations.
    mmar::register_planned_components(r);
    transforms::register_transforms(r.transforms);
    data::register_data_transforms(r.transforms);
    nets::register_networks(r.networks);
    losses::register_losses(r.losses);
    optim::register_optimizers(r.optimizers);
    optim::register_schedulers(r.lr_schedulers);
    engine::register_inferers(r.inferers);
    data::register_datasets(r.datasets);
    data::register_dataloaders(r.dataloaders);
    engine::register_handlers(r.handlers);
    engine::register_metrics(r.metrics);
    mmar::register_engines(r);
    return r;
  }();
  return kRegistries;
}

}  // namespace barton
