#pragma once
/// The Transform interface, MapTransform (keys / allow_missing_keys) and Compose.

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "transforms/sample.h"

namespace barton::transforms {

/// A pipeline step. Implementations are immutable after construction, so one instance serves all
/// worker threads (thread-safe const apply).
class Transform {
 public:
  virtual ~Transform() = default;
  /// The registered name ("Spacingd").
  virtual std::string name() const = 0;
  /// True for transforms that draw random numbers (MONAI's Randomizable). CacheDataset caches the
  /// chain up to the first of these.
  virtual bool is_random() const { return false; }
  /// True when the transform never writes into its input's tensors and every image of its output
  /// owns fresh storage (the patch samplers): a cached sample can then be handed to it without the
  /// deep copy that copy_cache otherwise makes.
  virtual bool fresh_outputs() const { return false; }
  /// Called by a CacheDataset, in its fill workers, on each sample it has just cached, when this
  /// is the chain's first random step: a chance to build, once per case, what every later visit
  /// would otherwise rebuild (kept in the sample's DerivedCache). Default: nothing.
  virtual void prepare_cached(const Sample& cached) const { (void)cached; }
  /// Transforms one sample in place.
  virtual void apply(Sample& sample, Rng& rng) const = 0;
  /// Transforms one sample into one or more (num_samples crops). Default: apply() once.
  virtual std::vector<Sample> apply_multi(Sample sample, Rng& rng) const;
  /// Undoes this transform's trace entry on `item` (Invertd). Default: not invertible.
  virtual void invert(ImageItem& item, const TraceEntry& entry, bool nearest) const;
};

/// Keys and allow_missing_keys, shared by every dictionary transform.
struct KeySelection {
  std::vector<std::string> keys;
  bool allow_missing_keys = false;
  /// Reads "keys" (string or list) and "allow_missing_keys".
  static KeySelection from_config(const ConfigNode& args);
};

/// A transform applied to each selected key.
class MapTransform : public Transform {
 public:
  explicit MapTransform(KeySelection keys) : keys_(std::move(keys)) {}
  const std::vector<std::string>& keys() const { return keys_.keys; }

 protected:
  /// Calls fn(key, index) for each selected key present; a missing key throws unless allowed.
  template <typename Fn>
  void for_each_key(Sample& s, Fn&& fn) const {
    for (std::size_t i = 0; i < keys_.keys.size(); ++i) {
      const auto& k = keys_.keys[i];
      if (!s.has(k)) {
        if (keys_.allow_missing_keys) continue;
        missing_key(s, k);
      }
      fn(k, i);
    }
  }
  [[noreturn]] void missing_key(const Sample& s, const std::string& key) const;

  KeySelection keys_;
};

/// MONAI's RandomizableTransform over keys: one prob test per call, then (when it passes) one draw
/// of parameters from the first present key, applied to every key; the draw is written to the draw
/// log (BARTON_DRAW_LOG). Subclasses say how to draw, how to apply the parameters to one key, and
/// what a skipped key becomes (MONAI's "do not transform" path: usually nothing, sometimes a
/// dtype conversion).
class RandomMapTransform : public MapTransform {
 public:
  using Params = std::vector<double>;
  RandomMapTransform(std::string name, KeySelection keys, double prob)
      : MapTransform(std::move(keys)), name_(std::move(name)), prob_(prob) {}
  std::string name() const override { return name_; }
  bool is_random() const override { return true; }
  void apply(Sample& s, Rng& rng) const final;

 protected:
  virtual Params draw(Rng& rng, const Sample& s, const std::string& first_key) const = 0;
  virtual void apply_key(ImageItem& img, const Params& params, std::size_t key_index) const = 0;
  virtual void skip_key(ImageItem& img) const { (void)img; }

 private:
  std::string name_;
  double prob_;
};

/// Per-key argument lists (MONAI's ensure_tuple_rep): a scalar applies to every key; a list must
/// have one entry per key. Throws ConfigError at the argument otherwise.
template <typename T>
std::vector<T> per_key(const ConfigNode& args, const char* name, std::size_t n_keys, T fallback);

/// A chain of transforms (MONAI's Compose). Errors are rethrown with the transform's position,
/// name and the sample's file.
class Compose final : public Transform {
 public:
  Compose() = default;
  explicit Compose(std::vector<std::shared_ptr<const Transform>> steps,
                   std::vector<std::string> where = {});
  std::string name() const override { return "Compose"; }
  bool is_random() const override;
  void apply(Sample& sample, Rng& rng) const override;
  std::vector<Sample> apply_multi(Sample sample, Rng& rng) const override;
  /// Runs steps [begin, end) on a list of samples (list outputs are flattened, as MONAI does).
  std::vector<Sample> run(std::vector<Sample> samples,
                          Rng& rng,
                          std::size_t begin,
                          std::size_t end) const;
  /// Index of the first random step (size() when none): CacheDataset's cache boundary.
  std::size_t first_random() const;
  std::size_t size() const { return steps_.size(); }
  const Transform& step(std::size_t i) const { return *steps_[i]; }
  /// A registry-independent description (names and args) used for cache keys.
  void set_fingerprint(std::string f) { fingerprint_ = std::move(f); }
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  std::vector<std::shared_ptr<const Transform>> steps_;
  std::vector<std::string> where_;  // e.g. "/train/pre_transforms/3" per step
  std::string fingerprint_;
};

}  // namespace barton::transforms
