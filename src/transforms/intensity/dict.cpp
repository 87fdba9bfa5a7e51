// Intensity dictionary transforms (MONAI names and arguments; docs/monai-semantics-intensity.md).
#include <functional>

#include <ATen/ATen.h>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/draw_log.h"
#include "transforms/intensity/functional.h"
#include "transforms/register.h"

namespace barton::transforms {

namespace {

namespace fi = intensity;

std::optional<double> opt_double(const ConfigNode& a, const char* name) {
  if (a.at(name).is_null()) return std::nullopt;
  return a.at(name).as<double>();
}

at::Tensor cast_to(const at::Tensor& t, std::optional<at::ScalarType> dtype, at::ScalarType in) {
  return t.to(dtype ? *dtype : in);
}

/// A deterministic per-key function of the image tensor.
class PerKey final : public MapTransform {
 public:
  using Fn = std::function<at::Tensor(const at::Tensor&)>;
  PerKey(std::string name, KeySelection k, Fn fn)
      : MapTransform(std::move(k)), name_(std::move(name)), fn_(std::move(fn)) {}
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
class RandomPerKey final : public RandomMapTransform {
 public:
  using Draw = std::function<Params(Rng&, const Sample&, const std::string& first_key)>;
  using Fn = std::function<at::Tensor(const at::Tensor&, const Params&)>;
  using Skip = std::function<at::Tensor(const at::Tensor&)>;
  RandomPerKey(std::string name, KeySelection k, double prob, Draw draw, Fn fn, Skip skip = nullptr)
      : RandomMapTransform(std::move(name), std::move(k), prob),
        draw_(std::move(draw)),
        fn_(std::move(fn)),
        skip_(std::move(skip)) {}

 protected:
  Params draw(Rng& rng, const Sample& s, const std::string& first_key) const override {
    return draw_(rng, s, first_key);
  }
  void apply_key(ImageItem& img, const Params& params, std::size_t) const override {
    img.data = fn_(img.data, params);
  }
  void skip_key(ImageItem& img) const override {
    if (skip_) img.data = skip_(img.data);
  }

 private:
  Draw draw_;
  Fn fn_;
  Skip skip_;
};

// Applies fn to every channel (channel_wise) or to the whole image.
at::Tensor channelwise(const at::Tensor& img,
                       bool channel_wise,
                       const std::function<at::Tensor(const at::Tensor&, int64_t)>& fn) {
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

ComponentSpec scale_intensity_ranged_spec() {
  return dict_spec("ScaleIntensityRanged",
                   "Maps [a_min, a_max] linearly to [b_min, b_max], optionally clipping.",
                   {keys_spec(), req("a_min", A::kFloat, "Input range start."),
                    req("a_max", A::kFloat, "Input range end."),
                    opt("b_min", A::kFloat, "null", "Output range start."),
                    opt("b_max", A::kFloat, "null", "Output range end."),
                    opt("clip", A::kBool, "false", "Clamp to [b_min, b_max]."), dtype_spec(),
                    allow_missing_spec()});
}

std::unique_ptr<Transform> make_scale_intensity_ranged(const ConfigNode& a, const BuildContext&) {
  const double a_min = a.require<double>("a_min"), a_max = a.require<double>("a_max");
  const auto b_min = opt_double(a, "b_min"), b_max = opt_double(a, "b_max");
  const bool clip = a.require<bool>("clip");
  if (clip && !b_min && !b_max) {
    throw ConfigError(a.source(), a.pointer() + "/clip", "clip needs b_min or b_max");
  }
  const auto dtype = dtype_arg(a, "dtype");
  return std::make_unique<PerKey>(
      "ScaleIntensityRanged", KeySelection::from_config(a), [=](const at::Tensor& x) {
        if (a_max - a_min == 0.0)
          return fi::scale_intensity_range(x, a_min, a_max, b_min, b_max, clip);
        return cast_to(fi::scale_intensity_range(x, a_min, a_max, b_min, b_max, clip), dtype,
                       x.scalar_type());
      });
}

ComponentSpec scale_intensity_range_percentilesd_spec() {
  return dict_spec(
      "ScaleIntensityRangePercentilesd",
      "Like ScaleIntensityRanged with a_min/a_max taken as percentiles.",
      {keys_spec(), req("lower", A::kFloat, "Lower percentile."),
       req("upper", A::kFloat, "Upper percentile."), req("b_min", A::kFloat, "Output start."),
       req("b_max", A::kFloat, "Output end."),
       opt("clip", A::kBool, "false", "Clamp the output to [b_min, b_max]."),
       opt("relative", A::kBool, "false",
           "Shrink the output range to the percentiles' share of [b_min, b_max] (needs both)."),
       opt("channel_wise", A::kBool, "false",
           "Compute the percentiles and scale each channel separately."),
       dtype_spec(), allow_missing_spec()});
}

std::unique_ptr<Transform> make_scale_intensity_range_percentilesd(const ConfigNode& a,
                                                                   const BuildContext&) {
  const double lower = a.require<double>("lower"), upper = a.require<double>("upper");
  for (const char* k : {"lower", "upper"}) {
    const double v = a.require<double>(k);
    if (v < 0 || v > 100) throw a.at(k).error("must be in [0, 100]");
  }
  const auto b_min = opt_double(a, "b_min"), b_max = opt_double(a, "b_max");
  const bool clip = a.require<bool>("clip"), relative = a.require<bool>("relative"),
             channel_wise = a.require<bool>("channel_wise");
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

ComponentSpec normalize_intensityd_spec() {
  return dict_spec(
      "NormalizeIntensityd",
      "Subtracts the mean (or subtrahend) and divides by the std (or divisor).",
      {keys_spec(),
       opt("subtrahend", A::kFloats, "null",
           "Value to subtract (one, or one per channel with channel_wise); null: the mean."),
       opt("divisor", A::kFloats, "null",
           "Value to divide by (one, or one per channel with channel_wise); null: the std."),
       opt("nonzero", A::kBool, "false", "Use non-zero voxels only."),
       opt("channel_wise", A::kBool, "false", "Normalise each channel separately."), dtype_spec(),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_normalize_intensityd(const ConfigNode& a, const BuildContext&) {
  auto list = [&](const char* n) {
    std::vector<double> v;
    if (a.given(n))
      v = a.at(n).is_array() ? a.at(n).as<std::vector<double>>()
                             : std::vector<double>{a.at(n).as<double>()};
    return v;
  };
  const auto sub = list("subtrahend"), div = list("divisor");
  const bool nonzero = a.require<bool>("nonzero"), channel_wise = a.require<bool>("channel_wise");
  const auto dtype = dtype_arg(a, "dtype");
  return std::make_unique<PerKey>(
      "NormalizeIntensityd", KeySelection::from_config(a), [=](const at::Tensor& x) {
        return cast_to(fi::normalize_intensity(x, sub, div, nonzero, channel_wise), dtype,
                       x.scalar_type());
      });
}

ComponentSpec scale_intensityd_spec() {
  return dict_spec(
      "ScaleIntensityd", "Rescales to [minv, maxv] or multiplies by 1 + factor.",
      {keys_spec(),
       opt("minv", A::kFloat, "0.0",
           "Output minimum of the min-max rescaling; null with maxv null selects factor."),
       opt("maxv", A::kFloat, "1.0",
           "Output maximum of the min-max rescaling; null with minv null selects factor."),
       opt("factor", A::kFloat, "null",
           "With minv and maxv null: multiply the intensities by 1 + factor."),
       opt("channel_wise", A::kBool, "false", "Rescale each channel separately."), dtype_spec(),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_scale_intensityd(const ConfigNode& a, const BuildContext&) {
  const auto minv = a.get_optional<double>("minv"), maxv = a.get_optional<double>("maxv");
  const auto factor = opt_double(a, "factor");
  const bool channel_wise = a.require<bool>("channel_wise");
  const auto dtype = dtype_arg(a, "dtype");
  return std::make_unique<PerKey>(
      "ScaleIntensityd", KeySelection::from_config(a), [=](const at::Tensor& x) {
        at::Tensor out;
        if (minv || maxv) {
          out = channelwise(x, channel_wise, [&](const at::Tensor& v, int64_t) {
            return fi::rescale(v, minv, maxv);
          });
        } else {
          out = factor ? x.to(at::kFloat) * (1.0 + *factor) : x;
        }
        return cast_to(out, dtype, x.scalar_type());
      });
}

ComponentSpec threshold_intensityd_spec() {
  return dict_spec(
      "ThresholdIntensityd", "Replaces values above/below threshold with cval.",
      {keys_spec(), req("threshold", A::kFloat, "The threshold value."),
       opt("above", A::kBool, "true",
           "Keep values above the threshold (true) or below it (false); the others become cval."),
       opt("cval", A::kFloat, "0.0", "Value given to the voxels that are not kept."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_threshold_intensityd(const ConfigNode& a, const BuildContext&) {
  const double t = a.require<double>("threshold"), cval = a.require<double>("cval");
  const bool above = a.require<bool>("above");
  return std::make_unique<PerKey>(
      "ThresholdIntensityd", KeySelection::from_config(a),
      [=](const at::Tensor& x) { return fi::threshold_intensity(x, t, above, cval); });
}

ComponentSpec clip_intensity_percentilesd_spec() {
  return dict_spec(
      "ClipIntensityPercentilesd", "Clips to percentiles.",
      {keys_spec(), req("lower", A::kFloat, "Lower percentile in [0, 100]; null: no lower clip."),
       req("upper", A::kFloat, "Upper percentile in [0, 100]; null: no upper clip."),
       opt("sharpness_factor", A::kFloat, "null",
           "Soft-clipping sharpness; not supported yet (must be null)."),
       opt("channel_wise", A::kBool, "false",
           "Compute the percentiles and clip each channel separately."),
       dtype_spec(), allow_missing_spec()});
}

std::unique_ptr<Transform> make_clip_intensity_percentilesd(const ConfigNode& a,
                                                            const BuildContext&) {
  const auto lower = opt_double(a, "lower"), upper = opt_double(a, "upper");
  if (!lower && !upper) throw a.error("lower and upper cannot both be null");
  if (lower && upper && *upper < *lower) {
    throw a.at("upper").error("must be at least lower");
  }
  if (a.given("sharpness_factor")) {
    throw ConfigError(a.at("sharpness_factor").source(), a.at("sharpness_factor").pointer(),
                      "soft clipping is not supported yet; leave sharpness_factor null");
  }
  const bool channel_wise = a.require<bool>("channel_wise");
  return std::make_unique<PerKey>(
      "ClipIntensityPercentilesd", KeySelection::from_config(a), [=](const at::Tensor& x) {
        auto out = channelwise(x, channel_wise, [&](const at::Tensor& v, int64_t) {
          const double lo = fi::percentile(v, lower ? *lower : 0.0),
                       hi = fi::percentile(v, upper ? *upper : 100.0);
          return at::clamp(v.to(at::kDouble), lo, hi);
        });
        return out.to(x.scalar_type());
      });
}

ComponentSpec rand_scale_intensityd_spec() {
  return dict_spec(
      "RandScaleIntensityd", "Multiplies by 1 + a random factor.",
      {keys_spec(),
       req("factors", A::kFloats,
           "Factor range: x means [-x, x], or [min, max]; intensities are multiplied by 1 + "
           "factor."),
       prob_spec(),
       opt("channel_wise", A::kBool, "false", "Draw a separate factor for each channel."),
       dtype_spec(), allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_scale_intensityd(const ConfigNode& a, const BuildContext&) {
  const auto range = range_arg(a, "factors");
  const bool channel_wise = a.require<bool>("channel_wise");
  const auto dtype = dtype_arg(a, "dtype");
  return std::make_unique<RandomPerKey>(
      "RandScaleIntensityd", KeySelection::from_config(a), prob_arg(a),
      uniform_draw(range, channel_wise),
      [=](const at::Tensor& x, const std::vector<double>& p) {
        auto out = channelwise(x, channel_wise, [&](const at::Tensor& v, int64_t c) {
          return v.to(at::kFloat) * (1.0 + p[c < 0 ? 0 : c]);
        });
        return cast_to(out, dtype, x.scalar_type());
      },
      [=](const at::Tensor& x) { return cast_to(x, dtype, x.scalar_type()); });
}

ComponentSpec rand_gaussian_noised_spec() {
  return dict_spec("RandGaussianNoised", "Adds Gaussian noise.",
                   {keys_spec(), prob_spec(), opt("mean", A::kFloat, "0.0", "Mean of the noise."),
                    opt("std", A::kFloat, "0.1",
                        "Standard deviation of the noise (its upper bound with sample_std)."),
                    dtype_spec(), allow_missing_spec(),
                    opt("sample_std", A::kBool, "true",
                        "Draw the standard deviation uniformly from [0, std] for each sample.")});
}

std::unique_ptr<Transform> make_rand_gaussian_noised(const ConfigNode& a, const BuildContext&) {
  const double mean = a.require<double>("mean"), stdv = a.require<double>("std");
  const bool sample_std = a.require<bool>("sample_std");
  const auto dtype = dtype_arg(a, "dtype");
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

ComponentSpec rand_gaussian_smoothd_spec() {
  return dict_spec("RandGaussianSmoothd", "Gaussian smoothing with random sigmas.",
                   {keys_spec(),
                    opt("sigma_x", A::kFloats, "[0.25, 1.5]",
                        "Range of the smoothing sigma along the first spatial axis."),
                    opt("sigma_y", A::kFloats, "[0.25, 1.5]",
                        "Range of the smoothing sigma along the second spatial axis."),
                    opt("sigma_z", A::kFloats, "[0.25, 1.5]",
                        "Range of the smoothing sigma along the third spatial axis."),
                    opt("approx", A::kString, "\"erf\"",
                        "Gaussian kernel approximation; only erf is supported."),
                    prob_spec(), allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_gaussian_smoothd(const ConfigNode& a, const BuildContext&) {
  const auto sx = range_arg(a, "sigma_x", false), sy = range_arg(a, "sigma_y", false),
             sz = range_arg(a, "sigma_z", false);
  if (a.given("approx") && a.at("approx").as<std::string>() != "erf") {
    throw a.at("approx").error("only approx=\"erf\" is supported");
  }
  return std::make_unique<RandomPerKey>(
      "RandGaussianSmoothd", KeySelection::from_config(a), prob_arg(a),
      [=](Rng& rng, const Sample&, const std::string&) {
        return std::vector<double>{rng.uniform(sx.first, sx.second),
                                   rng.uniform(sy.first, sy.second),
                                   rng.uniform(sz.first, sz.second)};
      },
      [=](const at::Tensor& x, const std::vector<double>& p) {
        return fi::gaussian_smooth(x, std::vector<double>(p.begin(), p.begin() + (x.dim() - 1)));
      });
}

ComponentSpec rand_adjust_contrastd_spec() {
  return dict_spec("RandAdjustContrastd", "Random gamma contrast.",
                   {keys_spec(), prob_spec(),
                    opt("gamma", A::kFloats, "[0.5, 4.5]",
                        "Gamma range [min, max], or g for [0.5, g] (g must exceed 0.5)."),
                    opt("invert_image", A::kBool, "false",
                        "Negate the image before the gamma curve and negate the result again."),
                    opt("retain_stats", A::kBool, "false",
                        "Restore the input's mean and standard deviation after the adjustment."),
                    allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_adjust_contrastd(const ConfigNode& a, const BuildContext&) {
  std::pair<double, double> gamma{0.5, 4.5};
  if (a.given("gamma")) {
    const auto g = a.at("gamma");
    if (g.is_array()) {
      gamma = range_arg(a, "gamma");
    } else {
      if (g.as<double>() <= 0.5) throw g.error("a single gamma must be greater than 0.5");
      gamma = {0.5, g.as<double>()};
    }
  }
  const bool invert = a.require<bool>("invert_image"), retain = a.require<bool>("retain_stats");
  return std::make_unique<RandomPerKey>(
      "RandAdjustContrastd", KeySelection::from_config(a), prob_arg(a),
      [=](Rng& rng, const Sample&, const std::string&) {
        return std::vector<double>{rng.uniform(gamma.first, gamma.second)};
      },
      [=](const at::Tensor& x, const std::vector<double>& p) {
        return fi::adjust_contrast(x, p[0], invert, retain);
      });
}

ComponentSpec rand_histogram_shiftd_spec() {
  return dict_spec(
      "RandHistogramShiftd", "Random non-linear histogram shift.",
      {keys_spec(),
       opt("num_control_points", A::kInts, "10",
           "Control points of the random intensity curve: n, or [min, max]; at least 3."),
       prob_spec(), allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_histogram_shiftd(const ConfigNode& a, const BuildContext&) {
  std::pair<int64_t, int64_t> n{10, 10};
  if (a.given("num_control_points")) {
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
        for (int64_t i = 0; i < k; ++i)
          floating[i] = static_cast<double>(i) / static_cast<double>(k - 1);
        for (int64_t i = 1; i + 1 < k; ++i)
          floating[i] = rng.uniform(floating[i - 1], floating[i + 1]);
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

ComponentSpec rand_shift_intensityd_spec() {
  return dict_spec(
      "RandShiftIntensityd", "Adds a random offset in [-offsets, offsets].",
      {keys_spec(), req("offsets", A::kFloats, "Offset range: x means [-x, x], or [min, max]."),
       opt("safe", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("factor_key", A::kString, "null",
           "Key of a stored factor to scale the offsets by; not supported yet (must be null)."),
       meta_keys_spec(), meta_postfix_spec(), prob_spec(),
       opt("channel_wise", A::kBool, "false", "Draw a separate offset for each channel."),
       allow_missing_spec()});
}

}  // namespace

void register_intensity(TransformRegistry& r) {
  r.add(scale_intensity_ranged_spec(), make_scale_intensity_ranged);
  r.add(scale_intensity_range_percentilesd_spec(), make_scale_intensity_range_percentilesd);
  r.add(normalize_intensityd_spec(), make_normalize_intensityd);
  r.add(scale_intensityd_spec(), make_scale_intensityd);
  r.add(threshold_intensityd_spec(), make_threshold_intensityd);
  r.add(clip_intensity_percentilesd_spec(), make_clip_intensity_percentilesd);
  // ---- random intensity transforms
  r.add(rand_shift_intensityd_spec(), [](const ConfigNode& a, const BuildContext&) {
    const auto range = range_arg(a, "offsets");
    const bool channel_wise = a.require<bool>("channel_wise");
    if (a.given("factor_key")) {
      throw a.at("factor_key").error("factor_key is not supported yet");
    }
    return std::make_unique<RandomPerKey>(
        "RandShiftIntensityd", KeySelection::from_config(a), prob_arg(a),
        uniform_draw(range, channel_wise), [=](const at::Tensor& x, const std::vector<double>& p) {
          // A tensor no one else holds (a fresh patch: one reference, no views of its storage) is
          // shifted in place: the same values, without a new volume.
          if (!channel_wise && x.is_floating_point() && x.use_count() == 1 &&
              x.storage().use_count() == 1 && x.is_non_overlapping_and_dense()) {
            return at::Tensor(x).add_(p[0]);
          }
          auto out = channelwise(x, channel_wise, [&](const at::Tensor& v, int64_t c) {
            return v + p[c < 0 ? 0 : c];
          });
          return out.to(x.scalar_type());
        });
  });
  r.add(rand_scale_intensityd_spec(), make_rand_scale_intensityd);
  r.add(rand_gaussian_noised_spec(), make_rand_gaussian_noised);
  r.add(rand_gaussian_smoothd_spec(), make_rand_gaussian_smoothd);
  r.add(rand_adjust_contrastd_spec(), make_rand_adjust_contrastd);
  r.add(rand_histogram_shiftd_spec(), make_rand_histogram_shiftd);
}

}  // namespace barton::transforms
