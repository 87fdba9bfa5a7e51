#include "serve/model_store.h"

#include "core/errors.h"
#include "core/logging.h"

namespace barton::serve {

ModelStore::Lease::Lease(std::shared_ptr<ServedModel> model, std::shared_ptr<std::mutex> mu)
    : model_(std::move(model)), lock_(*mu) {}

ModelStore::ModelStore(std::string device, std::size_t budget_bytes)
    : device_(std::move(device)), budget_bytes_(budget_bytes) {}

void ModelStore::add(ModelInfo info) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry e;
  e.info = std::move(info);
  entries_[e.info.name] = std::move(e);
}

bool ModelStore::remove(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.erase(name) > 0;
}

std::vector<ModelInfo> ModelStore::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModelInfo> out;
  for (const auto& [n, e] : entries_) out.push_back(e.info);
  return out;
}

std::optional<ModelInfo> ModelStore::find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = entries_.find(name);
  if (it == entries_.end()) return std::nullopt;
  return it->second.info;
}

// A Lease waits for the model's use mutex, which another worker's lease may hold for a whole
// inference: it is never made while mu_ is held, so listings and other models' leases go on.
ModelStore::Lease ModelStore::acquire(const std::string& name) {
  std::shared_ptr<std::mutex> use;
  std::shared_ptr<ServedModel> loaded;
  ModelInfo info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = entries_.find(name);
    if (it == entries_.end()) throw Error("no model named '" + name + "'");
    it->second.last_use = ++clock_;
    use = it->second.use;
    loaded = it->second.loaded;
    if (!loaded) info = it->second.info;
  }
  if (loaded) return Lease(std::move(loaded), std::move(use));
  std::unique_lock<std::mutex> one_load(load_mu_);
  {
    // Another worker may have loaded it meanwhile.
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = entries_.find(name);
    if (it != entries_.end()) loaded = it->second.loaded;
  }
  if (loaded) {
    one_load.unlock();
    return Lease(std::move(loaded), std::move(use));
  }
  std::shared_ptr<ServedModel> model;
  try {
    model = std::make_shared<ServedModel>(info, device_);
  } catch (const std::exception& e) {
    throw Error("loading model '" + name + "' from " + info.source + ": " + e.what());
  }
  log::info("serve: loaded model '" + name + "' (" + std::to_string(model->weight_bytes()) +
            " bytes of weights from " + model->info().model_file + ")");
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) throw Error("model '" + name + "' was removed while loading");
    it->second.loaded = model;
    ++loads_;
  }
  evict_over_budget(name);
  one_load.unlock();
  return Lease(std::move(model), std::move(use));
}

void ModelStore::unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = entries_.find(name);
  if (it != entries_.end()) it->second.loaded.reset();
}

void ModelStore::evict_over_budget(const std::string& keep) {
  if (budget_bytes_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (;;) {
    std::size_t total = 0;
    Entry* oldest = nullptr;
    for (auto& [n, e] : entries_) {
      if (!e.loaded) continue;
      total += e.loaded->weight_bytes();
      if (n != keep && (!oldest || e.last_use < oldest->last_use)) oldest = &e;
    }
    if (total <= budget_bytes_ || !oldest) return;
    // A model in use stays; its lease keeps it alive and the next pass frees it.
    log::info("serve: unloading model '" + oldest->info.name + "' (memory budget)");
    oldest->loaded.reset();
    ++evictions_;
  }
}

nlohmann::json ModelStore::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json loaded = nlohmann::json::array();
  std::size_t bytes = 0;
  for (const auto& [n, e] : entries_) {
    if (!e.loaded) continue;
    loaded.push_back(n);
    bytes += e.loaded->weight_bytes();
  }
  return {{"loaded", loaded},
          {"loaded_bytes", bytes},
          {"budget_bytes", budget_bytes_},
          {"loads", loads_},
          {"evictions", evictions_}};
}

}  // namespace barton::serve
