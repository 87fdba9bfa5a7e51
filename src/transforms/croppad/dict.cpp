// Crop and pad dictionary transforms, including the random patch samplers
// (docs/monai-semantics-spatial.md).
#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/croppad/fg_bg_map.h"
#include "transforms/croppad/functional.h"
#include "transforms/draw_log.h"
#include "transforms/register.h"
#include "transforms/trace.h"

namespace barton::transforms {

namespace {

namespace fc = croppad;

std::vector<int64_t> size_list(const ConfigNode& a, const char* name) {
  const auto v = a.at(name);
  return v.is_array() ? v.as<std::vector<int64_t>>() : std::vector<int64_t>{v.as<int64_t>()};
}

/// Makes every image of `patch` own its storage: crops are views into `source`, and the other
/// images are shared with it. The samplers' outputs never alias their input, so a dataset can hand
/// them a cached sample without deep-copying it first (Transform::fresh_outputs).
void own_images(Sample& patch, const Sample& source) {
  for (const auto& key : patch.keys()) {
    if (!patch.is_image(key) || !source.has(key) || !source.is_image(key)) continue;
    auto& t = patch.image(key).data;
    const auto& src = source.image(key).data;
    if (t.defined() && src.defined() && t.storage().is_alias_of(src.storage()))
      t = t.clone(at::MemoryFormat::Contiguous);
  }
  patch.detach_derived_cache();  // what was derived from the source's tensors is not the patch's
}

// Crops [start, start + size) clipped by slicing (no padding), recording the step.
void crop_item(ImageItem& img,
               const std::vector<int64_t>& start,
               const std::vector<int64_t>& size,
               const std::string& name) {
  const auto shape = img.spatial_shape();
  const auto affine = img.affine;
  std::vector<int64_t> s(shape.size()), e(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    s[d] = std::clamp<int64_t>(start[d], 0, shape[d]);
    e[d] = std::clamp<int64_t>(start[d] + size[d], s[d], shape[d]);
  }
  img.data = fc::crop_or_pad(img.data, s, e);
  img.affine = fc::translate_affine(img.affine, s);
  record(img, name, shape, affine);
}

class Pad final : public MapTransform {
 public:
  Pad(std::string name,
      KeySelection k,
      std::vector<int64_t> size,
      bool divisible,
      bool symmetric,
      std::vector<std::string> modes)
      : MapTransform(std::move(k)),
        name_(std::move(name)),
        size_(std::move(size)),
        divisible_(divisible),
        symmetric_(symmetric),
        modes_(std::move(modes)) {}
  std::string name() const override { return name_; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t i) {
      auto& img = s.image(key);
      const auto shape = img.spatial_shape();
      std::vector<int64_t> target(shape.size());
      if (divisible_) {
        for (std::size_t d = 0; d < shape.size(); ++d) {
          const int64_t k = size_.size() == 1 ? size_[0] : size_.at(d);
          target[d] = k > 0 ? (shape[d] + k - 1) / k * k : shape[d];
        }
      } else {
        target = fc::fall_back(size_, shape);
      }
      const auto [before, after] = fc::pad_amounts(shape, target, symmetric_);
      const auto affine = img.affine;
      img.data = fc::pad(img.data, before, after, modes_[i]);
      std::vector<int64_t> neg(before.size());
      for (std::size_t d = 0; d < before.size(); ++d) neg[d] = -before[d];
      img.affine = fc::translate_affine(img.affine, neg);
      record(img, name_, shape, affine, "", modes_[i]);
    });
  }

 private:
  std::string name_;
  std::vector<int64_t> size_;
  bool divisible_, symmetric_;
  std::vector<std::string> modes_;
};

class CenterCrop final : public MapTransform {
 public:
  CenterCrop(KeySelection k, std::vector<int64_t> roi)
      : MapTransform(std::move(k)), roi_(std::move(roi)) {}
  std::string name() const override { return "CenterSpatialCropd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      const auto shape = img.spatial_shape();
      const auto roi = fc::fall_back(roi_, shape);
      crop_item(img, fc::center_crop_start(shape, roi), roi, "CenterSpatialCropd");
    });
  }

 private:
  std::vector<int64_t> roi_;
};

class CropForeground final : public MapTransform {
 public:
  struct Options {
    std::string source_key;
    double threshold = 0.0;
    std::vector<int64_t> channels;
    std::vector<int64_t> margin;
    bool allow_smaller = true;
    std::vector<int64_t> k_divisible;
    std::vector<std::string> modes;
    std::string start_key = "foreground_start_coord", end_key = "foreground_end_coord";
  };
  CropForeground(KeySelection k, Options o) : MapTransform(std::move(k)), o_(std::move(o)) {}
  std::string name() const override { return "CropForegroundd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& src = s.image(o_.source_key).data;
    at::Tensor sel = src;
    if (!o_.channels.empty()) sel = src.index_select(0, at::tensor(o_.channels, at::kLong));
    const auto mask = (sel > o_.threshold).any(0);
    const int64_t r = mask.dim();
    const auto rep = [&](const std::vector<int64_t>& v, int64_t def) {
      std::vector<int64_t> out(r, def);
      for (int64_t d = 0; d < r; ++d) out[d] = v.empty() ? def : (v.size() == 1 ? v[0] : v.at(d));
      return out;
    };
    const auto [start, end] =
        fc::foreground_box(mask, rep(o_.margin, 0), o_.allow_smaller, rep(o_.k_divisible, 1));
    s.set(o_.start_key, start);
    s.set(o_.end_key, end);
    for_each_key(s, [&](const std::string& key, std::size_t i) {
      auto& img = s.image(key);
      const auto shape = img.spatial_shape();
      const auto affine = img.affine;
      img.data = fc::crop_or_pad(img.data, start, end, o_.modes[i]);
      img.affine = fc::translate_affine(img.affine, start);
      record(img, "CropForegroundd", shape, affine, "", o_.modes[i]);
    });
  }

 private:
  Options o_;
};

class RandSpatialCrop final : public MapTransform {
 public:
  RandSpatialCrop(std::string name,
                  KeySelection k,
                  std::vector<int64_t> roi,
                  std::vector<int64_t> max_roi,
                  bool random_center,
                  bool random_size,
                  int num_samples)
      : MapTransform(std::move(k)),
        name_(std::move(name)),
        roi_(std::move(roi)),
        max_roi_(std::move(max_roi)),
        random_center_(random_center),
        random_size_(random_size),
        num_samples_(num_samples) {}
  std::string name() const override { return name_; }
  bool is_random() const override { return true; }
  bool fresh_outputs() const override { return true; }
  void apply(Sample& s, Rng& rng) const override {
    auto out = apply_multi(std::move(s), rng);
    s = std::move(out.front());
  }
  std::vector<Sample> apply_multi(Sample s, Rng& rng) const override {
    std::string first;
    for (const auto& k : keys_.keys) {
      if (s.has(k)) {
        first = k;
        break;
      }
    }
    if (first.empty()) missing_key(s, keys_.keys.front());
    const auto shape = s.image(first).spatial_shape();
    std::vector<Sample> out;
    for (int n = 0; n < num_samples_; ++n) {
      auto size = fc::fall_back(roi_, shape);
      if (random_size_) {
        const auto mx = max_roi_.empty() ? shape : fc::fall_back(max_roi_, shape);
        for (std::size_t d = 0; d < shape.size(); ++d)
          size[d] = rng.randint(size[d], std::max(size[d], mx[d]) + 1);
      }
      for (std::size_t d = 0; d < shape.size(); ++d) size[d] = std::min(size[d], shape[d]);
      std::vector<int64_t> start(shape.size());
      if (random_center_) {
        for (std::size_t d = 0; d < shape.size(); ++d)
          start[d] = shape[d] > size[d] ? rng.randint(0, shape[d] - size[d] + 1) : 0;
      } else {
        start = fc::center_crop_start(shape, size);
      }
      Sample c = s;
      for_each_key(c, [&](const std::string& key, std::size_t) {
        crop_item(c.image(key), start, size, name_);
      });
      own_images(c, s);
      out.push_back(std::move(c));
    }
    return out;
  }

 private:
  std::string name_;
  std::vector<int64_t> roi_, max_roi_;
  bool random_center_, random_size_;
  int num_samples_;
};

/// Shared by the label-driven patch samplers: the patch size check and the crops around centres.
class PatchSampler : public MapTransform {
 public:
  using MapTransform::MapTransform;
  bool is_random() const override { return true; }
  void apply(Sample& s, Rng& rng) const override {
    auto out = apply_multi(std::move(s), rng);
    s = std::move(out.front());
  }

 protected:
  /// Every cropped key must lie on the label's grid: a label that belongs to another image (or was
  /// resampled differently) is refused with both files and shapes.
  void check_same_grid(const Sample& s, const std::string& label_key) const {
    const auto& label = s.image(label_key);
    const auto shape = label.spatial_shape();
    for (const auto& key : keys()) {
      if (key == label_key || !s.has(key) || !s.is_image(key)) continue;
      const auto& img = s.image(key);
      if (img.spatial_shape() == shape) continue;
      throw Error(fmt::format(
          "{}: '{}' has spatial shape [{}] but '{}' has [{}] (as loaded: '{}' [{}] from {}, '{}' "
          "[{}] "
          "from {}): the label does not match its image",
          name(), label_key, fmt::join(shape, ", "), key, fmt::join(img.spatial_shape(), ", "),
          label_key, fmt::join(label.original_shape, ", "), label.filename, key,
          fmt::join(img.original_shape, ", "), img.filename));
    }
  }

  /// The patch size on `shape`; larger than the image is an error unless allow_smaller.
  std::vector<int64_t> checked_size(const std::vector<int64_t>& spatial_size,
                                    const std::vector<int64_t>& shape,
                                    bool allow_smaller) const {
    auto size = fc::fall_back(spatial_size, shape);
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] >= size[d]) continue;
      if (!allow_smaller) {
        throw ShapeError(fmt::format(
            "{}: the label's spatial shape [{}] is smaller than spatial_size [{}]; pad first "
            "(SpatialPadd) or set allow_smaller=true",
            name(), fmt::join(shape, ", "), fmt::join(size, ", ")));
      }
      size[d] = shape[d];
    }
    return size;
  }
  bool fresh_outputs() const override { return true; }
  /// One sample per centre, every selected key cropped to spatial_size around it; every image of
  /// every patch owns its storage (own_images).
  std::vector<Sample> crop_around(Sample s,
                                  const std::vector<std::vector<int64_t>>& centers,
                                  const std::vector<int64_t>& spatial_size) const {
    std::vector<Sample> out;
    for (std::size_t n = 0; n < centers.size(); ++n) {
      Sample c = s;
      for_each_key(c, [&](const std::string& key, std::size_t) {
        auto& img = c.image(key);
        const auto crop = fc::fall_back(spatial_size, img.spatial_shape());
        crop_item(img, fc::crop_start_from_center(centers[n], crop), crop, name());
      });
      own_images(c, s);
      out.push_back(std::move(c));
    }
    return out;
  }
};

class RandCropByPosNeg final : public PatchSampler {
 public:
  struct Options {
    std::string label_key;
    std::vector<int64_t> spatial_size;
    double pos = 1, neg = 1;
    int num_samples = 1;
    std::string image_key;
    double image_threshold = 0;
    std::string fg_key, bg_key;
    bool allow_smaller = false;
  };
  RandCropByPosNeg(KeySelection k, Options o) : PatchSampler(std::move(k)), o_(std::move(o)) {}
  std::string name() const override { return "RandCropByPosNegLabeld"; }
  std::vector<Sample> apply_multi(Sample s, Rng& rng) const override {
    check_same_grid(s, o_.label_key);
    const auto& label = s.image(o_.label_key);
    const auto shape = label.spatial_shape();
    // Precomputed lists (FgBgToIndicesd) are read in place; otherwise the k-th voxel of a class
    // is found on the class map, which draws the same centres as indexing MONAI's lists.
    const std::vector<int64_t>* lists[2] = {nullptr, nullptr};  // foreground, background
    std::shared_ptr<const FgBgMap> map;
    int64_t counts[2] = {0, 0};
    if (has_lists(s)) {
      lists[0] = &std::get<std::vector<int64_t>>(s.get(o_.fg_key));
      lists[1] = &std::get<std::vector<int64_t>>(s.get(o_.bg_key));
      counts[0] = static_cast<int64_t>(lists[0]->size());
      counts[1] = static_cast<int64_t>(lists[1]->size());
    } else {
      map = sets(s);
      counts[0] = map->count[0];
      counts[1] = map->count[1];
    }
    const auto size = checked_size(o_.spatial_size, shape, o_.allow_smaller);
    double pos_ratio = o_.pos / (o_.pos + o_.neg);
    if (counts[0] == 0 && counts[1] == 0) {
      throw Error(
          "RandCropByPosNegLabeld: no foreground and no valid background voxels to sample from");
    }
    if (counts[0] == 0) pos_ratio = 0;
    if (counts[1] == 0) pos_ratio = 1;
    std::vector<std::vector<int64_t>> centers;
    for (int n = 0; n < o_.num_samples; ++n) {
      const int set = rng.uniform() < pos_ratio ? 0 : 1;
      const int64_t k = rng.randint(0, counts[set]);
      const int64_t flat =
          lists[set] != nullptr ? lists[set]->at(static_cast<std::size_t>(k)) : map->kth(set, k);
      centers.push_back(fc::unravel(flat, shape));
    }
    if (draw_log_enabled()) log_draw({{"transform", name()}, {"centers", centers}});
    for (auto& c : centers) c = fc::correct_crop_center(c, size, shape);
    return crop_around(std::move(s), centers, o_.spatial_size);
  }
  /// A cached case gets its sets in the cache fill, in the fill's worker threads, not on its first
  /// visit in the training loop.
  void prepare_cached(const Sample& cached) const override {
    // Only a sample apply_multi would accept; it reports the others on their first visit.
    const bool usable = !has_lists(cached) && cached.is_image(o_.label_key) &&
                        (o_.image_key.empty() || (cached.is_image(o_.image_key) &&
                                                  cached.image(o_.image_key).spatial_shape() ==
                                                      cached.image(o_.label_key).spatial_shape()));
    if (usable) sets(cached);
  }

 private:
  /// Precomputed index lists (FgBgToIndicesd) to draw from instead of the sets.
  bool has_lists(const Sample& s) const {
    return !o_.fg_key.empty() && !o_.bg_key.empty() && s.has(o_.fg_key) && s.has(o_.bg_key);
  }
  /// The foreground / valid background sets of a sample: kept in its DerivedCache when it has one
  /// (a cached case, built once), else built for this call.
  std::shared_ptr<const FgBgMap> sets(const Sample& s) const {
    const auto& label = s.image(o_.label_key).data;
    const at::Tensor* image = o_.image_key.empty() ? nullptr : &s.image(o_.image_key).data;
    auto make = [&] { return fg_bg_map(label, image, o_.image_threshold); };
    auto* cache = s.derived();
    if (cache == nullptr) return std::make_shared<const FgBgMap>(make());
    const auto key =
        fmt::format("{}:{}:{}:{}", name(), o_.label_key, o_.image_key, o_.image_threshold);
    return cache->get<FgBgMap>(key, {label, image ? *image : at::Tensor()}, make);
  }
  Options o_;
};

class RandCropByLabelClasses final : public PatchSampler {
 public:
  struct Options {
    std::string label_key;
    std::vector<int64_t> spatial_size;
    std::vector<double> ratios;
    int64_t num_classes = 0;
    int num_samples = 1;
    std::string image_key;
    double image_threshold = 0;
    bool allow_smaller = false;
  };
  RandCropByLabelClasses(KeySelection k, Options o)
      : PatchSampler(std::move(k)), o_(std::move(o)) {}
  std::string name() const override { return "RandCropByLabelClassesd"; }
  std::vector<Sample> apply_multi(Sample s, Rng& rng) const override {
    const auto& label = s.image(o_.label_key);
    const auto shape = label.spatial_shape();
    const int64_t classes = label.data.size(0) > 1 ? label.data.size(0) : o_.num_classes;
    BARTON_CHECK(classes > 0, "RandCropByLabelClassesd: a single-channel label needs num_classes");
    at::Tensor valid;
    if (!o_.image_key.empty())
      valid = (s.image(o_.image_key).data > o_.image_threshold).any(0).reshape(-1);
    std::vector<at::Tensor> indices;
    for (int64_t c = 0; c < classes; ++c) {
      auto m =
          (label.data.size(0) > 1 ? label.data[c] != 0 : label.data[0] == static_cast<double>(c))
              .reshape(-1);
      if (valid.defined()) m = m & valid;
      indices.push_back(m.nonzero().reshape(-1));
    }
    std::vector<double> ratios = o_.ratios.empty() ? std::vector<double>(classes, 1.0) : o_.ratios;
    BARTON_CHECK(static_cast<int64_t>(ratios.size()) == classes,
                 "RandCropByLabelClassesd: {} ratios for {} classes", ratios.size(), classes);
    double total = 0;
    for (int64_t c = 0; c < classes; ++c) {
      if (indices[c].numel() == 0) ratios[c] = 0;
      total += ratios[c];
    }
    BARTON_CHECK(total > 0, "RandCropByLabelClassesd: no class has voxels to sample from");
    const auto size = checked_size(o_.spatial_size, shape, o_.allow_smaller);
    std::vector<std::vector<int64_t>> centers;
    for (int n = 0; n < o_.num_samples; ++n) {
      double u = rng.uniform(0, total);
      int64_t cls = 0;
      while (cls < classes - 1 && (ratios[cls] == 0 || u >= ratios[cls])) {
        u -= ratios[cls];
        ++cls;
      }
      const auto& set = indices[cls];
      const int64_t flat = set[rng.randint(0, set.numel())].item<int64_t>();
      centers.push_back(fc::unravel(flat, shape));
    }
    if (draw_log_enabled()) log_draw({{"transform", name()}, {"centers", centers}});
    for (auto& c : centers) c = fc::correct_crop_center(c, size, shape);
    return crop_around(std::move(s), centers, o_.spatial_size);
  }

 private:
  Options o_;
};

class FgBgToIndices final : public MapTransform {
 public:
  FgBgToIndices(KeySelection k, std::string fg, std::string bg, std::string image_key, double thr)
      : MapTransform(std::move(k)),
        fg_(std::move(fg)),
        bg_(std::move(bg)),
        image_key_(std::move(image_key)),
        thr_(thr) {}
  std::string name() const override { return "FgBgToIndicesd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      const at::Tensor* image = image_key_.empty() ? nullptr : &s.image(image_key_).data;
      auto [fg, bg] = fg_bg_indices(s.image(key).data, image, thr_);
      auto to_vec = [](const at::Tensor& t) {
        auto c = t.contiguous();
        return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
      };
      s.set(key + fg_, to_vec(fg));
      s.set(key + bg_, to_vec(bg));
    });
  }

 private:
  std::string fg_, bg_, image_key_;
  double thr_;
};

std::string opt_string(const ConfigNode& a, const char* name) {
  return a.get_optional<std::string>(name).value_or("");
}

int samples_arg(const ConfigNode& a) {
  const int n = a.require<int>("num_samples");
  if (n < 1) throw a.at("num_samples").error("must be at least 1");
  return n;
}

}  // namespace

namespace {

ComponentSpec spatial_padd_spec() {
  return dict_spec(
      "SpatialPadd", "Pads to at least spatial_size.",
      {keys_spec(), req("spatial_size", A::kInts, "Minimum output size."),
       opt("method", A::kString, "\"symmetric\"", "symmetric or end."),
       opt("mode", A::kStrings, "\"constant\"", "Padding mode per key."), allow_missing_spec()});
}

std::unique_ptr<Transform> make_spatial_padd(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  const auto method = a.require<std::string>("method");
  if (method != "symmetric" && method != "end") {
    throw a.at("method").error("must be \"symmetric\" or \"end\"");
  }
  return std::make_unique<Pad>("SpatialPadd", std::move(k), size_list(a, "spatial_size"), false,
                               method == "symmetric",
                               per_key<std::string>(a, "mode", n, "constant"));
}

ComponentSpec divisible_padd_spec() {
  return dict_spec(
      "DivisiblePadd", "Pads so every spatial size is divisible by k.",
      {keys_spec(), req("k", A::kInts, "Divisor per axis."),
       opt("mode", A::kStrings, "\"constant\"", "Padding mode per key."),
       opt("method", A::kString, "\"symmetric\"", "symmetric or end."), allow_missing_spec()});
}

std::unique_ptr<Transform> make_divisible_padd(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  const auto method = a.require<std::string>("method");
  return std::make_unique<Pad>("DivisiblePadd", std::move(k), size_list(a, "k"), true,
                               method == "symmetric",
                               per_key<std::string>(a, "mode", n, "constant"));
}

ComponentSpec center_spatial_cropd_spec() {
  return dict_spec("CenterSpatialCropd", "Crops roi_size around the centre.",
                   {keys_spec(), req("roi_size", A::kInts, "Crop size; -1 keeps an axis."),
                    allow_missing_spec()});
}

std::unique_ptr<Transform> make_center_spatial_cropd(const ConfigNode& a, const BuildContext&) {
  return std::make_unique<CenterCrop>(KeySelection::from_config(a), size_list(a, "roi_size"));
}

ComponentSpec crop_foregroundd_spec() {
  return dict_spec(
      "CropForegroundd", "Crops to the bounding box of source_key's foreground plus a margin.",
      {keys_spec(), req("source_key", A::kString, "Key whose foreground defines the box."),
       opt("select_fn", A::kAny, "null",
           "Foreground test; default value > 0 (a number sets the threshold)."),
       opt("channel_indices", A::kInts, "null", "Channels to consider."),
       opt("margin", A::kInts, "0", "Margin in voxels per axis."),
       opt("allow_smaller", A::kBool, "true", "Allow a box smaller than the margin needs."),
       opt("k_divisible", A::kInts, "1", "Make the box size divisible by k."),
       opt("mode", A::kStrings, "\"constant\"", "Padding mode when the box leaves the image."),
       opt("start_coord_key", A::kString, "\"foreground_start_coord\"",
           "Where to store the box start."),
       opt("end_coord_key", A::kString, "\"foreground_end_coord\"", "Where to store the box end."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_crop_foregroundd(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  CropForeground::Options o;
  o.source_key = a.require<std::string>("source_key");
  if (a.given("select_fn")) {
    const auto f = a.at("select_fn");
    if (!f.is_number()) {
      throw ConfigError(
          f.source(), f.pointer(),
          "select_fn must be a number (foreground = value > number) or null (value > 0); "
          "Python callables are not evaluated");
    }
    o.threshold = f.as<double>();
  }
  if (a.given("channel_indices")) {
    const auto v = a.at("channel_indices");
    o.channels =
        v.is_array() ? v.as<std::vector<int64_t>>() : std::vector<int64_t>{v.as<int64_t>()};
  }
  o.margin = size_list(a, "margin");
  o.k_divisible = size_list(a, "k_divisible");
  o.allow_smaller = a.require<bool>("allow_smaller");
  o.modes = per_key<std::string>(a, "mode", k.keys.size(), "constant");
  o.start_key = a.require<std::string>("start_coord_key");
  o.end_key = a.require<std::string>("end_coord_key");
  return std::make_unique<CropForeground>(std::move(k), std::move(o));
}

ComponentSpec rand_spatial_cropd_spec() {
  return dict_spec("RandSpatialCropd", "Crops a random region.",
                   {keys_spec(),
                    req("roi_size", A::kInts,
                        "Crop size (the minimum size with random_size); -1 keeps an axis."),
                    opt("max_roi_size", A::kInts, "null",
                        "Largest crop size with random_size; null: the image size."),
                    opt("random_center", A::kBool, "true",
                        "Place the crop at random (true) or at the centre (false)."),
                    opt("random_size", A::kBool, "false",
                        "Draw the crop size between roi_size and max_roi_size."),
                    allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_spatial_cropd(const ConfigNode& a, const BuildContext&) {
  std::vector<int64_t> mx;
  if (a.given("max_roi_size")) mx = size_list(a, "max_roi_size");
  return std::make_unique<RandSpatialCrop>(
      "RandSpatialCropd", KeySelection::from_config(a), size_list(a, "roi_size"), mx,
      a.require<bool>("random_center"), a.require<bool>("random_size"), 1);
}

ComponentSpec rand_spatial_crop_samplesd_spec() {
  return dict_spec("RandSpatialCropSamplesd", "Crops num_samples random regions.",
                   {keys_spec(),
                    req("roi_size", A::kInts,
                        "Crop size (the minimum size with random_size); -1 keeps an axis."),
                    req("num_samples", A::kInt, "Number of crops drawn from each sample."),
                    opt("max_roi_size", A::kInts, "null",
                        "Largest crop size with random_size; null: the image size."),
                    opt("random_center", A::kBool, "true",
                        "Place the crop at random (true) or at the centre (false)."),
                    opt("random_size", A::kBool, "false",
                        "Draw the crop size between roi_size and max_roi_size."),
                    allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_spatial_crop_samplesd(const ConfigNode& a,
                                                           const BuildContext&) {
  std::vector<int64_t> mx;
  if (a.given("max_roi_size")) mx = size_list(a, "max_roi_size");
  return std::make_unique<RandSpatialCrop>(
      "RandSpatialCropSamplesd", KeySelection::from_config(a), size_list(a, "roi_size"), mx,
      a.require<bool>("random_center"), a.require<bool>("random_size"), samples_arg(a));
}

ComponentSpec rand_crop_by_pos_neg_labeld_spec() {
  return dict_spec(
      "RandCropByPosNegLabeld",
      "Samples num_samples patches centred on foreground with probability pos/(pos+neg).",
      {keys_spec(), req("label_key", A::kString, "Label key."),
       req("spatial_size", A::kInts, "Patch size."),
       opt("pos", A::kFloat, "1.0", "Relative weight of patches centred on foreground voxels."),
       opt("neg", A::kFloat, "1.0", "Relative weight of patches centred on background voxels."),
       opt("num_samples", A::kInt, "1", "Patches drawn from each sample."),
       opt("image_key", A::kString, "null",
           "Image whose voxels above image_threshold are valid background centres; null: all."),
       opt("image_threshold", A::kFloat, "0.0",
           "Threshold on image_key for valid background centres."),
       opt("fg_indices_key", A::kString, "null",
           "Key of precomputed foreground indices (FgBgToIndicesd) to draw from."),
       opt("bg_indices_key", A::kString, "null",
           "Key of precomputed background indices (FgBgToIndicesd) to draw from."),
       meta_keys_spec(), meta_postfix_spec(),
       opt("allow_smaller", A::kBool, "false",
           "Allow images smaller than spatial_size (the patch shrinks); otherwise an error."),
       allow_missing_spec(),
       opt("lazy", A::kBool, "false", "Accepted for MONAI compatibility; ignored.")});
}

std::unique_ptr<Transform> make_rand_crop_by_pos_neg_labeld(const ConfigNode& a,
                                                            const BuildContext&) {
  RandCropByPosNeg::Options o;
  o.label_key = a.require<std::string>("label_key");
  o.spatial_size = size_list(a, "spatial_size");
  o.pos = a.require<double>("pos");
  o.neg = a.require<double>("neg");
  if (o.pos < 0 || o.neg < 0 || o.pos + o.neg <= 0) {
    throw a.error("pos and neg must be non-negative and not both zero");
  }
  o.num_samples = samples_arg(a);
  o.image_key = opt_string(a, "image_key");
  o.image_threshold = a.require<double>("image_threshold");
  o.fg_key = opt_string(a, "fg_indices_key");
  o.bg_key = opt_string(a, "bg_indices_key");
  o.allow_smaller = a.require<bool>("allow_smaller");
  return std::make_unique<RandCropByPosNeg>(KeySelection::from_config(a), std::move(o));
}

ComponentSpec rand_crop_by_label_classesd_spec() {
  return dict_spec(
      "RandCropByLabelClassesd", "Samples patches centred on each class with given ratios.",
      {keys_spec(),
       req("label_key", A::kString,
           "Label key: one-hot channels, or one channel of class indices."),
       req("spatial_size", A::kInts, "Patch size; -1 keeps an axis."),
       opt("ratios", A::kFloats, "null",
           "Relative weight of each class as patch centre; null: equal weights."),
       opt("num_classes", A::kInt, "null", "Number of classes of a single-channel label."),
       opt("num_samples", A::kInt, "1", "Patches drawn from each sample."),
       opt("image_key", A::kString, "null",
           "Image whose voxels above image_threshold are valid centres; null: all."),
       opt("image_threshold", A::kFloat, "0.0", "Threshold on image_key for valid centres."),
       opt("indices_key", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("allow_smaller", A::kBool, "false",
           "Allow images smaller than spatial_size (the patch shrinks); otherwise an error."),
       allow_missing_spec(),
       opt("warn", A::kBool, "true", "Accepted for MONAI compatibility; ignored."),
       opt("max_samples_per_class", A::kInt, "null",
           "Accepted for MONAI compatibility; ignored.")});
}

std::unique_ptr<Transform> make_rand_crop_by_label_classesd(const ConfigNode& a,
                                                            const BuildContext&) {
  RandCropByLabelClasses::Options o;
  o.label_key = a.require<std::string>("label_key");
  o.spatial_size = size_list(a, "spatial_size");
  if (auto v = a.get_optional<std::vector<double>>("ratios")) o.ratios = *v;
  if (auto v = a.get_optional<int64_t>("num_classes")) o.num_classes = *v;
  o.num_samples = samples_arg(a);
  o.image_key = opt_string(a, "image_key");
  o.image_threshold = a.require<double>("image_threshold");
  o.allow_smaller = a.require<bool>("allow_smaller");
  return std::make_unique<RandCropByLabelClasses>(KeySelection::from_config(a), std::move(o));
}

ComponentSpec fg_bg_to_indicesd_spec() {
  return dict_spec("FgBgToIndicesd",
                   "Precomputes foreground/background voxel indices for patch sampling.",
                   {keys_spec(),
                    opt("fg_postfix", A::kString, "\"_fg_indices\"",
                        "Suffix of the key that receives the foreground indices (key + postfix)."),
                    opt("bg_postfix", A::kString, "\"_bg_indices\"",
                        "Suffix of the key that receives the background indices (key + postfix)."),
                    opt("image_key", A::kString, "null",
                        "Image whose voxels above image_threshold bound the background; null: all "
                        "non-foreground."),
                    opt("image_threshold", A::kFloat, "0.0",
                        "Background voxels must exceed this value in image_key."),
                    opt("output_shape", A::kInts, "null",
                        "Shape to unravel the indices to; not supported yet (must be null)."),
                    allow_missing_spec()});
}

std::unique_ptr<Transform> make_fg_bg_to_indicesd(const ConfigNode& a, const BuildContext&) {
  if (a.given("output_shape")) {
    throw a.at("output_shape").error("output_shape is not supported yet");
  }
  return std::make_unique<FgBgToIndices>(
      KeySelection::from_config(a), a.require<std::string>("fg_postfix"),
      a.require<std::string>("bg_postfix"), opt_string(a, "image_key"),
      a.require<double>("image_threshold"));
}

}  // namespace

void register_croppad(TransformRegistry& r) {
  r.add(spatial_padd_spec(), make_spatial_padd);
  r.add(divisible_padd_spec(), make_divisible_padd);
  r.add(center_spatial_cropd_spec(), make_center_spatial_cropd);
  r.add(crop_foregroundd_spec(), make_crop_foregroundd);
  r.add(rand_spatial_cropd_spec(), make_rand_spatial_cropd);
  r.add(rand_spatial_crop_samplesd_spec(), make_rand_spatial_crop_samplesd);
  r.add(rand_crop_by_pos_neg_labeld_spec(), make_rand_crop_by_pos_neg_labeld);
  r.add(rand_crop_by_label_classesd_spec(), make_rand_crop_by_label_classesd);
  r.add(fg_bg_to_indicesd_spec(), make_fg_bg_to_indicesd);
}

}  // namespace barton::transforms
