#include "mmar/registries.h"

namespace barton {

std::vector<const RegistryBase*> Registries::all() const {
  return {&transforms, &networks, &losses,   &optimizers, &lr_schedulers, &datasets,    &dataloaders,
          &inferers,   &metrics,  &handlers, &trainers,   &evaluators,    &interactions};
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
    // Domains register their implemented components here as they land (register_transforms(r),
    // register_losses(r), ...); what remains of the MONAI / Clara catalogue is planned.
    mmar::register_planned_components(r);
    return r;
  }();
  return kRegistries;
}

}  // namespace barton
