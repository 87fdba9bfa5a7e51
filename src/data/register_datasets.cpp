// Dataset and DataLoader components. Their factories take the datalist ("datalist"), the transform
// chain (args.transform, default "@pre_transforms") and the dataset ("@dataset") from the
// BuildContext, which the workflow builder fills section by section.
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "core/errors.h"
#include "core/build_args.h"
#include "data/register.h"

namespace barton::data {

namespace {

int workers(int n) { return n > 0 ? n : 1; }

}  // namespace

void register_datasets(DatasetRegistry& r) {
  auto common = [](const ConfigNode& a, const BuildContext& ctx) {
    auto items = lookup_as<std::vector<DataItem>>(ctx, "datalist", a);
    auto chain = lookup_as<std::shared_ptr<transforms::Compose>>(ctx, ref_arg(a, "transform", "pre_transforms"), a);
    return std::make_pair(std::move(items), std::shared_ptr<const transforms::Compose>(std::move(chain)));
  };
  r.implement("Dataset", [common](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Dataset> {
    auto [items, chain] = common(a, ctx);
    return std::make_unique<Dataset>(std::move(items), chain, ctx.seed);
  });
  r.implement("CacheDataset", [common](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Dataset> {
    auto [items, chain] = common(a, ctx);
    CacheOptions o;
    o.cache_num = arg_or<int64_t>(a, "cache_num", o.cache_num);
    o.cache_rate = arg_or<double>(a, "cache_rate", o.cache_rate);
    o.num_workers = workers(arg_or<int>(a, "num_workers", 1));
    o.copy_cache = arg_or<bool>(a, "copy_cache", true);
    return std::make_unique<CacheDataset>(std::move(items), chain, ctx.seed, o);
  });
  r.implement("SmartCacheDataset", [common](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Dataset> {
    auto [items, chain] = common(a, ctx);
    SmartCacheOptions o;
    o.replace_rate = arg_or<double>(a, "replace_rate", o.replace_rate);
    o.cache_num = arg_or<int64_t>(a, "cache_num", o.cache_num);
    o.cache_rate = arg_or<double>(a, "cache_rate", o.cache_rate);
    o.num_init_workers = workers(arg_or<int>(a, "num_init_workers", 1));
    o.num_replace_workers = workers(arg_or<int>(a, "num_replace_workers", 1));
    o.shuffle = arg_or<bool>(a, "shuffle", true);
    o.seed = static_cast<uint64_t>(arg_or<int64_t>(a, "seed", 0));
    return std::make_unique<SmartCacheDataset>(std::move(items), chain, ctx.seed, o);
  });
  r.implement("PersistentDataset", [common](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<Dataset> {
    auto [items, chain] = common(a, ctx);
    std::string dir = a.require<std::string>("cache_dir");
    if (!std::filesystem::path(dir).is_absolute()) dir = (std::filesystem::path(ctx.mmar_root) / dir).string();
    return std::make_unique<PersistentDataset>(std::move(items), chain, ctx.seed, dir);
  });
}

void register_dataloaders(DataLoaderRegistry& r) {
  auto make = [](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<DataLoader> {
    auto ds = lookup_as<std::shared_ptr<Dataset>>(ctx, ref_arg(a, "dataset", "dataset"), a);
    LoaderOptions o;
    o.batch_size = arg_or<int>(a, "batch_size", 1);
    if (o.batch_size < 1) throw ConfigError(a.source(), a.pointer() + "/batch_size", "batch_size must be at least 1");
    o.shuffle = arg_or<bool>(a, "shuffle", false);
    o.drop_last = arg_or<bool>(a, "drop_last", false);
    // Worker threads beyond the machine's cores only add contention.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    o.num_workers = std::min(arg_or<int>(a, "num_workers", 0), cores);
    o.prefetch = std::max(1, arg_or<int>(a, "prefetch_factor", 2));
    o.seed = ctx.seed;
    return std::make_unique<DataLoader>(ds, o);
  };
  r.implement("DataLoader", make);
  r.implement("ThreadDataLoader", make);
}

}  // namespace barton::data
