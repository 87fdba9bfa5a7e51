#include "data/loader.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <ATen/ATen.h>

#include "core/errors.h"
#include "transforms/draw_log.h"

namespace barton::data {

using transforms::ImageItem;

Batch collate(std::vector<Sample> items) {
  Batch b;
  BARTON_CHECK(!items.empty(), "cannot collate an empty batch");
  for (const auto& key : items.front().keys()) {
    if (!items.front().is_image(key)) continue;
    std::vector<at::Tensor> parts;
    const auto& first = items.front().image(key);
    for (const auto& s : items) {
      if (!s.is_image(key))
        throw ShapeError("cannot batch '" + key + "': " + s.origin() + " has no image under it");
      const auto& img = s.image(key);
      if (img.data.sizes() != first.data.sizes()) {
        throw ShapeError(fmt::format(
            "cannot batch '{}': {} is [{}] but {} is [{}] (crop or resize to one size first)", key,
            s.origin(), fmt::join(img.data.sizes(), ", "), items.front().origin(),
            fmt::join(first.data.sizes(), ", ")));
      }
      parts.push_back(img.data);
    }
    b.tensors[key] = at::stack(parts);
  }
  b.items = std::move(items);
  return b;
}

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  BARTON_CHECK(options_.batch_size >= 1, "batch_size must be at least 1 (got {})",
               options_.batch_size);
  for (int i = 0; i < options_.num_workers; ++i) {
    workers_.emplace_back([this] {
      while (true) {
        std::packaged_task<Batch()> task;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
          if (stopping_ && tasks_.empty()) return;
          task = std::move(tasks_.front());
          tasks_.pop_front();
        }
        task();
      }
    });
  }
}

DataLoader::~DataLoader() {
  stop();
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    tasks_.clear();
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

std::size_t DataLoader::num_batches() const {
  std::size_t n = dataset_->epoch_size();
  if (world_ > 1) {
    const auto w = static_cast<std::size_t>(world_), r = static_cast<std::size_t>(rank_);
    n = even_ ? (n + w - 1) / w : (n > r ? (n - r + w - 1) / w : 0);
  }
  const auto bs = static_cast<std::size_t>(options_.batch_size);
  return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

void DataLoader::start_epoch(uint64_t epoch) {
  // Drain what is in flight from a previous epoch.
  for (auto& f : inflight_) f.wait();
  inflight_.clear();
  epoch_ = epoch;
  dataset_->start_epoch(epoch);
  order_.resize(dataset_->epoch_size());
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle) {
    std::mt19937_64 g(transforms::mix_seed(options_.seed, epoch));
    std::shuffle(order_.begin(), order_.end(), g);
  }
  if (world_ > 1 && !order_.empty()) {
    const std::size_t w = static_cast<std::size_t>(world_);
    const std::size_t total = even_ ? (order_.size() + w - 1) / w * w : order_.size();
    for (std::size_t i = order_.size(), j = 0; i < total; ++i, ++j) order_.push_back(order_[j]);
    std::vector<std::size_t> mine;
    for (std::size_t i = static_cast<std::size_t>(rank_); i < total; i += w)
      mine.push_back(order_[i]);
    order_ = std::move(mine);
  }
  next_batch_ = 0;
  next_submit_ = 0;
  if (transforms::draw_log_enabled() && options_.shuffle) {
    std::vector<std::size_t> cases;
    for (auto o : order_) cases.push_back(dataset_->epoch_index(o));
    transforms::log_draw({{"epoch", epoch}, {"order", cases}, {"batch_size", options_.batch_size}});
  }
}

void DataLoader::shard(int rank, int world_size, bool even_divisible) {
  rank_ = rank;
  world_ = world_size;
  even_ = even_divisible;
}

Batch DataLoader::make_batch(std::size_t b) const {
  const auto bs = static_cast<std::size_t>(options_.batch_size);
  std::vector<Sample> items;
  for (std::size_t i = b * bs; i < std::min(order_.size(), (b + 1) * bs); ++i) {
    const auto index = dataset_->epoch_index(order_[i]);
    for (auto& s : dataset_->get(index, epoch_)) items.push_back(std::move(s));
  }
  return collate(std::move(items));
}

std::optional<Batch> DataLoader::next() {
  const std::size_t total = num_batches();
  if (next_batch_ >= total) return std::nullopt;
  if (options_.num_workers == 0) return make_batch(next_batch_++);
  const std::size_t ahead =
      static_cast<std::size_t>(std::max(1, options_.num_workers * options_.prefetch));
  while (next_submit_ < total && inflight_.size() < ahead) {
    std::packaged_task<Batch()> task([this, b = next_submit_] { return make_batch(b); });
    inflight_.push_back(task.get_future());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    ++next_submit_;
  }
  auto f = std::move(inflight_.front());
  inflight_.pop_front();
  ++next_batch_;
  return f.get();
}

}  // namespace barton::data
