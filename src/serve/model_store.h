#pragma once
/// The models a server knows, loaded on first use and unloaded least-recently-used first when
/// their weights exceed the memory budget.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/model.h"

namespace barton::serve {

/// Thread-safety: all members may be called from any thread; a model is used by one lease at a
/// time (acquire() blocks while another thread holds it).
class ModelStore {
 public:
  /// `budget_bytes` 0: no limit. `device` as for ServedModel.
  ModelStore(std::string device, std::size_t budget_bytes);
  /// Adds or replaces a model (a replaced one is unloaded once no lease holds it).
  void add(ModelInfo info);
  /// Removes `name`; false when unknown.
  bool remove(const std::string& name);
  std::vector<ModelInfo> list() const;
  std::optional<ModelInfo> find(const std::string& name) const;

  /// Exclusive use of a loaded model; releases it on destruction.
  class Lease {
   public:
    Lease(std::shared_ptr<ServedModel> model, std::shared_ptr<std::mutex> mu);
    ServedModel& operator*() const { return *model_; }
    ServedModel* operator->() const { return model_.get(); }

   private:
    std::shared_ptr<ServedModel> model_;
    std::unique_lock<std::mutex> lock_;
  };
  /// The model `name`, loaded now if needed (then others are unloaded, least recently used
  /// first, while the loaded weights exceed the budget). Throws Error when unknown or when
  /// loading fails (the message names the MMAR and the problem). Call only from worker threads.
  Lease acquire(const std::string& name);
  /// Unloads `name` (after an out-of-memory error); the next acquire() loads it again.
  void unload(const std::string& name);
  /// {"loaded": [...], "loaded_bytes", "budget_bytes", "loads", "evictions"}.
  nlohmann::json status() const;

 private:
  struct Entry {
    ModelInfo info;
    std::shared_ptr<std::mutex> use = std::make_shared<std::mutex>();  ///< Held by a lease.
    std::shared_ptr<ServedModel> loaded;
    uint64_t last_use = 0;
  };
  void evict_over_budget(const std::string& keep);

  std::string device_;
  std::size_t budget_bytes_;
  mutable std::mutex mu_;
  std::mutex load_mu_;  ///< One load at a time.
  std::map<std::string, Entry> entries_;
  uint64_t clock_ = 0;
  uint64_t loads_ = 0, evictions_ = 0;
};

}  // namespace barton::serve
