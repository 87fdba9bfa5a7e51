// Dataset and DataLoader components. Their factories take the datalist ("datalist"), the transform
// chain (args.transform, default "@pre_transforms") and the dataset ("@dataset") from the
// BuildContext, which the workflow builder fills section by section.
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "core/build_args.h"
#include "core/errors.h"
#include "data/register.h"

namespace barton::data {

namespace {

using A = ArgType;

int workers(int n) {
  return n > 0 ? n : 1;
}

ArgSpec transform_spec() {
  return opt("transform", A::kReference, "\"@pre_transforms\"", "The transform chain.");
}

ComponentSpec dataset_spec() {
  return ComponentSpec{"Dataset", "Runs the whole chain on every access.", {transform_spec()}};
}

ComponentSpec cache_dataset_spec() {
  return ComponentSpec{
      "CacheDataset",
      "Caches the deterministic prefix of the chain in memory.",
      {transform_spec(),
       opt("cache_num", A::kInt, "9223372036854775807", "Maximum number of items to cache."),
       opt("cache_rate", A::kFloat, "1.0",
           "Fraction of the items to cache (the smaller of the two limits applies)."),
       opt("num_workers", A::kInt, "1", "Threads that fill the cache."),
       opt("progress", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("copy_cache", A::kBool, "true",
           "Hand out copies of cached samples (consulted when the chain has no random transform)."),
       opt("as_contiguous", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("hash_as_key", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("runtime_cache", A::kAny, "false", "Accepted for MONAI compatibility; ignored.")}};
}

ComponentSpec smart_cache_dataset_spec() {
  return ComponentSpec{
      "SmartCacheDataset",
      "Caches a subset and replaces part of it in the background each epoch.",
      {transform_spec(),
       opt("replace_rate", A::kFloat, "0.1",
           "Fraction of the cache window replaced at each epoch."),
       opt("cache_num", A::kInt, "9223372036854775807",
           "Maximum number of items in the cache window."),
       opt("cache_rate", A::kFloat, "1.0",
           "Fraction of the items in the cache window (the smaller limit applies)."),
       opt("num_init_workers", A::kInt, "1", "Threads that fill the initial cache window."),
       opt("num_replace_workers", A::kInt, "1", "Threads that prepare the replacement items."),
       opt("progress", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("shuffle", A::kBool, "true",
           "Shuffle the item order once before caching (seeded by seed)."),
       opt("seed", A::kInt, "0", "Seed of that shuffle."),
       opt("copy_cache", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("as_contiguous", A::kBool, "true", "Accepted for MONAI compatibility; ignored.")}};
}

ComponentSpec persistent_dataset_spec() {
  return ComponentSpec{
      "PersistentDataset",
      "Caches the deterministic prefix on disk, keyed by chain and file.",
      {transform_spec(),
       req("cache_dir", A::kString, "Directory of the on-disk cache (relative to the MMAR root)."),
       opt("hash_func", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("pickle_module", A::kString, "\"pickle\"", "Accepted for MONAI compatibility; ignored."),
       opt("pickle_protocol", A::kInt, "2", "Accepted for MONAI compatibility; ignored."),
       opt("hash_transform", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       opt("reset_ops_id", A::kBool, "true", "Accepted for MONAI compatibility; ignored.")}};
}

std::vector<ArgSpec> data_loader_args_spec() {
  std::vector<ArgSpec> common = {
      opt("dataset", A::kReference, "\"@dataset\"", "The dataset to load."),
      opt("batch_size", A::kInt, "1",
          "Dataset items per batch (each may yield num_samples patches)."),
      opt("shuffle", A::kBool, "false", "Reshuffle the order at every epoch (seeded)."),
      opt("num_workers", A::kInt, "0", "Worker threads."),
      opt("drop_last", A::kBool, "false", "Drop an incomplete last batch."),
      opt("pin_memory", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
      opt("collate_fn", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
      opt("prefetch_factor", A::kInt, "2", "Batches prepared ahead per worker."),
      opt("persistent_workers", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
      opt("sampler", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
      opt("timeout", A::kFloat, "0", "Accepted for MONAI compatibility; ignored.")};
  return common;
}

ComponentSpec data_loader_spec() {
  return ComponentSpec{"DataLoader", "Batches samples with worker threads.",
                       data_loader_args_spec()};
}

ComponentSpec thread_data_loader_spec() {
  auto thread = data_loader_args_spec();
  thread.push_back(opt("buffer_size", A::kInt, "1", "Accepted for MONAI compatibility; ignored."));
  thread.push_back(
      opt("buffer_timeout", A::kFloat, "0.01", "Accepted for MONAI compatibility; ignored."));
  thread.push_back(opt("repeats", A::kInt, "1", "Accepted for MONAI compatibility; ignored."));
  thread.push_back(
      opt("use_thread_workers", A::kBool, "false", "Accepted for MONAI compatibility; ignored."));
  return ComponentSpec{"ThreadDataLoader", "DataLoader with a background prefetch thread.", thread};
}

}  // namespace

void register_datasets(DatasetRegistry& r) {
  auto common = [](const ConfigNode& a, const BuildContext& ctx) {
    auto items = lookup_as<std::vector<DataItem>>(ctx, "datalist", a);
    auto chain = lookup_as<std::shared_ptr<transforms::Compose>>(
        ctx, ref_arg(a, "transform", "pre_transforms"), a);
    return std::make_pair(std::move(items),
                          std::shared_ptr<const transforms::Compose>(std::move(chain)));
  };
  r.add(dataset_spec(),
        [common](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Dataset> {
          auto [items, chain] = common(a, ctx);
          return std::make_unique<Dataset>(std::move(items), chain, ctx.seed);
        });
  r.add(cache_dataset_spec(),
        [common](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Dataset> {
          auto [items, chain] = common(a, ctx);
          CacheOptions o;
          o.cache_num = a.require<int64_t>("cache_num");
          o.cache_rate = a.require<double>("cache_rate");
          o.num_workers = workers(a.require<int>("num_workers"));
          o.copy_cache = a.require<bool>("copy_cache");
          return std::make_unique<CacheDataset>(std::move(items), chain, ctx.seed, o);
        });
  r.add(smart_cache_dataset_spec(),
        [common](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Dataset> {
          auto [items, chain] = common(a, ctx);
          SmartCacheOptions o;
          o.replace_rate = a.require<double>("replace_rate");
          o.cache_num = a.require<int64_t>("cache_num");
          o.cache_rate = a.require<double>("cache_rate");
          o.num_init_workers = workers(a.require<int>("num_init_workers"));
          o.num_replace_workers = workers(a.require<int>("num_replace_workers"));
          o.shuffle = a.require<bool>("shuffle");
          o.seed = static_cast<uint64_t>(a.require<int64_t>("seed"));
          return std::make_unique<SmartCacheDataset>(std::move(items), chain, ctx.seed, o);
        });
  r.add(persistent_dataset_spec(),
        [common](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Dataset> {
          auto [items, chain] = common(a, ctx);
          std::string dir = a.require<std::string>("cache_dir");
          if (!std::filesystem::path(dir).is_absolute())
            dir = (std::filesystem::path(ctx.mmar_root) / dir).string();
          return std::make_unique<PersistentDataset>(std::move(items), chain, ctx.seed, dir);
        });
}

void register_dataloaders(DataLoaderRegistry& r) {
  auto make = [](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<DataLoader> {
    auto ds = lookup_as<std::shared_ptr<Dataset>>(ctx, ref_arg(a, "dataset", "dataset"), a);
    LoaderOptions o;
    o.batch_size = a.require<int>("batch_size");
    if (o.batch_size < 1)
      throw ConfigError(a.source(), a.pointer() + "/batch_size", "batch_size must be at least 1");
    o.shuffle = a.require<bool>("shuffle");
    o.drop_last = a.require<bool>("drop_last");
    // Worker threads beyond the machine's cores only add contention.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    o.num_workers = std::min(a.require<int>("num_workers"), cores);
    o.prefetch = std::max(1, a.require<int>("prefetch_factor"));
    o.seed = ctx.seed;
    return std::make_unique<DataLoader>(ds, o);
  };
  r.add(data_loader_spec(), make);
  r.add(thread_data_loader_spec(), make);
}

}  // namespace barton::data
