// barton preprocess MMAR [-c FILE] [--section train|validate] [--deterministic-only] [--limit N]
// --out DIR Runs a config's pre_transforms on its datalist, through the same datasets as training,
// and writes every result as NIfTI so a user can see what the network sees.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/errors.h"
#include "core/strings.h"
#include "data/dataset.h"
#include "io/image.h"
#include "mmar/builder.h"

namespace barton::cli {

namespace fs = std::filesystem;

namespace {}  // namespace

void setup_preprocess(CLI::App& app, Runner& runner) {
  struct Args {
    std::string mmar, config, env, section = "train", out;
    std::vector<std::string> sets;
    bool deterministic_only = false;
    int64_t limit = -1;
    uint64_t seed = 0;
    int workers = 0;
  };
  auto a = std::make_shared<Args>();
  app.add_option("MMAR", a->mmar, "MMAR folder or config file")->required();
  app.add_option("-c,--config", a->config, "Config file (default: config/config_train.json)");
  app.add_option("-e,--env", a->env, "Environment file");
  app.add_option("--set", a->sets, "Override: KEY=VALUE or /json/pointer=VALUE")->take_all();
  app.add_option("--section", a->section, "train or validate (training configs)")
      ->check(CLI::IsMember({"train", "validate"}));
  app.add_flag("--deterministic-only", a->deterministic_only,
               "Stop before the first random transform (what CacheDataset caches)");
  app.add_option("--limit", a->limit, "Process only the first N cases");
  app.add_option("--seed", a->seed,
                 "Seed of the random transforms (default: determinism.random_seed, else 0)");
  app.add_option("--workers", a->workers, "Worker threads (default: the machine's cores)");
  app.add_option("--out", a->out, "Output folder")->required();
  runner = [a]() {
    const auto files = mmar::locate_config(a->mmar, a->config, a->env);
    const auto cfg = mmar::resolve_config(files, {a->sets, false});
    const auto section = mmar::section_pointer(cfg, a->section);
    auto chain = mmar::build_transforms(cfg, section + "/pre_transforms");
    auto items = mmar::section_datalist(cfg, section);
    if (a->limit >= 0 && static_cast<std::size_t>(a->limit) < items.size())
      items.resize(static_cast<std::size_t>(a->limit));
    uint64_t seed = a->seed;
    if (seed == 0 && cfg.doc.has("determinism"))
      seed = cfg.doc.at("determinism").get_or<int64_t>("random_seed", 0);
    const std::size_t end = a->deterministic_only ? chain->first_random() : chain->size();
    // Same code path as training: the dataset runs the chain (deterministic prefix, then the rest).
    data::CacheOptions co;
    co.num_workers = a->workers > 0
                         ? a->workers
                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    co.cache_rate = 1.0;
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<const transforms::Transform>> steps;
    for (std::size_t i = 0; i < end; ++i)
      steps.push_back(std::shared_ptr<const transforms::Transform>(chain, &chain->step(i)));
    auto used = std::make_shared<transforms::Compose>(std::move(steps));
    data::CacheDataset ds(items, used, seed, co);
    std::size_t written = 0;
    for (std::size_t i = 0; i < ds.size(); ++i) {
      const auto samples = ds.get(i, 0);
      const auto& it = items[i];
      const std::string stem =
          io::image_stem(it.files.count("image") ? it.files.at("image") : it.files.begin()->second);
      for (std::size_t k = 0; k < samples.size(); ++k) {
        for (const auto& key : samples[k].keys()) {
          if (!samples[k].is_image(key)) continue;
          const auto& img = samples[k].image(key);
          io::Image out;
          out.data = img.data.scalar_type() == at::kBool ? img.data.to(at::kByte) : img.data;
          out.affine = img.affine;
          const std::string name =
              stem + "_" + key + (samples.size() > 1 ? "_" + std::to_string(k) : "") + ".nii.gz";
          io::write_image(out, (fs::path(a->out) / name).string());
          std::cout << fmt::format(
              "{}  [{}]  {}  range [{:.4g}, {:.4g}]  {}\n", name, fmt::join(img.data.sizes(), ", "),
              c10::toString(img.data.scalar_type()), img.data.min().item<double>(),
              img.data.max().item<double>(), orientation_code(img.affine, img.spatial_dims()));
          ++written;
        }
      }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << fmt::format(
        "wrote {} files for {} case(s) to {} in {:.1f} s ({} of {} transforms{})\n", written,
        items.size(), a->out, secs, end, chain->size(),
        a->deterministic_only ? ", deterministic prefix" : "");
    return 0;
  };
}

}  // namespace barton::cli
