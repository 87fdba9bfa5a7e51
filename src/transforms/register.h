#pragma once
/// Registration of the transform families into the transform registry (explicit, no static
/// self-registration; docs/architecture.md). Specs come from the catalogue (mmar/planned_components.cpp);
/// these attach the implementations.

#include "core/registry.h"
#include "transforms/transform.h"

namespace barton::transforms {

using TransformRegistry = Registry<Transform>;

void register_transforms(TransformRegistry& r);

void register_utility(TransformRegistry& r);
void register_intensity(TransformRegistry& r);
void register_spatial(TransformRegistry& r);
void register_croppad(TransformRegistry& r);
void register_post(TransformRegistry& r);

}  // namespace barton::transforms
