#pragma once
/// What data/ registers: the transforms that need io/ (LoadImaged, SaveImaged), datasets and
/// loaders.
#include "data/dataset.h"
#include "data/loader.h"
#include "transforms/register.h"

namespace barton::data {
void register_data_transforms(transforms::TransformRegistry& r);
void register_save_image(transforms::TransformRegistry& r);

using DatasetRegistry = Registry<Dataset>;
using DataLoaderRegistry = Registry<DataLoader>;
void register_datasets(DatasetRegistry& r);
void register_dataloaders(DataLoaderRegistry& r);
}  // namespace barton::data
