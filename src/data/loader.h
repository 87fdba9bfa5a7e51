#pragma once
/// DataLoader: batches of samples produced by worker threads (MONAI's DataLoader with
/// list_data_collate: list outputs of num_samples transforms are flattened into the batch).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace barton::data {

/// A collated batch: image keys stacked to [B, C, ...]; the per-item samples keep their geometry
/// and history (their tensors are the un-stacked originals).
struct Batch {
  std::map<std::string, at::Tensor> tensors;
  std::vector<Sample> items;
  std::size_t size() const { return items.size(); }
};

/// Stacks the image keys of `items` (every item must have the same keys and shapes; a mismatch is
/// an error naming both files).
Batch collate(std::vector<Sample> items);

struct LoaderOptions {
  int batch_size = 1;      ///< Dataset items per batch (x num_samples). Default: 1.
  bool shuffle = false;    ///< Reshuffle every epoch (seeded). Default: false.
  bool drop_last = false;  ///< Drop an incomplete last batch. Default: false.
  int num_workers = 0;     ///< Worker threads; 0 loads in the calling thread. Default: 0.
  int prefetch = 2;        ///< Batches prepared ahead per worker. Default: 2.
  uint64_t seed = 0;       ///< Shuffle seed. Default: 0.
};

/// Iterates a dataset epoch by epoch. Thread-safety: one consumer thread.
class DataLoader {
 public:
  DataLoader(std::shared_ptr<Dataset> dataset, LoaderOptions options);
  ~DataLoader();
  /// Starts an epoch (shuffles, tells the dataset, starts prefetching).
  void start_epoch(uint64_t epoch);
  /// The next batch of the epoch, or nullopt at its end. Rethrows worker errors.
  std::optional<Batch> next();
  /// Batches per epoch.
  std::size_t num_batches() const;
  /// Data-parallel sharding (PyTorch's DistributedSampler): each epoch's order (shuffled the same
  /// way on every rank) is padded by wrapping around to a multiple of `world_size`, and this
  /// loader takes positions rank, rank + world_size, ... With `even_divisible` false (MONAI's
  /// validation sampler) there is no padding: no case is seen twice, and shards may differ by one.
  void shard(int rank, int world_size, bool even_divisible = true);
  const Dataset& dataset() const { return *dataset_; }

 private:
  Batch make_batch(std::size_t b) const;
  void stop();

  std::shared_ptr<Dataset> dataset_;
  LoaderOptions options_;
  uint64_t epoch_ = 0;
  int rank_ = 0, world_ = 1;
  bool even_ = true;
  std::vector<std::size_t> order_;
  std::size_t next_batch_ = 0;   // next batch to hand out
  std::size_t next_submit_ = 0;  // next batch to give to a worker
  std::deque<std::future<Batch>> inflight_;
  // A small pool: tasks are batch indices.
  std::vector<std::thread> workers_;
  std::deque<std::packaged_task<Batch()>> tasks_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace barton::data
