// Spatial dictionary transforms: orientation, spacing, resizing, flips, rotations, zoom, affine,
// elastic deformation, and Invertd (docs/monai-semantics-spatial.md).
#include <cmath>

#include <ATen/ATen.h>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/croppad/functional.h"
#include "transforms/intensity/functional.h"
#include "transforms/register.h"
#include "transforms/spatial/functional.h"
#include "transforms/trace.h"

namespace barton::transforms {

namespace {

namespace fs = spatial;

std::vector<std::string> strings_per_key(const ConfigNode& a,
                                         const char* name,
                                         std::size_t n,
                                         const std::string& fallback) {
  return per_key<std::string>(a, name, n, fallback);
}

/// Applies a geometric function to each key, recording the step for Invertd.
class SpatialPerKey : public MapTransform {
 public:
  using Fn = std::function<fs::Spatial(const fs::Spatial&, std::size_t key_index)>;
  SpatialPerKey(std::string name,
                KeySelection k,
                Fn fn,
                std::vector<std::string> modes = {},
                std::vector<std::string> paddings = {})
      : MapTransform(std::move(k)),
        name_(std::move(name)),
        fn_(std::move(fn)),
        modes_(std::move(modes)),
        paddings_(std::move(paddings)) {}
  std::string name() const override { return name_; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t i) { transform_key(s.image(key), i); });
  }

 protected:
  void transform_key(ImageItem& img, std::size_t i) const {
    const auto shape = img.spatial_shape();
    const auto affine = img.affine;
    auto out = fn_({img.data, img.affine}, i);
    img.data = out.data;
    img.affine = out.affine;
    record(img, name_, shape, affine, i < modes_.size() ? modes_[i] : "",
           i < paddings_.size() ? paddings_[i] : "");
  }
  std::string name_;
  Fn fn_;
  std::vector<std::string> modes_, paddings_;
};

class Spacing final : public MapTransform {
 public:
  Spacing(KeySelection k, std::vector<fs::SpacingOptions> opts, bool same_shape)
      : MapTransform(std::move(k)), opts_(std::move(opts)), same_shape_(same_shape) {}
  std::string name() const override { return "Spacingd"; }
  void apply(Sample& s, Rng&) const override {
    std::vector<int64_t> first_in, first_out;
    std::vector<double> first_pix;
    bool have_first = false;
    for_each_key(s, [&](const std::string& key, std::size_t i) {
      auto& img = s.image(key);
      const auto shape = img.spatial_shape();
      const auto affine = img.affine;
      const auto pix = voxel_spacing(affine, 3);
      std::vector<int64_t> force;
      if (same_shape_ && have_first && shape == first_in) {
        bool close = true;
        for (int d = 0; d < 3; ++d)
          close = close && std::abs(pix[d] - first_pix[d]) <= 1e-3 + 1e-5 * std::abs(first_pix[d]);
        if (close) force = first_out;
      }
      auto out = fs::spacing({img.data, img.affine}, opts_[i], force);
      if (!have_first) {
        have_first = true;
        first_in = shape;
        first_pix = pix;
        first_out.clear();
        for (int64_t d = 1; d < out.data.dim(); ++d) first_out.push_back(out.data.size(d));
      }
      img.data = out.data;
      img.affine = out.affine;
      record(img, "Spacingd", shape, affine, opts_[i].mode, opts_[i].padding_mode);
    });
  }

 private:
  std::vector<fs::SpacingOptions> opts_;
  bool same_shape_;
};

/// A random geometric transform: one draw per call (after the prob test), applied to every key.
class RandomSpatial final : public RandomMapTransform {
 public:
  using Draw = std::function<Params(Rng&, const ImageItem& first)>;
  using Fn =
      std::function<fs::Spatial(const fs::Spatial&, const Params& params, std::size_t key_index)>;
  using Skip = std::function<at::Tensor(const at::Tensor&)>;
  RandomSpatial(std::string name,
                KeySelection k,
                double prob,
                Draw draw,
                Fn fn,
                Skip skip = nullptr,
                std::vector<std::string> modes = {},
                std::vector<std::string> paddings = {})
      : RandomMapTransform(std::move(name), std::move(k), prob),
        draw_(std::move(draw)),
        fn_(std::move(fn)),
        skip_(std::move(skip)),
        modes_(std::move(modes)),
        paddings_(std::move(paddings)) {}

 protected:
  Params draw(Rng& rng, const Sample& s, const std::string& first_key) const override {
    return draw_(rng, s.image(first_key));
  }
  void apply_key(ImageItem& img, const Params& params, std::size_t i) const override {
    const auto shape = img.spatial_shape();
    const auto affine = img.affine;
    auto out = fn_({img.data, img.affine}, params, i);
    img.data = out.data;
    img.affine = out.affine;
    record(img, name(), shape, affine, i < modes_.size() ? modes_[i] : "",
           i < paddings_.size() ? paddings_[i] : "");
  }
  void skip_key(ImageItem& img) const override {
    if (skip_) img.data = skip_(img.data);
  }

 private:
  Draw draw_;
  Fn fn_;
  Skip skip_;
  std::vector<std::string> modes_, paddings_;
};

std::vector<int64_t> axes_arg(const ConfigNode& a, const char* name, int64_t r_hint) {
  std::vector<int64_t> axes;
  if (a.at(name).is_null()) {
    for (int64_t d = 0; d < r_hint; ++d) axes.push_back(d);
    return axes;
  }
  const auto v = a.at(name);
  return v.is_array() ? v.as<std::vector<int64_t>>() : std::vector<int64_t>{v.as<int64_t>()};
}

std::vector<int64_t> normalize_axes(std::vector<int64_t> axes, int64_t r, bool all_if_empty) {
  if (axes.empty() && all_if_empty) {
    for (int64_t d = 0; d < r; ++d) axes.push_back(d);
  }
  for (auto& a : axes) {
    if (a < 0) a += r;
    BARTON_CHECK(a >= 0 && a < r, "spatial axis out of range for a {}D image", r);
  }
  return axes;
}

class Invert final : public MapTransform {
 public:
  Invert(KeySelection k, std::vector<std::string> orig_keys, std::vector<bool> nearest)
      : MapTransform(std::move(k)), orig_(std::move(orig_keys)), nearest_(std::move(nearest)) {}
  std::string name() const override { return "Invertd"; }
  void apply(Sample& s, Rng&) const override {
    for_each_key(s, [&](const std::string& key, std::size_t i) {
      const auto& orig = s.image(orig_[i]);
      auto& pred = s.image(key);
      BARTON_CHECK(
          pred.spatial_shape() == orig.spatial_shape(),
          "Invertd: '{}' has spatial shape [{}] but '{}' has [{}]; the prediction must lie on the "
          "transformed image's grid",
          key, fmt::join(pred.spatial_shape(), ", "), orig_[i],
          fmt::join(orig.spatial_shape(), ", "));
      auto [data, affine] = invert_trace(pred.data, orig.affine, orig.applied, nearest_[i]);
      pred.data = data;
      pred.affine = affine;
      pred.applied.clear();
      pred.filename = orig.filename;
      pred.original_shape = orig.original_shape;
      pred.original_affine = orig.original_affine;
    });
  }

 private:
  std::vector<std::string> orig_;
  std::vector<bool> nearest_;
};

std::vector<double> angle_ranges_draw(Rng& rng,
                                      const std::vector<std::pair<double, double>>& ranges,
                                      int r) {
  std::vector<double> out;
  for (int d = 0; d < (r == 2 ? 1 : 3); ++d)
    out.push_back(rng.uniform(ranges[d].first, ranges[d].second));
  return out;
}

std::vector<std::pair<double, double>> ranges_arg(const ConfigNode& a, const char* name, int n) {
  std::vector<std::pair<double, double>> out(n, {0.0, 0.0});
  if (a.at(name).is_null()) return out;
  const auto v = a.at(name);
  if (!v.is_array()) {
    const double x = v.as<double>();
    out.assign(n, {-std::abs(x), std::abs(x)});
    return out;
  }
  for (std::size_t i = 0; i < v.size() && i < static_cast<std::size_t>(n); ++i) {
    const auto e = v.at(i);
    if (e.is_null()) continue;
    if (e.is_array()) {
      const auto p = e.as<std::vector<double>>();
      if (p.size() != 2) throw e.error("expected a number or a [min, max] pair");
      out[i] = {std::min(p[0], p[1]), std::max(p[0], p[1])};
    } else {
      const double x = e.as<double>();
      out[i] = {-std::abs(x), std::abs(x)};
    }
  }
  return out;
}

// MONAI's RandAffineGrid draws rotate, shear, translate, scale (in that order), each only when its
// range is given; scale gets +1.
Affine draw_affine(Rng& rng,
                   int r,
                   const std::vector<std::pair<double, double>>& rot,
                   const std::vector<std::pair<double, double>>& shear,
                   const std::vector<std::pair<double, double>>& trans,
                   const std::vector<std::pair<double, double>>& scale,
                   bool has_rot,
                   bool has_shear,
                   bool has_trans,
                   bool has_scale) {
  auto draw = [&](const std::vector<std::pair<double, double>>& rg, std::size_t n, double add) {
    std::vector<double> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back(rng.uniform(rg[i].first, rg[i].second) + add);
    return v;
  };
  Affine m = identity_affine();
  if (has_rot) m = matmul(m, fs::create_rotate(r, draw(rot, r == 2 ? 1 : 3, 0.0)));
  if (has_shear) m = matmul(m, fs::create_shear(r, draw(shear, r == 2 ? 2 : 6, 0.0)));
  if (has_trans) m = matmul(m, fs::create_translate(r, draw(trans, r, 0.0)));
  if (has_scale) m = matmul(m, fs::create_scale(r, draw(scale, r, 1.0)));
  return m;
}

/// The random-affine arguments shared by RandAffined and Rand3DElasticd, and spatial_size.
struct AffineRanges {
  std::vector<std::pair<double, double>> rot, shear, trans, scale;
  bool has_rot = false, has_shear = false, has_trans = false, has_scale = false;
  std::vector<int64_t> spatial_size;  // empty: keep the input's

  static AffineRanges from_config(const ConfigNode& a) {
    AffineRanges o;
    auto given = [&](const char* name) { return a.given(name); };
    o.rot = ranges_arg(a, "rotate_range", 3);
    o.shear = ranges_arg(a, "shear_range", 6);
    o.trans = ranges_arg(a, "translate_range", 3);
    o.scale = ranges_arg(a, "scale_range", 3);
    o.has_rot = given("rotate_range");
    o.has_shear = given("shear_range");
    o.has_trans = given("translate_range");
    o.has_scale = given("scale_range");
    if (given("spatial_size")) {
      const auto v = a.at("spatial_size");
      o.spatial_size =
          v.is_array() ? v.as<std::vector<int64_t>>() : std::vector<int64_t>{v.as<int64_t>()};
    }
    return o;
  }
  Affine draw(Rng& rng, int r) const {
    return draw_affine(rng, r, rot, shear, trans, scale, has_rot, has_shear, has_trans, has_scale);
  }
  std::vector<int64_t> out_size(const at::Tensor& data) const {
    std::vector<int64_t> shape(data.sizes().begin() + 1, data.sizes().end());
    return croppad::fall_back(spatial_size, shape);
  }
};

}  // namespace

namespace {

ComponentSpec orientationd_spec() {
  return dict_spec(
      "Orientationd", "Reorients to axcodes (e.g. RAS), updating the affine.",
      {keys_spec(), opt("axcodes", A::kString, "null", "Target orientation, e.g. \"RAS\"."),
       opt("as_closest_canonical", A::kBool, "false", "Use the closest canonical orientation."),
       opt("labels", A::kAny, "[[\"L\",\"R\"],[\"P\",\"A\"],[\"I\",\"S\"]]", "Axis labels."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_orientationd(const ConfigNode& a, const BuildContext&) {
  const bool closest = a.require<bool>("as_closest_canonical");
  std::string axcodes = a.get_optional<std::string>("axcodes").value_or("");
  if (axcodes.empty() && !closest) {
    throw a.error("Orientationd needs axcodes (e.g. \"RAS\") or as_closest_canonical=true");
  }
  // Axis codes are read with the standard labels (left/right, posterior/anterior,
  // inferior/superior).
  if (a.given("labels") && a.at("labels").dump() != R"([["L","R"],["P","A"],["I","S"]])") {
    throw a.at("labels").error("custom axis labels are not supported");
  }
  return std::make_unique<SpatialPerKey>("Orientationd", KeySelection::from_config(a),
                                         [axcodes, closest](const fs::Spatial& in, std::size_t) {
                                           if (closest) {
                                             const int rr = static_cast<int>(in.data.dim()) - 1;
                                             const auto src =
                                                 fs::io_orientation(fs::to_nd(in.affine, rr), rr);
                                             std::string code;
                                             for (int i = 0; i < rr; ++i) code += "RAS"[i];
                                             (void)src;
                                             return fs::orientation(in, code);
                                           }
                                           return fs::orientation(in, axcodes);
                                         });
}

ComponentSpec spacingd_spec() {
  return dict_spec(
      "Spacingd", "Resamples to pixdim millimetres, updating the affine exactly as MONAI does.",
      {keys_spec(), req("pixdim", A::kFloats, "Output voxel size in mm."),
       opt("diagonal", A::kBool, "false", "Force a diagonal output affine."),
       opt("mode", A::kStrings, "\"bilinear\"", "Interpolation per key: bilinear or nearest."),
       opt("padding_mode", A::kStrings, "\"border\"",
           "Padding per key: zeros, border, reflection."),
       opt("align_corners", A::kBools, "false", "Grid alignment per key."),
       dtype_spec("\"float64\""),
       opt("scale_extent", A::kBool, "false", "Scale by extent rather than by voxel centres."),
       opt("recompute_affine", A::kBool, "false", "Recompute the affine after resampling."),
       opt("min_pixdim", A::kFloats, "null", "Skip resampling above this size."),
       opt("max_pixdim", A::kFloats, "null", "Skip resampling below this size."),
       opt("ensure_same_shape", A::kBool, "true", "Give every key the same output shape."),
       meta_keys_spec(), meta_postfix_spec(), allow_missing_spec()});
}

std::unique_ptr<Transform> make_spacingd(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  fs::SpacingOptions base;
  const auto pix = a.at("pixdim");
  base.pixdim =
      pix.is_array() ? pix.as<std::vector<double>>() : std::vector<double>{pix.as<double>()};
  if (base.pixdim.empty()) throw pix.error("needs at least one value");
  base.diagonal = a.require<bool>("diagonal");
  base.recompute_affine = a.require<bool>("recompute_affine");
  auto pix_limits = [&](const char* name) {
    std::vector<double> v;
    if (a.given(name)) {
      const auto node = a.at(name);
      if (node.is_array()) {
        for (std::size_t i = 0; i < node.size(); ++i)
          v.push_back(node.at(i).is_null() ? NAN : node.at(i).as<double>());
      } else {
        v.assign(3, node.as<double>());
      }
    }
    return v;
  };
  base.min_pixdim = pix_limits("min_pixdim");
  base.max_pixdim = pix_limits("max_pixdim");
  const auto modes = strings_per_key(a, "mode", n, "bilinear");
  const auto pads = strings_per_key(a, "padding_mode", n, "border");
  const auto aligns = per_key<bool>(a, "align_corners", n, false);
  const auto scale_extent = per_key<bool>(a, "scale_extent", n, false);
  std::vector<std::string> dtypes = strings_per_key(a, "dtype", n, "float64");
  std::vector<fs::SpacingOptions> opts;
  for (std::size_t i = 0; i < n; ++i) {
    auto o = base;
    o.mode = modes[i];
    o.padding_mode = pads[i];
    o.align_corners = aligns[i];
    o.scale_extent = scale_extent[i];
    if (o.mode != "bilinear" && o.mode != "nearest" && o.mode != "bicubic") {
      throw ConfigError(a.source(), a.pointer() + "/mode",
                        "must be bilinear, nearest or bicubic, got '" + o.mode + "'");
    }
    if (o.padding_mode != "border" && o.padding_mode != "zeros" && o.padding_mode != "reflection") {
      throw ConfigError(a.source(), a.pointer() + "/padding_mode",
                        "must be border, zeros or reflection, got '" + o.padding_mode + "'");
    }
    try {
      o.dtype = parse_dtype(dtypes[i]);
    } catch (const Error& e) {
      throw ConfigError(a.source(), a.pointer() + "/dtype", e.what());
    }
    opts.push_back(o);
  }
  return std::make_unique<Spacing>(std::move(k), std::move(opts),
                                   a.require<bool>("ensure_same_shape"));
}

ComponentSpec resized_spec() {
  return dict_spec("Resized", "Resizes to spatial_size.",
                   {keys_spec(), req("spatial_size", A::kInts, "Output size; -1 keeps an axis."),
                    opt("size_mode", A::kString, "\"all\"", "all or longest."),
                    opt("mode", A::kStrings, "\"area\"", "Interpolation per key."),
                    opt("align_corners", A::kBools, "null", "Grid alignment per key."),
                    opt("anti_aliasing", A::kBools, "false", "Smooth before downsampling."),
                    opt("anti_aliasing_sigma", A::kAny, "null", "Smoothing sigma."), dtype_spec(),
                    allow_missing_spec()});
}

std::unique_ptr<Transform> make_resized(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  const auto size_node = a.at("spatial_size");
  const std::string size_mode = a.require<std::string>("size_mode");
  if (size_mode != "all" && size_mode != "longest") {
    throw a.at("size_mode").error("must be \"all\" or \"longest\"");
  }
  if (a.require<bool>("anti_aliasing")) {
    throw a.at("anti_aliasing").error("anti_aliasing is not supported yet");
  }
  const std::vector<int64_t> size = size_node.is_array()
                                        ? size_node.as<std::vector<int64_t>>()
                                        : std::vector<int64_t>{size_node.as<int64_t>()};
  if (size_mode == "longest" && size.size() != 1) {
    throw size_node.error("size_mode \"longest\" needs a single int");
  }
  const auto modes = strings_per_key(a, "mode", n, "area");
  std::vector<std::optional<bool>> aligns(n);
  if (a.given("align_corners")) {
    const auto v = per_key<bool>(a, "align_corners", n, false);
    for (std::size_t i = 0; i < n; ++i) aligns[i] = v[i];
  }
  return std::make_unique<SpatialPerKey>(
      "Resized", std::move(k),
      [=](const fs::Spatial& in, std::size_t i) {
        std::vector<int64_t> S;
        for (int64_t d = 1; d < in.data.dim(); ++d) S.push_back(in.data.size(d));
        std::vector<int64_t> out(S.size());
        if (size_mode == "longest") {
          const double scale = static_cast<double>(size[0]) /
                               static_cast<double>(*std::max_element(S.begin(), S.end()));
          for (std::size_t d = 0; d < S.size(); ++d)
            out[d] = static_cast<int64_t>(std::nearbyint(S[d] * scale));
        } else {
          out = croppad::fall_back(size, S);
        }
        if (out == S) return fs::Spatial{in.data.to(at::kFloat), in.affine};
        return fs::Spatial{fs::interpolate(in.data, out, modes[i], aligns[i]),
                           fs::resize_affine(in.affine, S, out)};
      },
      modes);
}

std::unique_ptr<Transform> flip_factory(const ConfigNode& a, bool random) {
  std::vector<int64_t> axes;
  bool all = true;
  if (a.given("spatial_axis")) {
    axes = axes_arg(a, "spatial_axis", 0);
    all = false;
  }
  auto fn = [axes, all](const fs::Spatial& in, std::size_t) {
    return fs::flip(in, normalize_axes(axes, in.data.dim() - 1, all));
  };
  if (!random) return std::make_unique<SpatialPerKey>("Flipd", KeySelection::from_config(a), fn);
  return std::make_unique<RandomSpatial>(
      "RandFlipd", KeySelection::from_config(a), prob_arg(a),
      [](Rng&, const ImageItem&) { return std::vector<double>{}; },
      [fn](const fs::Spatial& in, const std::vector<double>&, std::size_t i) { return fn(in, i); });
}

ComponentSpec rand_flipd_spec() {
  return dict_spec(
      "RandFlipd", "Flips along spatial_axis with probability prob.",
      {keys_spec(), prob_spec(), opt("spatial_axis", A::kInts, "null", "Axes; null flips all."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_flipd(const ConfigNode& a, const BuildContext&) {
  return flip_factory(a, true);
}

auto rot90_axes(const ConfigNode& a) {
  auto ax =
      a.get_optional<std::vector<int64_t>>("spatial_axes").value_or(std::vector<int64_t>{0, 1});
  if (ax.size() != 2) throw a.at("spatial_axes").error("needs two axes");
  return ax;
}

ComponentSpec rand_rotate90d_spec() {
  return dict_spec(
      "RandRotate90d", "Rotates by k*90 degrees in spatial_axes.",
      {keys_spec(), prob_spec(),
       opt("max_k", A::kInt, "3", "Rotate by k * 90 degrees with k drawn from 1 to max_k."),
       opt("spatial_axes", A::kInts, "[0, 1]",
           "The two spatial axes that span the rotation plane."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_rotate90d(const ConfigNode& a, const BuildContext&) {
  const auto ax = rot90_axes(a);
  const int max_k = a.require<int>("max_k");
  return std::make_unique<RandomSpatial>(
      "RandRotate90d", KeySelection::from_config(a), prob_arg(a),
      [max_k](Rng& rng, const ImageItem&) {
        return std::vector<double>{static_cast<double>(rng.randint(0, max_k) + 1)};
      },
      [ax](const fs::Spatial& in, const std::vector<double>& p, std::size_t) {
        const auto axes = normalize_axes(ax, in.data.dim() - 1, false);
        return fs::rotate90(in, static_cast<int>(p[0]), static_cast<int>(axes[0]),
                            static_cast<int>(axes[1]));
      });
}

ComponentSpec rand_rotated_spec() {
  return dict_spec(
      "RandRotated", "Rotates by random angles.",
      {keys_spec(),
       opt("range_x", A::kFloats, "0.0",
           "Range of the first angle in radians (the only one in 2D); x means [-x, x]."),
       opt("range_y", A::kFloats, "0.0",
           "Range of the second angle in radians (3D); x means [-x, x]."),
       opt("range_z", A::kFloats, "0.0",
           "Range of the third angle in radians (3D); x means [-x, x]."),
       prob_spec(),
       opt("keep_size", A::kBool, "true",
           "Keep the input shape (true) or enlarge the output to hold the rotated image."),
       opt("mode", A::kStrings, "\"bilinear\"", "Interpolation per key: bilinear or nearest."),
       opt("padding_mode", A::kStrings, "\"border\"",
           "Padding per key: zeros, border or reflection."),
       opt("align_corners", A::kBools, "false", "Grid alignment per key."), dtype_spec(),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_rotated(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  std::vector<std::pair<double, double>> ranges = {range_arg(a, "range_x"), range_arg(a, "range_y"),
                                                   range_arg(a, "range_z")};
  const bool keep = a.require<bool>("keep_size");
  const auto modes = strings_per_key(a, "mode", n, "bilinear");
  const auto pads = strings_per_key(a, "padding_mode", n, "border");
  const auto aligns = per_key<bool>(a, "align_corners", n, false);
  return std::make_unique<RandomSpatial>(
      "RandRotated", std::move(k), prob_arg(a),
      [ranges](Rng& rng, const ImageItem& img) {
        return angle_ranges_draw(rng, ranges, img.spatial_dims());
      },
      [=](const fs::Spatial& in, const std::vector<double>& angles, std::size_t i) {
        return fs::rotate(in, angles, keep, modes[i], pads[i], aligns[i]);
      },
      [](const at::Tensor& x) { return x.to(at::kFloat); }, modes, pads);
}

ComponentSpec rand_zoomd_spec() {
  return dict_spec(
      "RandZoomd", "Zooms by a random factor.",
      {keys_spec(), prob_spec(),
       opt("min_zoom", A::kFloats, "0.9", "Smallest zoom factor, one value or one per axis."),
       opt("max_zoom", A::kFloats, "1.1", "Largest zoom factor, one value or one per axis."),
       opt("mode", A::kStrings, "\"area\"",
           "Interpolation per key (area, nearest, bilinear, ...)."),
       opt("padding_mode", A::kStrings, "\"edge\"",
           "Padding per key when a zoomed-out image is padded back to size."),
       opt("align_corners", A::kBools, "null",
           "Grid alignment per key; null uses the mode's default."),
       dtype_spec(),
       opt("keep_size", A::kBool, "true", "Crop or pad the result back to the input shape."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_zoomd(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  auto list = [&](const char* name, double def) {
    if (a.at(name).is_null()) return std::vector<double>{def};
    const auto v = a.at(name);
    return v.is_array() ? v.as<std::vector<double>>() : std::vector<double>{v.as<double>()};
  };
  const auto mn = list("min_zoom", 0.9), mx = list("max_zoom", 1.1);
  if (mn.size() != mx.size()) throw a.error("min_zoom and max_zoom need the same length");
  const auto modes = strings_per_key(a, "mode", n, "area");
  const auto pads = strings_per_key(a, "padding_mode", n, "edge");
  std::vector<std::optional<bool>> aligns(n);
  if (a.given("align_corners")) {
    const auto v = per_key<bool>(a, "align_corners", n, false);
    for (std::size_t i = 0; i < n; ++i) aligns[i] = v[i];
  }
  const bool keep = a.require<bool>("keep_size");
  return std::make_unique<RandomSpatial>(
      "RandZoomd", std::move(k), prob_arg(a),
      [mn, mx](Rng& rng, const ImageItem& img) {
        std::vector<double> z;
        for (std::size_t i = 0; i < mn.size(); ++i) z.push_back(rng.uniform(mn[i], mx[i]));
        const int rr = img.spatial_dims();
        if (z.size() == 1)
          z.assign(rr, z[0]);
        else if (rr == 3 && z.size() == 2)
          z = {z[0], z[0], z[1]};
        return z;
      },
      [=](const fs::Spatial& in, const std::vector<double>& z, std::size_t i) {
        BARTON_CHECK(static_cast<int64_t>(z.size()) == in.data.dim() - 1,
                     "RandZoomd: {} zoom factors for a {}D image", z.size(), in.data.dim() - 1);
        return fs::zoom(in, z, modes[i], pads[i], aligns[i], keep);
      },
      [](const at::Tensor& x) { return x.to(at::kFloat); }, modes, pads);
}

ComponentSpec rand_affined_spec() {
  return dict_spec(
      "RandAffined", "Random affine transform.",
      {keys_spec(),
       opt("spatial_size", A::kInts, "null", "Output spatial size; null or -1 keeps the input's."),
       prob_spec(),
       opt("rotate_range", A::kAny, "null",
           "Rotation angle ranges in radians, one per angle; x means [-x, x]."),
       opt("shear_range", A::kAny, "null",
           "Shear coefficient ranges, one per coefficient; x means [-x, x]."),
       opt("translate_range", A::kAny, "null",
           "Translation ranges in voxels, one per axis; x means [-x, x]."),
       opt("scale_range", A::kAny, "null", "Scale ranges per axis, added to 1; x means [-x, x]."),
       opt("mode", A::kStrings, "\"bilinear\"", "Interpolation per key: bilinear or nearest."),
       opt("padding_mode", A::kStrings, "\"reflection\"",
           "Padding per key: zeros, border or reflection."),
       opt("cache_grid", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("device", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand_affined(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  const auto ranges = AffineRanges::from_config(a);
  const auto modes = strings_per_key(a, "mode", n, "bilinear");
  const auto pads = strings_per_key(a, "padding_mode", n, "reflection");
  return std::make_unique<RandomSpatial>(
      "RandAffined", std::move(k), prob_arg(a),
      [=](Rng& rng, const ImageItem& img) {
        const Affine m = ranges.draw(rng, img.spatial_dims());
        return std::vector<double>(m.begin(), m.end());
      },
      [=](const fs::Spatial& in, const std::vector<double>& p, std::size_t i) {
        Affine m;
        std::copy(p.begin(), p.end(), m.begin());
        return fs::affine_grid_resample(in, m, ranges.out_size(in.data), modes[i], pads[i], false,
                                        at::kDouble);
      },
      [](const at::Tensor& x) { return x.to(at::kFloat); }, modes, pads);
}

ComponentSpec rand3_d_elasticd_spec() {
  return dict_spec(
      "Rand3DElasticd", "Random elastic deformation.",
      {keys_spec(),
       req("sigma_range", A::kFloats,
           "Range of the Gaussian sigma that smooths the random displacement field."),
       req("magnitude_range", A::kFloats, "Range of the displacement magnitude (in voxels)."),
       opt("spatial_size", A::kInts, "null", "Output spatial size; null or -1 keeps the input's."),
       prob_spec(),
       opt("rotate_range", A::kAny, "null",
           "Rotation angle ranges in radians, one per angle; x means [-x, x]."),
       opt("shear_range", A::kAny, "null",
           "Shear coefficient ranges, one per coefficient; x means [-x, x]."),
       opt("translate_range", A::kAny, "null",
           "Translation ranges in voxels, one per axis; x means [-x, x]."),
       opt("scale_range", A::kAny, "null", "Scale ranges per axis, added to 1; x means [-x, x]."),
       opt("mode", A::kStrings, "\"bilinear\"", "Interpolation per key: bilinear or nearest."),
       opt("padding_mode", A::kStrings, "\"reflection\"",
           "Padding per key: zeros, border or reflection."),
       opt("device", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_rand3d_elasticd(const ConfigNode& a, const BuildContext&) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  const auto sigma = range_arg(a, "sigma_range", false),
             mag = range_arg(a, "magnitude_range", false);
  const auto ranges = AffineRanges::from_config(a);
  const auto modes = strings_per_key(a, "mode", n, "bilinear");
  const auto pads = strings_per_key(a, "padding_mode", n, "reflection");
  // params: [seed, sigma, magnitude, 16 affine values]
  return std::make_unique<RandomSpatial>(
      "Rand3DElasticd", std::move(k), prob_arg(a),
      [=](Rng& rng, const ImageItem& img) {
        BARTON_CHECK(img.spatial_dims() == 3, "Rand3DElasticd needs 3D images");
        std::vector<double> p = {static_cast<double>(rng.next() >> 11),
                                 rng.uniform(sigma.first, sigma.second),
                                 rng.uniform(mag.first, mag.second)};
        const Affine m = ranges.draw(rng, 3);
        p.insert(p.end(), m.begin(), m.end());
        return p;
      },
      [=](const fs::Spatial& in, const std::vector<double>& p, std::size_t i) {
        const auto out = ranges.out_size(in.data);
        Rng field_rng(static_cast<uint64_t>(p[0]));
        auto gen = field_rng.torch_generator();
        auto offset = at::empty({3, out[0], out[1], out[2]}, at::kFloat).uniform_(-1.0, 1.0, gen);
        // GaussianFilter(3, sigma, truncated=3): separable, zero padding, not renormalised.
        const double sg = p[1];
        const auto tail = static_cast<int64_t>(std::max(sg * 3.0, 0.5) + 0.5);
        std::vector<double> kern;
        for (int64_t x = -tail; x <= tail; ++x) {
          kern.push_back(0.5 * (std::erf((x + 0.5) / (sg * std::sqrt(2.0))) -
                                std::erf((x - 0.5) / (sg * std::sqrt(2.0)))));
        }
        auto kt = at::tensor(kern, at::kDouble).to(at::kFloat).view({1, 1, -1});
        for (int64_t d = 0; d < 3; ++d) {
          auto moved = offset.movedim(d + 1, -1).contiguous();
          const auto shape = moved.sizes().vec();
          auto rows = at::constant_pad_nd(moved.reshape({-1, 1, shape.back()}), {tail, tail}, 0.0);
          offset = at::conv1d(rows, kt).reshape(shape).movedim(-1, d + 1);
        }
        offset = offset * p[2];
        std::vector<at::Tensor> axes;
        for (int d = 0; d < 3; ++d) {
          const double half = (static_cast<double>(out[d]) - 1.0) / 2.0;
          axes.push_back(at::linspace(-half, half, out[d], at::kDouble));
        }
        auto mesh = at::meshgrid(axes, "ij");
        Affine m;
        std::copy(p.begin() + 3, p.begin() + 19, m.begin());
        std::vector<at::Tensor> g;
        for (int d = 0; d < 3; ++d) g.push_back(mesh[d] + offset[d].to(at::kDouble));
        std::vector<at::Tensor> ga;
        for (int d = 0; d < 3; ++d) {
          auto v = at::full(g[0].sizes(), m[d * 4 + 3], at::kDouble);
          for (int c = 0; c < 3; ++c) v = v + m[d * 4 + c] * g[c];
          ga.push_back(v);
        }
        auto data = fs::grid_resample(in.data, at::stack(ga), modes[i], pads[i], at::kDouble)
                        .to(at::kFloat);
        return fs::Spatial{data, in.affine};  // MONAI does not update the affine here
      },
      [](const at::Tensor& x) { return x.to(at::kFloat); }, modes, pads);
}

ComponentSpec invertd_spec() {
  return dict_spec(
      "Invertd",
      "Undoes the spatial transforms of `transform` so predictions land on the original grid.",
      {keys_spec(),
       req("transform", A::kReference, "The pre-transforms to invert (\"@pre_transforms\")."),
       opt("orig_keys", A::kStrings, "null",
           "Keys whose recorded transforms are undone, one per key; null: the keys themselves."),
       meta_keys_spec(),
       opt("orig_meta_keys", A::kStrings, "null", "Accepted for MONAI compatibility; ignored."),
       meta_postfix_spec(),
       opt("nearest_interp", A::kBools, "true",
           "Invert with nearest-neighbour interpolation (one value, or one per key)."),
       opt("to_tensor", A::kBools, "true",
           "Accepted for MONAI compatibility; ignored (outputs are always tensors)."),
       opt("device", A::kStrings, "null", "Accepted for MONAI compatibility; ignored."),
       opt("post_func", A::kAny, "null", "Accepted for MONAI compatibility; ignored."),
       allow_missing_spec()});
}

std::unique_ptr<Transform> make_invertd(const ConfigNode& a, const BuildContext& ctx) {
  auto k = KeySelection::from_config(a);
  const auto n = k.keys.size();
  std::vector<std::string> orig;
  if (a.given("orig_keys")) {
    const auto v = a.at("orig_keys");
    orig = v.is_array() ? v.as<std::vector<std::string>>()
                        : std::vector<std::string>(n, v.as<std::string>());
    if (orig.size() != n) throw v.error("needs one original key per key");
  } else {
    orig = k.keys;
  }
  if (ctx.lookup) {
    const auto ref = a.at("transform").as<std::string>();
    (void)ref;  // the trace recorded on the original key is what Invertd undoes
  }
  return std::make_unique<Invert>(std::move(k), std::move(orig),
                                  per_key<bool>(a, "nearest_interp", n, true));
}

}  // namespace

void register_spatial(TransformRegistry& r) {
  r.add(orientationd_spec(), make_orientationd);
  r.add(spacingd_spec(), make_spacingd);
  r.add(resized_spec(), make_resized);
  r.add(rand_flipd_spec(), make_rand_flipd);
  r.add(rand_rotate90d_spec(), make_rand_rotate90d);
  r.add(rand_rotated_spec(), make_rand_rotated);
  r.add(rand_zoomd_spec(), make_rand_zoomd);
  r.add(rand_affined_spec(), make_rand_affined);
  r.add(rand3_d_elasticd_spec(), make_rand3d_elasticd);
  r.add(invertd_spec(), make_invertd);
}

}  // namespace barton::transforms
