#pragma once
/// A sample flowing through the pipeline: MONAI's dictionary of MetaTensors.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "core/affine.h"

namespace barton::transforms {

/// What a spatial transform did, so Invertd can undo it (MONAI's applied_operations).
struct TraceEntry {
  std::string transform;            ///< Registered name, e.g. "Spacingd".
  std::vector<int64_t> orig_shape;  ///< Spatial shape before the transform.
  Affine orig_affine{};             ///< Affine before the transform.
  std::map<std::string, std::vector<double>>
      params;                                  ///< What the inverse needs (crop box, k, axes...).
  std::map<std::string, std::string> strings;  ///< Interpolation "mode", "padding" of the step.
};

/// One image-like value: a channel-first tensor with its geometry (MONAI's MetaTensor).
struct ImageItem {
  /// [C, I, J, K] or [C, I, J], CPU unless a transform moved it.
  at::Tensor data;
  Affine affine = identity_affine();
  /// File it was loaded from ("" for derived values).
  std::string filename;
  /// Spatial shape and affine as loaded (for Invertd and SaveImaged).
  std::vector<int64_t> original_shape;
  Affine original_affine = identity_affine();
  /// Applied spatial operations, oldest first.
  std::vector<TraceEntry> applied;

  int spatial_dims() const { return static_cast<int>(data.dim()) - 1; }
  std::vector<int64_t> spatial_shape() const;
};

/// Non-image values carried in a sample (coordinates, names, numbers).
using Value = std::variant<ImageItem, std::string, double, std::vector<int64_t>>;

/// Values derived from a cached sample's tensors that are costly to rebuild on every visit (the
/// patch samplers' foreground/background sets). A CacheDataset gives each cached sample one; the
/// shallow copies it hands to a first random step whose outputs own their storage (see
/// Transform::fresh_outputs) share it, so each case computes them once. Nothing else carries one:
/// deep copies and patches start without. An entry keeps the tensors it was derived from and is
/// used only while the same tensors, at the same version, are asked about. Thread-safe.
class DerivedCache {
 public:
  /// The value stored under `key` for `sources`, or make() stored and returned.
  template <typename T, typename Make>
  std::shared_ptr<const T> get(const std::string& key,
                               const std::vector<at::Tensor>& sources,
                               Make&& make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && same(it->second, sources))
      return std::static_pointer_cast<const T>(it->second.value);
    auto value = std::make_shared<const T>(make());
    entries_[key] = entry(sources, value);
    return value;
  }

 private:
  struct Entry {
    std::vector<at::Tensor> sources;
    std::vector<uint32_t> versions;
    std::shared_ptr<const void> value;
  };
  static bool same(const Entry& e, const std::vector<at::Tensor>& sources);
  static Entry entry(const std::vector<at::Tensor>& sources, std::shared_ptr<const void> value);
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

/// A dictionary sample. Thread-safety: not shared between threads while transformed.
class Sample {
 public:
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  bool is_image(const std::string& key) const;
  /// Throws Error naming the key (and the keys present) when absent or not an image.
  ImageItem& image(const std::string& key);
  const ImageItem& image(const std::string& key) const;
  void set(const std::string& key, Value v) { values_[key] = std::move(v); }
  void erase(const std::string& key) { values_.erase(key); }
  const Value& get(const std::string& key) const;
  std::vector<std::string> keys() const;
  /// Where the sample came from (first filename found), for error messages.
  std::string origin() const;
  /// A copy whose tensors are cloned (MONAI's copy_cache=True deep copy), without a DerivedCache.
  Sample deep_copy() const;
  /// The cache of derived values shared with the cached sample this is a shallow copy of, or null.
  DerivedCache* derived() const { return derived_.get(); }
  /// Gives this sample a DerivedCache of its own (CacheDataset, for what it caches).
  void attach_derived_cache() { derived_ = std::make_shared<DerivedCache>(); }
  void detach_derived_cache() { derived_.reset(); }

 private:
  std::map<std::string, Value> values_;
  std::shared_ptr<DerivedCache> derived_;
};

/// Per-sample random state. Seeded from (seed, epoch, sample index) by the datasets, so results
/// do not depend on the number of worker threads.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : engine_(seed) {}
  /// Uniform in [lo, hi).
  double uniform(double lo = 0.0, double hi = 1.0);
  /// Integer in [lo, hi).
  int64_t randint(int64_t lo, int64_t hi);
  double normal(double mean = 0.0, double std = 1.0);
  uint64_t next() { return engine_(); }
  /// A LibTorch generator seeded from this stream, for tensor-valued noise.
  at::Generator torch_generator();

 private:
  std::mt19937_64 engine_;
};

/// Mixes numbers into one seed (splitmix64).
uint64_t mix_seed(uint64_t a, uint64_t b);

}  // namespace barton::transforms
