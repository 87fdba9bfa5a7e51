// Intensity dictionary transforms (MONAI names and arguments; docs/monai-semantics-intensity.md).
#include <ATen/ATen.h>

#include <functional>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/draw_log.h"
#include "transforms/intensity/functional.h"
#include "transforms/register.h"

namespace barton::transforms {

namespace {

namespace fi = intensity;

std::optional<double> opt_double(const ConfigNode& a, const char* name) {
  if (!a.has(name) || a.at(name).is_null()) return std::nullopt;
  return a.at(name).as<double>();
}

at::Tensor cast_to(const at::Tensor& t, std::optional<at::ScalarType> dtype, at::ScalarType in) {
  return t.to(dtype ? *dtype : in);
}

/// A deterministic per-key function of the image tensor.
class PerKey final : public MapTransform {
 public:
  using Fn = std::function<at::Tensor(const at::Tensor&)>;
  PerKey(std::string name, KeySelection k, Fn fn) : MapTransform(std::move(k)), name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      img.data = fn_(img.data);
    });
  }

 private:
  std::string name_;
  Fn fn_;
};

/// A random per-sample draw (after MONAI's `rand() < prob` test), then the same function for
/// every key. `skip` is applied to every key when the draw says "do not transform".
class RandomPerKey final : public MapTransform {
 public:
  using Params = std::vector<double>;
  using Draw = std::function<Params(Rng&, const Sample&, const std::string& first_key)>;
  using Fn = std::function<at::Tensor(const at::Tensor&, const Params&)>;
  using Skip = std::function<at::Tensor(const at::Tensor&)>;
  RandomPerKey(std::string name, KeySelection k, double prob, Draw draw, Fn fn, Skip skip = nullptr)
      : MapTransform(std::move(k)), name_(std::move(name)), prob_(prob), draw_(std::move(draw)), fn_(std::move(fn)),
        skip_(std::move(skip)) {}
  std::string name() const override { return name_; }
  bool is_random() const override { return true; }
  void apply(Sample& s, Rng& rng) const override {
    const bool apply = rng.uniform() < prob_;
    Params params;
    if (apply) {
      std::string first;
      for (const auto& k : keys_.keys) {
        if (s.has(k)) {
          first = k;
          break;
        }
      }
      if (first.empty() && !keys_.allow_missing_keys) missing_key(s, keys_.keys.front());
      if (first.empty()) return;
      params = draw_(rng, s, first);
    }
    if (draw_log_enabled()) log_draw({{"transform", name_}, {"apply", apply}, {"params", params}});
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      if (apply) img.data = fn_(img.data, params);
      else if (skip_) img.data = skip_(img.data);
    });
  }

 private:
  std::string name_;
  double prob_;
  Draw draw_;
  Fn fn_;
  Skip skip_;
};

// Applies fn to every channel (channel_wise) or to the whole image.
at::Tensor channelwise(const at::Tensor& img, bool channel_wise, const std::function<at::Tensor(const at::Tensor&, int64_t)>& fn) {
  if (!channel_wise) return fn(img, -1);
  std::vector<at::Tensor> out;
  for (int64_t c = 0; c < img.size(0); ++c) out.push_back(fn(img[c], c));
  return at::stack(out);
}

// One uniform draw per channel of the first key (channel_wise) or one for the image.
RandomPerKey::Draw uniform_draw(std::pair<double, double> range, bool channel_wise) {
  return [=](Rng& rng, const Sample& s, const std::string& first) {
    const int64_t n = channel_wise ? s.image(first).data.size(0) : 1;
    std::vector<double> p;
    for (int64_t i = 0; i < n; ++i) p.push_back(rng.uniform(range.first, range.second));
    return p;
  };
}

}  // namespace


namespace {

std::unique_ptr<Transform> make_scale_intensity_ranged(const ConfigNode& a, const BuildContext&) {
  const double a_min = a.require<double>("a_min"), a_max = a.require<double>("a_max");
  const auto b_min = opt_double(a, "b_min"), b_max = opt_double(a, "b_max");
  const bool clip = a.get_or("clip", false);
  if (clip && !b_min && !b_max) {
    throw ConfigError(a.source(), a.pointer() + "/clip", "clip needs b_min or b_max");
  }
  const auto dtype = dtype_arg(a, "dtype", at::kFloat);
  return std::make_unique<PerKey>("ScaleIntensityRanged", KeySelection::from_config(a), [=](const at::Tensor& x) {
    if (a_max - a_min == 0.0) return fi::scale_intensity_range(x, a_min, a_max, b_min, b_max, clip);
    return cast_to(fi::scale_intensity_range(x, a_min, a_max, b_min, b_max, clip), dtype, x.scalar_type());
  });
}

std::unique_ptr<Transform> make_scale_intensity_range_percentilesd(const ConfigNode& a, const BuildContext&) {
  const double lower = a.require<double>("lower"), upper = a.require<double>("upper");
  for (const char* k : {"lower", "upper"}) {
    const double v = a.require<double>(k);
    if (v < 0 || v > 100) throw a.at(k).error("must be in [0, 100]");
  }
  const auto b_min = opt_double(a, "b_min"), b_max = opt_double(a, "b_max");
  const bool clip = a.get_or("clip", false), relative = a.get_or("relative", false),
             channel_wise = a.get_or("channel_wise", false);
  if (relative && (!b_min || !b_max)) {
    throw ConfigError(a.source(), a.pointer() + "/relative", "relative needs both b_min and b_max");
  }
  return std::make_unique<PerKey>(
      "ScaleIntensityRangePercentilesd", KeySelection::from_config(a), [=](const at::Tensor& x) {
        auto out = channelwise(x, channel_wise, [&](const at::Tensor& v, int64_t) {
          const double lo = fi::percentile(v, lower), hi = fi::percentile(v, upper);
          auto bmin = b_min, bmax = b_max;
          if (relative) {
            bmin = (*b_max - *b_min) * lower / 100.0 + *b_min;
            bmax = (*b_max - *b_min) * upper / 100.0 + *b_min;
          }
          return fi::scale_intensity_range(v, lo, hi, bmin, bmax, clip).to(at::kFloat);
        });
        return out.to(x.scalar_type());
      });
}

std::unique_ptr<Transform> make_normalize_intensityd(const ConfigNode& a, const BuildContext&) {
  auto list = [&](const char* n) {
    std::vector<double> v;
    if (a.given(n)) v = a.at(n).is_array() ? a.at(n).as<std::vector<double>>()
                                                                  : std::vector<double>{a.at(n).as<double>()};
    return v;
  };
  const auto sub = list("subtrahend"), div = list("divisor");
  const bool nonzero = a.get_or("nonzero", false), channel_wise = a.get_or("channel_wise", false);
  const auto dtype = dtype_arg(a, "dtype", at::kFloat);
  return std::make_unique<PerKey>("NormalizeIntensityd", KeySelection::from_config(a), [=](const at::Tensor& x) {
    return cast_to(fi::normalize_intensity(x, sub, div, nonzero, channel_wise), dtype, x.scalar_type());
  });
}

std::unique_ptr<Transform> make_scale_intensityd(const ConfigNode& a, const BuildContext&) {
  const auto minv = a.has("minv") ? opt_double(a, "minv") : std::optional<double>(0.0);
  const auto maxv = a.has("maxv") ? opt_double(a, "maxv") : std::optional<double>(1.0);
  const auto factor = opt_double(a, "factor");
  const bool channel_wise = a.get_or("channel_wise", false);
  const auto dtype = dtype_arg(a, "dtype", at::kFloat);
  return std::make_unique<PerKey>("ScaleIntensityd", KeySelection::from_config(a), [=](const at::Tensor& x) {
    at::Tensor out;
    if (minv || maxv) {
      out = channelwise(x, channel_wise, [&](const at::Tensor& v, int64_t) { return fi::rescale(v, minv, maxv); });
    } else {
      out = factor ? x.to(at::kFloat) * (1.0 + *factor) : x;
    }
    return cast_to(out, dtype, x.scalar_type());
  });
}

std::unique_ptr<Transform> make_threshold_intensityd(const ConfigNode& a, const BuildContext&) {
  const double t = a.require<double>("threshold"), cval = a.get_or("cval", 0.0);
  const bool above = a.get_or("above", true);
  return std::make_unique<PerKey>("ThresholdIntensityd", KeySelection::from_config(a),
                                  [=](const at::Tensor& x) { return fi::threshold_intensity(x, t, above, cval); });
}

std::unique_ptr<Transform> make_clip_intensity_percentilesd(const ConfigNode& a, const BuildContext&) {
  const auto lower = opt_double(a, "lower"), upper = opt_double(a, "upper");
  if (!lower && !upper) throw a.error("lower and upper cannot both be null");
  if (lower && upper && *upper < *lower) {
    throw a.at("upper").error("must be at least lower");
  }
  if (a.given("sharpness_factor")) {
    throw ConfigError(a.at("sharpness_factor").source(), a.at("sharpness_factor").pointer(),
                      "soft clipping is not supported yet; leave sharpness_factor null");
  }
  const bool channel_wise = a.get_or("channel_wise", false);
  return std::make_unique<PerKey>("ClipIntensityPercentilesd", KeySelection::from_config(a), [=](const at::Tensor& x) {
    auto out = channelwise(x, channel_wise, [&](const at::Tensor& v, int64_t) {
      const double lo = fi::percentile(v, lower ? *lower : 0.0), hi = fi::percentile(v, upper ? *upper : 100.0);
      return at::clamp(v.to(at::kDouble), lo, hi);
    });
    return out.to(x.scalar_type());
  });
}

std::unique_ptr<Transform> make_rand_scale_intensityd(const ConfigNode& a, const BuildContext&) {
  const auto range = range_arg(a, "factors", {0, 0});
  const bool channel_wise = a.get_or("channel_wise", false);
  const auto dtype = dtype_arg(a, "dtype", at::kFloat);
  return std::make_unique<RandomPerKey>(
      "RandScaleIntensityd", KeySelection::from_config(a), prob_arg(a),
      uniform_draw(range, channel_wise),
      [=](const at::Tensor& x, const std::vector<double>& p) {
        auto out = channelwise(x, channel_wise,
                               [&](const at::Tensor& v, int64_t c) { return v.to(at::kFloat) * (1.0 + p[c < 0 ? 0 : c]); });
        return cast_to(out, dtype, x.scalar_type());
      },
      [=](const at::Tensor& x) { return cast_to(x, dtype, x.scalar_type()); });
}

std::unique_ptr<Transform> make_rand_gaussian_noised(const ConfigNode& a, const BuildContext&) {
  const double mean = a.get_or("mean", 0.0), stdv = a.get_or("std", 0.1);
  const bool sample_std = a.get_or("sample_std", true);
  const auto dtype = dtype_arg(a, "dtype", at::kFloat);
  // One noise field per sample: the draw carries its seed, so every key gets the same noise.
  return std::make_unique<RandomPerKey>(
      "RandGaussianNoised", KeySelection::from_config(a), prob_arg(a),
      [=](Rng& rng, const Sample&, const std::string&) {
        const double sigma = sample_std ? rng.uniform(0.0, stdv) : stdv;
        return std::vector<double>{sigma, static_cast<double>(rng.next() >> 11)};
      },
      [=](const at::Tensor& x, const std::vector<double>& p) {
        // Seeded from the draw, so every key gets the same noise field.
        Rng noise_rng(static_cast<uint64_t>(p[1]));
        auto gen = noise_rng.torch_generator();
        auto noise = at::normal(mean, p[0], x.sizes(), gen, at::TensorOptions().dtype(at::kDouble));
        return (cast_to(x, dtype, x.scalar_type()) + noise.to(dtype ? *dtype : at::kFloat));
      });
}

std::unique_ptr<Transform> make_rand_gaussian_smoothd(const ConfigNode& a, const BuildContext&) {
  const auto sx = range_arg(a, "sigma_x", {0.25, 1.5}, false), sy = range_arg(a, "sigma_y", {0.25, 1.5}, false),
             sz = range_arg(a, "sigma_z", {0.25, 1.5}, false);
  if (a.has("approx") && a.at("approx").as<std::string>() != "erf") {
    throw a.at("approx").error("only approx=\"erf\" is supported");
  }
  return std::make_unique<RandomPerKey>(
      "RandGaussianSmoothd", KeySelection::from_config(a), prob_arg(a),
      [=](Rng& rng, const Sample&, const std::string&) {
        return std::vector<double>{rng.uniform(sx.first, sx.second), rng.uniform(sy.first, sy.second),
                                   rng.uniform(sz.first, sz.second)};
      },
      [=](const at::Tensor& x, const std::vector<double>& p) {
        return fi::gaussian_smooth(x, std::vector<double>(p.begin(), p.begin() + (x.dim() - 1)));
      });
}

std::unique_ptr<Transform> make_rand_adjust_contrastd(const ConfigNode& a, const BuildContext&) {
  std::pair<double, double> gamma{0.5, 4.5};
  if (a.given("gamma")) {
    const auto g = a.at("gamma");
    if (g.is_array()) {
      gamma = range_arg(a, "gamma", gamma);
    } else {
      if (g.as<double>() <= 0.5) throw g.error("a single gamma must be greater than 0.5");
      gamma = {0.5, g.as<double>()};
    }
  }
  const bool invert = a.get_or("invert_image", false), retain = a.get_or("retain_stats", false);
  return std::make_unique<RandomPerKey>(
      "RandAdjustContrastd", KeySelection::from_config(a), prob_arg(a),
      [=](Rng& rng, const Sample&, const std::string&) { return std::vector<double>{rng.uniform(gamma.first, gamma.second)}; },
      [=](const at::Tensor& x, const std::vector<double>& p) { return fi::adjust_contrast(x, p[0], invert, retain); });
}

std::unique_ptr<Transform> make_rand_histogram_shiftd(const ConfigNode& a, const BuildContext&) {
  std::pair<int64_t, int64_t> n{10, 10};
  if (a.has("num_control_points")) {
    const auto v = a.at("num_control_points");
    if (v.is_array()) {
      const auto p = v.as<std::vector<int64_t>>();
      if (p.size() != 2) throw v.error("expected an int or a [min, max] pair");
      n = {std::min(p[0], p[1]), std::max(p[0], p[1])};
    } else {
      n = {v.as<int64_t>(), v.as<int64_t>()};
    }
    if (n.first < 3) throw v.error("needs at least 3 control points");
  }
  return std::make_unique<RandomPerKey>(
      "RandHistogramShiftd", KeySelection::from_config(a), prob_arg(a),
      [=](Rng& rng, const Sample&, const std::string&) {
        const int64_t k = rng.randint(n.first, n.second + 1);
        std::vector<double> floating(k);
        for (int64_t i = 0; i < k; ++i) floating[i] = static_cast<double>(i) / static_cast<double>(k - 1);
        for (int64_t i = 1; i + 1 < k; ++i) floating[i] = rng.uniform(floating[i - 1], floating[i + 1]);
        return floating;
      },
      [=](const at::Tensor& x, const std::vector<double>& floating) {
        const double lo = x.min().item<double>(), hi = x.max().item<double>();
        if (lo == hi) return x;
        const auto k = floating.size();
        std::vector<double> xp(k), fp(k);
        for (std::size_t i = 0; i < k; ++i) {
          xp[i] = static_cast<double>(i) / static_cast<double>(k - 1) * (hi - lo) + lo;
          fp[i] = floating[i] * (hi - lo) + lo;
        }
        return fi::interp(x, xp, fp);
      });
}

}  // namespace

void register_intensity(TransformRegistry& r) {
  r.implement("ScaleIntensityRanged", make_scale_intensity_ranged);
  r.implement("ScaleIntensityRangePercentilesd", make_scale_intensity_range_percentilesd);
  r.implement("NormalizeIntensityd", make_normalize_intensityd);
  r.implement("ScaleIntensityd", make_scale_intensityd);
  r.implement("ThresholdIntensityd", make_threshold_intensityd);
  r.implement("ClipIntensityPercentilesd", make_clip_intensity_percentilesd);
  // ---- random intensity transforms
  r.implement("RandShiftIntensityd", [](const ConfigNode& a, const BuildContext&) {
    const auto range = range_arg(a, "offsets", {0, 0});
    const bool channel_wise = a.get_or("channel_wise", false);
    if (a.given("factor_key")) {
      throw a.at("factor_key").error("factor_key is not supported yet");
    }
    return std::make_unique<RandomPerKey>(
        "RandShiftIntensityd", KeySelection::from_config(a), prob_arg(a),
        uniform_draw(range, channel_wise),
        [=](const at::Tensor& x, const std::vector<double>& p) {
          // A tensor no one else holds (a fresh patch: one reference, no views of its storage) is
          // shifted in place: the same values, without a new volume.
          if (!channel_wise && x.is_floating_point() && x.use_count() == 1 && x.storage().use_count() == 1 &&
              x.is_non_overlapping_and_dense()) {
            return at::Tensor(x).add_(p[0]);
          }
          auto out = channelwise(x, channel_wise, [&](const at::Tensor& v, int64_t c) { return v + p[c < 0 ? 0 : c]; });
          return out.to(x.scalar_type());
        });
  });
  r.implement("RandScaleIntensityd", make_rand_scale_intensityd);
  r.implement("RandGaussianNoised", make_rand_gaussian_noised);
  r.implement("RandGaussianSmoothd", make_rand_gaussian_smoothd);
  r.implement("RandAdjustContrastd", make_rand_adjust_contrastd);
  r.implement("RandHistogramShiftd", make_rand_histogram_shiftd);
}

}  // namespace barton::transforms
