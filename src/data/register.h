#pragma once
/// Transforms implemented in data/ (they need io/): LoadImaged.
#include "transforms/register.h"

namespace barton::data {
void register_data_transforms(transforms::TransformRegistry& r);
void register_save_image(transforms::TransformRegistry& r);
}  // namespace barton::data
