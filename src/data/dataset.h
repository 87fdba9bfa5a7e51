#pragma once
/// Datasets over a datalist and a transform chain (MONAI's Dataset, CacheDataset,
/// SmartCacheDataset, PersistentDataset; MONAI's monai/data/dataset.py).

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/datalist.h"
#include "transforms/transform.h"

namespace barton::data {

using transforms::Compose;
using transforms::Sample;

/// The sample a datalist item starts as: its file paths as strings (LoadImaged reads them) and its
/// other fields as numbers or strings.
Sample initial_sample(const DataItem& item);

/// Random state of (seed, epoch, index): identical whatever the number of worker threads.
transforms::Rng sample_rng(uint64_t seed, uint64_t epoch, std::size_t index);

/// Thread-safety: get() is safe to call from several threads at once.
class Dataset {
 public:
  Dataset(std::vector<DataItem> items, std::shared_ptr<const Compose> chain, uint64_t seed);
  virtual ~Dataset() = default;
  std::size_t size() const { return items_.size(); }
  const DataItem& item(std::size_t i) const { return items_.at(i); }
  const Compose& chain() const { return *chain_; }
  /// The transformed sample(s) of item `index` in `epoch` (several when a transform returns a
  /// list).
  virtual std::vector<Sample> get(std::size_t index, uint64_t epoch) const;
  /// Called by the loader before each epoch (SmartCache swaps its replacements in here).
  virtual void start_epoch(uint64_t epoch) { (void)epoch; }
  /// Which item the loader's position `i` maps to this epoch (SmartCache: the cached subset).
  virtual std::size_t epoch_size() const { return size(); }
  virtual std::size_t epoch_index(std::size_t i) const { return i; }

 protected:
  /// Runs the chain's deterministic prefix (steps before the first random one) on item `index`.
  std::vector<Sample> deterministic(std::size_t index) const;
  /// Gives freshly cached samples their DerivedCache and lets the first random step fill it
  /// (Transform::prepare_cached).
  void prepare(std::vector<Sample>& cached) const;
  /// Runs the random suffix on copies of `cached`.
  std::vector<Sample> random_part(const std::vector<Sample>& cached,
                                  std::size_t index,
                                  uint64_t epoch) const;

  std::vector<DataItem> items_;
  std::shared_ptr<const Compose> chain_;
  uint64_t seed_;
};

struct CacheOptions {
  int64_t cache_num = INT64_MAX;  ///< Default: all.
  double cache_rate = 1.0;        ///< Fraction of items cached. Default: 1.
  int num_workers = 1;            ///< Threads that fill the cache. Default: 1.
  bool copy_cache = true;         ///< Random transforms work on copies. Default: true.
};

/// Caches the deterministic prefix of the chain for the first min(cache_num, cache_rate * N)
/// items, computed once in parallel; the rest are computed on access, as MONAI does.
class CacheDataset : public Dataset {
 public:
  CacheDataset(std::vector<DataItem> items,
               std::shared_ptr<const Compose> chain,
               uint64_t seed,
               CacheOptions options);
  std::vector<Sample> get(std::size_t index, uint64_t epoch) const override;
  std::size_t cached_count() const { return cache_.size(); }

 protected:
  void fill(std::size_t begin, std::size_t end, int workers);
  CacheOptions options_;
  std::vector<std::vector<Sample>> cache_;
};

struct SmartCacheOptions {
  double replace_rate = 0.1;
  int64_t cache_num = INT64_MAX;
  double cache_rate = 1.0;
  int num_init_workers = 1;
  int num_replace_workers = 1;
  bool shuffle = true;
  uint64_t seed = 0;
};

/// Trains each epoch on a cached window of the data; a background thread prepares
/// replace_rate * cache_num new items that are swapped in at the next epoch (Clara's SmartCache).
class SmartCacheDataset final : public Dataset {
 public:
  SmartCacheDataset(std::vector<DataItem> items,
                    std::shared_ptr<const Compose> chain,
                    uint64_t seed,
                    SmartCacheOptions options);
  ~SmartCacheDataset() override;
  std::vector<Sample> get(std::size_t index, uint64_t epoch) const override;
  void start_epoch(uint64_t epoch) override;
  std::size_t epoch_size() const override { return window_.size(); }
  std::size_t epoch_index(std::size_t i) const override { return window_.at(i); }
  /// Items currently in the cache window (for tests).
  std::vector<std::size_t> window() const { return window_; }

 private:
  void prepare_replacements();
  SmartCacheOptions options_;
  std::vector<std::size_t> order_;   // item order (shuffled once)
  std::vector<std::size_t> window_;  // items cached this epoch
  std::size_t next_ = 0;             // next position in order_ to bring in
  std::size_t replace_num_ = 0;
  std::vector<std::vector<Sample>> slots_;  // cache content, parallel to window_
  std::vector<std::pair<std::size_t, std::vector<Sample>>> ready_;  // prepared replacements
  std::thread worker_;
  mutable std::mutex mutex_;
  bool started_ = false;
};

/// Caches the deterministic prefix on disk under cache_dir, keyed by a hash of the chain's
/// description and the item's files (path, size, modification time): a changed chain or file never
/// serves stale data.
class PersistentDataset final : public Dataset {
 public:
  PersistentDataset(std::vector<DataItem> items,
                    std::shared_ptr<const Compose> chain,
                    uint64_t seed,
                    std::string cache_dir);
  std::vector<Sample> get(std::size_t index, uint64_t epoch) const override;
  /// The cache file of item `index`.
  std::string cache_path(std::size_t index) const;

 private:
  std::string cache_dir_;
};

/// Serialises samples (tensors, affines, traces, values) to bytes and back.
std::string serialize_samples(const std::vector<Sample>& samples);
std::vector<Sample> deserialize_samples(const std::string& bytes, const std::string& origin);

/// Hex SHA-256 of a byte string.
std::string sha256_hex(std::string_view bytes);

}  // namespace barton::data
