// Interactive-model dictionary transforms: MONAI's apps.deepgrow click simulation (training) and
// click guidance (inference), checked against tests/golden/monai_twin/deepgrow.py.
//
// Where MONAI keeps crop boxes and shapes in `<key>_meta_dict`, Barton keeps them as top-level
// sample values under the same names (foreground_start_coord, ...), as CropForegroundd does.
// Guidance is a JSON string value, as MONAI's own training transforms write it.
#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/errors.h"
#include "transforms/common.h"
#include "transforms/croppad/functional.h"
#include "transforms/deepgrow/functional.h"
#include "transforms/register.h"
#include "transforms/spatial/functional.h"

namespace barton::transforms {

namespace {

namespace dg = deepgrow;
using nlohmann::json;

/// An integer list value (a list, a JSON string of one, or one number).
std::vector<int64_t> int_list(const Sample& s, const std::string& key, const std::string& who) {
  if (!s.has(key)) throw Error(who + ": the sample has no '" + key + "'");
  const auto& v = s.get(key);
  if (const auto* l = std::get_if<std::vector<int64_t>>(&v)) return *l;
  if (const auto* d = std::get_if<double>(&v)) return {static_cast<int64_t>(*d)};
  if (const auto* str = std::get_if<std::string>(&v)) {
    try {
      const auto j = json::parse(*str);
      if (j.is_number()) return {j.get<int64_t>()};
      std::vector<int64_t> out;
      for (const auto& e : j) out.push_back(static_cast<int64_t>(e.get<double>()));
      return out;
    } catch (const json::exception&) {
    }
  }
  throw Error(who + ": '" + key + "' is not a list of integers");
}

using dg::number_value;

/// A list of clicks from a JSON string value ([[i, j, k], ...]); absent is no clicks.
std::vector<std::vector<double>> clicks_value(const Sample& s,
                                              const std::string& key,
                                              const std::string& who) {
  std::vector<std::vector<double>> out;
  if (!s.has(key)) return out;
  json j;
  const auto& v = s.get(key);
  if (const auto* str = std::get_if<std::string>(&v)) {
    try {
      j = json::parse(*str);
    } catch (const json::exception& e) {
      throw Error(who + ": '" + key + "' is not JSON: " + e.what());
    }
  } else if (const auto* l = std::get_if<std::vector<int64_t>>(&v)) {
    j = json::array({*l});
  } else {
    throw Error(who + ": '" + key + "' must be a list of points");
  }
  if (!j.is_array()) throw Error(who + ": '" + key + "' must be a list of points");
  for (const auto& p : j) {
    if (!p.is_array()) throw Error(who + ": '" + key + "' must be a list of points");
    std::vector<double> pt;
    for (const auto& c : p) {
      if (!c.is_number()) throw Error(who + ": '" + key + "' holds a coordinate that is no number");
      pt.push_back(c.get<double>());
    }
    out.push_back(pt);
  }
  return out;
}

json number(double v) {
  if (std::floor(v) == v && std::abs(v) < 9e15) return static_cast<int64_t>(v);
  return v;
}

/// np.asarray(x, dtype=int): every number truncated toward zero.
json as_int(const json& j) {
  if (j.is_array()) {
    json out = json::array();
    for (const auto& e : j) out.push_back(as_int(e));
    return out;
  }
  if (j.is_number()) return static_cast<int64_t>(j.get<double>());
  return j;
}

std::vector<int64_t> full_shape(const ImageItem& img) {
  return img.data.sizes().vec();
}

struct MetaKeys {
  std::string start = "foreground_start_coord", end = "foreground_end_coord";
  std::string original = "foreground_original_shape", cropped = "foreground_cropped_shape";
  static MetaKeys from(const ConfigNode& a) {
    return {a.require<std::string>("start_coord_key"), a.require<std::string>("end_coord_key"),
            a.require<std::string>("original_shape_key"),
            a.require<std::string>("cropped_shape_key")};
  }
};

// ------------------------------------------------------------------------------------------------
// Training: click simulation.

class FindAllValidSlices final : public Transform {
 public:
  FindAllValidSlices(std::string label, std::string sids)
      : label_(std::move(label)), sids_(std::move(sids)) {}
  std::string name() const override { return "FindAllValidSlicesd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& l = s.image(label_).data;
    if (l.size(0) != 1)
      throw Error(fmt::format("FindAllValidSlicesd: only one-channel labels, got {}", l.sizes()));
    if (l.dim() != 4)
      throw Error(
          fmt::format("FindAllValidSlicesd: the label must be [C, D, H, W], got {}", l.sizes()));
    const auto sums = l[0].to(at::kDouble).flatten(1).sum(1);
    std::vector<int64_t> sids;
    for (int64_t i = 0; i < sums.size(0); ++i)
      if (sums[i].item<double>() != 0) sids.push_back(i);
    if (!sids.empty()) s.set(sids_, sids);
  }

 private:
  std::string label_, sids_;
};

class AddInitialSeedPoint final : public Transform {
 public:
  AddInitialSeedPoint(
      std::string label, std::string guidance, std::string sids, std::string sid, int64_t regions)
      : label_(std::move(label)),
        guidance_(std::move(guidance)),
        sids_(std::move(sids)),
        sid_(std::move(sid)),
        regions_(regions) {}
  std::string name() const override { return "AddInitialSeedPointd"; }
  bool is_random() const override { return true; }
  void apply(Sample& s, Rng& rng) const override {
    const auto sid = pick_slice(s, rng);
    const auto& label = s.image(label_).data;
    const int64_t dimensions = label.dim() > 3 ? 3 : 2;
    const json fallback(std::vector<int64_t>(static_cast<std::size_t>(dimensions + 1), -1));
    int64_t dims = dimensions;
    at::Tensor work = label;
    if (sid && dimensions == 3) {
      dims = 2;
      if (*sid < 0 || *sid >= label.size(1))
        throw Error(fmt::format("AddInitialSeedPointd: slice {} is outside the label", *sid));
      work = label[0][*sid].unsqueeze(0);
    }
    work = (work > 0.5).to(at::kFloat);
    at::Tensor blobs = work;
    int64_t n = work.any().item<bool>() ? 1 : 0;
    if (dims == 2) std::tie(blobs, n) = dg::label_components(work);
    if (n == 0) {
      throw Error("AddInitialSeedPointd: not a valid label: '" + label_ + "' has no foreground" +
                  (sid ? fmt::format(" in slice {}", *sid) : std::string()));
    }
    json pos = json::array();
    const int64_t regions = dims == 3 ? 1 : regions_;
    for (int64_t k = 0; k < regions; ++k) {
      at::Tensor region = work;
      if (dims == 2) {
        region = (blobs == k + 1).to(at::kFloat);
        if (k >= n) {
          pos.push_back(fallback);
          continue;
        }
      }
      const auto dist = dg::chessboard_distance(region);
      const auto flat = dg::draw_flat_index(dg::click_probability(region, dist), rng);
      const auto g = dg::click_point(flat, region.sizes().vec(), dist);
      if (dimensions == 2 || dims == 3) {
        pos.push_back(g);
      } else {
        pos.push_back(json::array({g[0], *sid, g[g.size() - 2], g[g.size() - 1]}));
      }
    }
    json neg = json::array();
    for (std::size_t i = 0; i < pos.size(); ++i) neg.push_back(fallback);
    dg::write_guidance(s, guidance_, json::array({pos, neg}));
  }

 private:
  std::optional<int64_t> pick_slice(const Sample& s, Rng& rng) const {
    if (!s.has(sids_)) return std::nullopt;
    const auto sids = int_list(s, sids_, name());
    if (const auto cur = number_value(s, sid_)) {
      const auto c = static_cast<int64_t>(*cur);
      if (std::find(sids.begin(), sids.end(), c) != sids.end()) return c;
    }
    if (sids.empty()) throw Error("AddInitialSeedPointd: '" + sids_ + "' is empty");
    return sids[static_cast<std::size_t>(rng.randint(0, static_cast<int64_t>(sids.size())))];
  }

  std::string label_, guidance_, sids_, sid_;
  int64_t regions_;
};

class AddGuidanceSignal final : public Transform {
 public:
  AddGuidanceSignal(std::string image, std::string guidance, double sigma, int64_t nch)
      : image_(std::move(image)), guidance_(std::move(guidance)), sigma_(sigma), nch_(nch) {}
  std::string name() const override { return "AddGuidanceSignald"; }
  void apply(Sample& s, Rng&) const override {
    auto& img = s.image(image_);
    const auto g = dg::read_guidance(s, guidance_, name());
    const int64_t rank = img.data.dim() > 3 ? 3 : 2;
    const auto shape = img.data.sizes().vec();
    const std::vector<int64_t> spatial(shape.end() - rank, shape.end());
    const auto signal = dg::guidance_signal(spatial, g, sigma_);
    const auto t = img.data.scalar_type();
    // numpy's result_type(image, float32): float64 for float64 and 32/64-bit integer images.
    const auto out =
        (t == at::kDouble || t == at::kInt || t == at::kLong) ? at::kDouble : at::kFloat;
    img.data = at::cat({img.data.slice(0, 0, nch_).to(out), signal.to(out)}, 0);
  }

 private:
  std::string image_, guidance_;
  double sigma_;
  int64_t nch_;
};

class AddExtremePointsChannel final : public MapTransform {
 public:
  struct Options {
    std::string label, points;
    double background = 0, pert = 0, sigma = 3, rescale_min = -1, rescale_max = 1;
  };
  AddExtremePointsChannel(KeySelection k, Options o)
      : MapTransform(std::move(k)), o_(std::move(o)) {}
  std::string name() const override { return "AddExtremePointsChanneld"; }
  bool is_random() const override { return o_.points.empty(); }
  void apply(Sample& s, Rng& rng) const override {
    std::vector<std::vector<int64_t>> points;
    std::vector<int64_t> spatial;
    if (!o_.points.empty()) {
      // Barton: the points a user clicked, as guidance [[points...], ...] on the current grid.
      const auto g = dg::read_guidance(s, o_.points, name());
      if (!g.is_array() || g.empty() || !g[0].is_array())
        throw Error(name() + ": '" + o_.points + "' holds no point list");
      for (const auto& p : g[0]) {
        std::vector<int64_t> v;
        for (const auto& c : p) v.push_back(static_cast<int64_t>(c.get<double>()));
        points.push_back(std::move(v));
      }
    } else {
      const auto& label = s.image(o_.label).data;
      if (label.size(0) != 1)
        throw Error(fmt::format("{}: only single-channel labels ('{}' has {} channels)", name(),
                                o_.label, label.size(0)));
      spatial = label.sizes().slice(1).vec();
      points = dg::extreme_points(label[0], o_.background, o_.pert, rng);
    }
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      auto shape = spatial.empty() ? img.spatial_shape() : spatial;
      if (!o_.points.empty())
        for (auto& p : points)
          for (std::size_t d = 0; d < p.size() && d < shape.size(); ++d)
            p[d] = std::clamp<int64_t>(p[d], 0, shape[d] - 1);
      const auto ch =
          dg::extreme_points_image(shape, points, o_.sigma, o_.rescale_min, o_.rescale_max);
      img.data = at::cat({img.data, ch.to(img.data.scalar_type())}, 0);
    });
    s.set("extreme_points", json(points).dump());
  }

 private:
  Options o_;
};

class FindDiscrepancyRegions final : public Transform {
 public:
  FindDiscrepancyRegions(std::string label, std::string pred, std::string out)
      : label_(std::move(label)), pred_(std::move(pred)), out_(std::move(out)) {}
  std::string name() const override { return "FindDiscrepancyRegionsd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& label = s.image(label_);
    const auto& pred = s.image(pred_);
    if (label.data.sizes() != pred.data.sizes()) {
      throw Error(
          fmt::format("FindDiscrepancyRegionsd: label '{}' {} and prediction '{}' {} differ",
                      label_, label.data.sizes(), pred_, pred.data.sizes()));
    }
    ImageItem d;
    d.data = dg::discrepancy(label.data, pred.data);
    d.affine = label.affine;
    s.set(out_, std::move(d));
  }

 private:
  std::string label_, pred_, out_;
};

class AddRandomGuidance final : public Transform {
 public:
  AddRandomGuidance(std::string guidance, std::string discrepancy, std::string probability)
      : guidance_(std::move(guidance)),
        discrepancy_(std::move(discrepancy)),
        probability_(std::move(probability)) {}
  std::string name() const override { return "AddRandomGuidanced"; }
  bool is_random() const override { return true; }
  void apply(Sample& s, Rng& rng) const override {
    auto g = dg::read_guidance(s, guidance_, name());
    const auto& disc = s.image(discrepancy_).data;
    const auto prob = number_value(s, probability_);
    if (!prob)
      throw Error("AddRandomGuidanced: the sample has no probability '" + probability_ + "'");
    if (disc.size(0) % 2)
      throw Error("AddRandomGuidanced: the discrepancy needs [positive, negative] channels");
    const bool will = rng.uniform() < *prob;
    const auto half = disc.size(0) / 2;
    const auto pos_d = disc.slice(0, 0, half), neg_d = disc.slice(0, half);
    if (will) {
      const double sp = pos_d.to(at::kDouble).sum().item<double>();
      const double sn = neg_d.to(at::kDouble).sum().item<double>();
      const bool correct_pos = sp >= sn;
      if ((correct_pos && sp > 0) || (!correct_pos && sn > 0)) {
        const auto& region = correct_pos ? pos_d : neg_d;
        const auto dist = dg::chessboard_distance(region);
        const auto flat = dg::draw_flat_index(dg::click_probability(region, dist), rng);
        const json point = dg::click_point(flat, region.sizes().vec(), dist);
        const json none(std::vector<int64_t>(point.size(), -1));
        g[0].push_back(correct_pos ? point : none);
        g[1].push_back(correct_pos ? none : point);
      }
    }
    dg::write_guidance(s, guidance_, as_int(g));
  }

 private:
  std::string guidance_, discrepancy_, probability_;
};

// ------------------------------------------------------------------------------------------------
// Cropping around the foreground or the clicks.

void record_shapes(Sample& s,
                   const MetaKeys& m,
                   const std::vector<int64_t>& before,
                   const std::vector<int64_t>& after) {
  s.set(m.original, before);
  s.set(m.cropped, after);
}

class SpatialCropForeground final : public MapTransform {
 public:
  struct Options {
    std::string source;
    std::vector<int64_t> size, margin, channels;
    double threshold = 0;
    bool allow_smaller = true;
    MetaKeys meta;
  };
  SpatialCropForeground(KeySelection k, Options o) : MapTransform(std::move(k)), o_(std::move(o)) {}
  std::string name() const override { return "SpatialCropForegroundd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& src = s.image(o_.source).data;
    at::Tensor sel = src;
    if (!o_.channels.empty()) sel = src.index_select(0, at::tensor(o_.channels, at::kLong));
    const auto mask = (sel > o_.threshold).any(0);
    const auto r = static_cast<std::size_t>(mask.dim());
    const auto rep = [&](const std::vector<int64_t>& v, int64_t def, const char* what) {
      if (v.empty()) return std::vector<int64_t>(r, def);
      if (v.size() == 1) return std::vector<int64_t>(r, v[0]);
      if (v.size() != r)
        throw Error(fmt::format("SpatialCropForegroundd: {} has {} entries for rank {}", what,
                                v.size(), r));
      return v;
    };
    auto [start, end] = croppad::foreground_box(mask, rep(o_.margin, 0, "margin"), o_.allow_smaller,
                                                std::vector<int64_t>(r, 1));
    const auto size = rep(o_.size, 0, "spatial_size");
    std::vector<int64_t> center(r), cur(r);
    bool smaller = true;
    for (std::size_t d = 0; d < r; ++d) {
      center[d] = (start[d] + end[d]) / 2;
      cur[d] = end[d] - start[d];
      smaller = smaller && cur[d] < size[d];
    }
    std::vector<int64_t> cs, ce;
    if (smaller) {
      std::tie(start, end) = dg::crop_from_center(center, size);
      std::tie(cs, ce) = std::tie(start, end);
    } else {
      std::tie(cs, ce) = dg::crop_from_box(start, end);
    }
    bool first = true;
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      const auto before = full_shape(img);
      dg::slice_item(img, cs, ce, name());
      if (first) record_shapes(s, o_.meta, before, full_shape(img));
      first = false;
    });
    if (!first) {
      s.set(o_.meta.start, start);
      s.set(o_.meta.end, end);
    }
  }

 private:
  Options o_;
};

class SpatialCropGuidance final : public MapTransform {
 public:
  SpatialCropGuidance(KeySelection k,
                      std::string guidance,
                      std::vector<int64_t> size,
                      std::vector<int64_t> margin,
                      MetaKeys meta,
                      bool depth_first)
      : MapTransform(std::move(k)),
        guidance_(std::move(guidance)),
        size_(std::move(size)),
        margin_(std::move(margin)),
        meta_(std::move(meta)),
        depth_first_(depth_first) {}
  std::string name() const override { return "SpatialCropGuidanced"; }
  void apply(Sample& s, Rng&) const override {
    std::vector<std::string> present;
    for_each_key(s, [&](const std::string& key, std::size_t) { present.push_back(key); });
    if (present.empty()) return;
    const auto g = dg::read_guidance(s, guidance_, name());
    const auto shape = s.image(present[0]).spatial_shape();
    const auto nd = shape.size();
    std::vector<int64_t> margin =
        margin_.size() == 1 ? std::vector<int64_t>(nd, margin_[0]) : margin_;
    if (margin.size() != nd)
      throw Error(fmt::format("SpatialCropGuidanced: margin has {} entries for rank {}",
                              margin.size(), nd));
    std::vector<std::vector<double>> points;
    for (int grp = 0; grp < 2; ++grp) {
      for (const auto& p : g[static_cast<std::size_t>(grp)]) {
        if (!p.is_array() || p.size() != nd)
          throw Error(fmt::format("SpatialCropGuidanced: each click needs {} coordinates", nd));
        points.push_back(p.get<std::vector<double>>());
      }
    }
    if (points.empty()) throw Error("SpatialCropGuidanced: the guidance holds no click");
    std::vector<int64_t> bs(nd), be(nd), center(nd), box(nd);
    for (std::size_t d = 0; d < nd; ++d) {
      double lo = points[0][d], hi = points[0][d];
      for (const auto& p : points) lo = std::min(lo, p[d]), hi = std::max(hi, p[d]);
      bs[d] = static_cast<int64_t>(std::max(lo - static_cast<double>(margin[d]), 0.0));
      be[d] = static_cast<int64_t>(
          std::min(static_cast<double>(shape[d]), hi + static_cast<double>(margin[d]) + 1));
      center[d] = static_cast<int64_t>((static_cast<double>(bs[d]) + be[d]) / 2.0);
      box[d] = be[d] - bs[d];
    }
    std::vector<int64_t> size(size_.end() - static_cast<std::ptrdiff_t>(std::min(size_.size(), nd)),
                              size_.end());
    if (size.size() < nd) {  // MONAI fills the missing leading sizes from the image's axes 1..
      std::vector<int64_t> lead(shape.begin() + 1,
                                shape.begin() + 1 + static_cast<std::ptrdiff_t>(nd - size.size()));
      size.insert(size.begin(), lead.begin(), lead.end());
    }
    bool smaller = true;
    for (std::size_t d = 0; d < nd; ++d) smaller = smaller && box[d] < size[d];
    std::vector<int64_t> st, en;
    if (smaller) {
      if (nd == 3 && depth_first_) center[0] = size[0] / 2;
      std::tie(st, en) = dg::crop_from_center(center, size);
    } else {
      std::tie(st, en) = dg::crop_from_box(bs, be);
    }
    for (std::size_t i = 0; i < present.size(); ++i) {
      auto& img = s.image(present[i]);
      if (img.spatial_shape() != shape)
        throw Error("SpatialCropGuidanced: every key must have the same spatial shape ('" +
                    present[i] + "' differs from '" + present[0] + "')");
      const auto before = full_shape(img);
      dg::slice_item(img, st, en, name());
      if (i == 0) record_shapes(s, meta_, before, full_shape(img));
    }
    s.set(meta_.start, st);
    s.set(meta_.end, en);
    json out = json::array({json::array(), json::array()});
    for (int grp = 0; grp < 2; ++grp) {
      for (const auto& p : g[static_cast<std::size_t>(grp)]) {
        json q = json::array();
        for (std::size_t d = 0; d < nd; ++d) q.push_back(number(p[d].get<double>() - st[d]));
        out[static_cast<std::size_t>(grp)].push_back(q);
      }
    }
    dg::write_guidance(s, guidance_, out);
  }

 private:
  std::string guidance_;
  std::vector<int64_t> size_, margin_;
  MetaKeys meta_;
  bool depth_first_;
};

// ------------------------------------------------------------------------------------------------
// Inference: clicks to guidance and back.

class AddGuidanceFromPoints final : public Transform {
 public:
  struct Options {
    std::string ref, guidance, foreground, background, slice_key;
    int64_t axis = 0, dims = 2;
    bool depth_first = true;
  };
  explicit AddGuidanceFromPoints(Options o) : o_(std::move(o)) {}
  std::string name() const override { return "AddGuidanceFromPointsd"; }
  void apply(Sample& s, Rng&) const override {
    const auto& ref = s.image(o_.ref);
    std::vector<int64_t> original;
    if (s.has("original_shape")) {
      original = int_list(s, "original_shape", name());
    } else if (s.has("spatial_shape")) {
      original = int_list(s, "spatial_shape", name());
    } else {
      original = ref.original_shape;
    }
    const auto current = ref.spatial_shape();
    if (original.size() != current.size())
      throw Error(
          fmt::format("AddGuidanceFromPointsd: original shape {} and image shape {} differ "
                      "in rank",
                      original, current));
    if (o_.depth_first) std::rotate(original.rbegin(), original.rbegin() + 1, original.rend());
    std::vector<double> factor(current.size());
    for (std::size_t d = 0; d < current.size(); ++d)
      factor[d] = static_cast<double>(current[d]) / static_cast<double>(original[d]);
    std::vector<std::vector<int64_t>> pos = clicks(s, o_.foreground),
                                      neg = clicks(s, o_.background);
    // 2-D: MONAI drops coordinate 0 (its only slice axis); Barton drops the slice axis.
    const auto scaled = [&](const std::vector<int64_t>& c, std::optional<std::size_t> drop) {
      json q = json::array();
      for (std::size_t d = 0; d < c.size() && d < factor.size(); ++d)
        if (d != drop) q.push_back(static_cast<int64_t>(static_cast<double>(c[d]) * factor[d]));
      return q;
    };
    json gp = json::array(), gn = json::array();
    if (o_.dims == 2) {
      const auto slice = pick_slice(s, pos, neg);
      const auto ax = static_cast<std::size_t>(o_.axis);
      for (const auto& c : pos)
        if (c.at(ax) == slice) gp.push_back(scaled(c, ax));
      for (const auto& c : neg)
        if (c.at(ax) == slice) gn.push_back(scaled(c, ax));
      dg::write_guidance(s, o_.guidance, json::array({gp, gn, slice}));
      return;
    }
    for (const auto& c : pos) gp.push_back(scaled(c, std::nullopt));
    for (const auto& c : neg) gn.push_back(scaled(c, std::nullopt));
    dg::write_guidance(s, o_.guidance, json::array({gp, gn}));
  }

 private:
  std::vector<std::vector<int64_t>> clicks(const Sample& s, const std::string& key) const {
    std::vector<std::vector<int64_t>> out;
    for (const auto& p : clicks_value(s, key, name())) {
      std::vector<int64_t> c;
      for (double v : p) c.push_back(static_cast<int64_t>(v));
      if (o_.depth_first && !c.empty()) std::rotate(c.rbegin(), c.rbegin() + 1, c.rend());
      out.push_back(c);
    }
    return out;
  }
  int64_t pick_slice(const Sample& s,
                     const std::vector<std::vector<int64_t>>& pos,
                     const std::vector<std::vector<int64_t>>& neg) const {
    std::vector<int64_t> slices;
    for (const auto* set : {&pos, &neg})
      for (const auto& c : *set) slices.push_back(c.at(static_cast<std::size_t>(o_.axis)));
    if (slices.empty()) throw Error("AddGuidanceFromPointsd: no click to take a slice from");
    std::sort(slices.begin(), slices.end());
    if (const auto want = number_value(s, o_.slice_key)) {
      const auto w = static_cast<int64_t>(*want);
      if (std::find(slices.begin(), slices.end(), w) == slices.end())
        throw Error(fmt::format("AddGuidanceFromPointsd: no click lies on slice {}", w));
      return w;
    }
    return slices.front();
  }

  Options o_;
};

/// MONAI's Fetch2DSliced: the slice guidance[2] of each key along `axis`. MONAI's arrays here have
/// no channel axis, so its `axis` counts spatial axes, as Barton's does on [C, I, J, K]. The 2-D
/// slice keeps its place in space: its affine's columns are the other two axes, the sliced axis's
/// column stays third and the translation moves to the slice.
class Fetch2DSliced final : public MapTransform {
 public:
  Fetch2DSliced(KeySelection k, std::string guidance, int64_t axis)
      : MapTransform(std::move(k)), guidance_(std::move(guidance)), axis_(axis) {}
  std::string name() const override { return "Fetch2DSliced"; }
  void apply(Sample& s, Rng&) const override {
    const auto g = dg::read_guidance(s, guidance_, name());
    if (g.size() < 3 || !g[2].is_number())
      throw Error(
          "Fetch2DSliced: the guidance holds no slice index (AddGuidanceFromPointsd with "
          "spatial_dims 2 writes [foreground, background, slice])");
    const auto idx = static_cast<int64_t>(g[2].get<double>());
    for_each_key(s, [&](const std::string& key, std::size_t) {
      auto& img = s.image(key);
      if (img.spatial_dims() != 3)
        throw Error(fmt::format("Fetch2DSliced: '{}' is not a 3-D image ({} spatial axes)", key,
                                img.spatial_dims()));
      const auto n = img.data.size(axis_ + 1);
      if (idx < 0 || idx >= n)
        throw Error(fmt::format("Fetch2DSliced: slice {} lies outside '{}' ({} slices on axis {})",
                                idx, key, n, axis_));
      img.data = img.data.select(axis_ + 1, idx).contiguous();
      img.affine = dg::slice_affine(img.affine, static_cast<int>(axis_), idx);
    });
    s.set("slice_idx", static_cast<double>(idx));
  }

 private:
  std::string guidance_;
  int64_t axis_;
};

class ResizeGuidance final : public Transform {
 public:
  ResizeGuidance(std::string guidance, std::string ref, std::string cropped)
      : guidance_(std::move(guidance)), ref_(std::move(ref)), cropped_(std::move(cropped)) {}
  std::string name() const override { return "ResizeGuidanced"; }
  void apply(Sample& s, Rng&) const override {
    const auto g = dg::read_guidance(s, guidance_, name());
    const auto cur = s.image(ref_).spatial_shape();
    const auto cropped = int_list(s, cropped_, name());
    if (cropped.size() != cur.size() + 1)
      throw Error(fmt::format("ResizeGuidanced: '{}' {} is not the full shape of a rank-{} image",
                              cropped_, cropped, cur.size()));
    json out = json::array({json::array(), json::array()});
    for (int grp = 0; grp < 2; ++grp) {
      for (const auto& p : g[static_cast<std::size_t>(grp)]) {
        json q = json::array();
        for (std::size_t d = 0; d < p.size() && d < cur.size(); ++d) {
          const double f = static_cast<double>(cur[d]) / static_cast<double>(cropped[d + 1]);
          q.push_back(static_cast<int64_t>(p[d].get<double>() * f));
        }
        out[static_cast<std::size_t>(grp)].push_back(q);
      }
    }
    dg::write_guidance(s, guidance_, out);
  }

 private:
  std::string guidance_, ref_, cropped_;
};

class RestoreLabel final : public MapTransform {
 public:
  struct Options {
    std::string ref;
    bool slice_only = false;
    std::vector<std::string> modes;
    std::vector<std::optional<bool>> align;
    MetaKeys meta;
  };
  RestoreLabel(KeySelection k, Options o) : MapTransform(std::move(k)), o_(std::move(o)) {}
  std::string name() const override { return "RestoreLabeld"; }
  void apply(Sample& s, Rng&) const override {
    const auto cropped = int_list(s, o_.meta.cropped, name());
    const auto original = int_list(s, o_.meta.original, name());
    const auto start = int_list(s, o_.meta.start, name());
    const auto end = int_list(s, o_.meta.end, name());
    std::vector<int64_t> spatial;
    if (s.has("spatial_shape")) {
      spatial = int_list(s, "spatial_shape", name());
    } else {
      spatial = s.image(o_.ref).original_shape;
    }
    // MONAI's deepgrow pipelines hold the volume depth first: (H, W, D) as loaded -> (D, H, W).
    if (!spatial.empty()) std::rotate(spatial.rbegin(), spatial.rbegin() + 1, spatial.rend());
    const auto slice = number_value(s, "slice_idx");
    const bool ref_is_image = s.has(o_.ref) && s.is_image(o_.ref);
    const Affine affine = ref_is_image ? s.image(o_.ref).original_affine : identity_affine();
    for_each_key(s, [&](const std::string& key, std::size_t i) {
      auto& img = s.image(key);
      img.data = restore(img.data, cropped, original, start, end, spatial, slice, i);
      if (ref_is_image) img.affine = affine;
    });
  }

 private:
  at::Tensor restore(at::Tensor image,
                     const std::vector<int64_t>& cropped,
                     const std::vector<int64_t>& original,
                     const std::vector<int64_t>& start,
                     const std::vector<int64_t>& end,
                     const std::vector<int64_t>& spatial,
                     std::optional<double> slice,
                     std::size_t i) const {
    if (image.sizes().vec() != cropped) {
      image = spatial::interpolate(image, std::vector<int64_t>(cropped.begin() + 1, cropped.end()),
                                   o_.modes[i], o_.align[i]);
    }
    auto result = at::zeros(original, at::kFloat);
    const auto sd = std::min<int64_t>(static_cast<int64_t>(start.size()), image.dim() - 1);
    auto view = result;
    for (int64_t d = 0; d < sd; ++d) {
      const auto n = view.size(d + 1);
      const auto a = std::clamp<int64_t>(start[static_cast<std::size_t>(d)], 0, n);
      const auto b = std::clamp<int64_t>(end[static_cast<std::size_t>(d)], a, n);
      view = view.slice(d + 1, a, b);
    }
    if (view.sizes() != image.sizes())
      throw Error(fmt::format("RestoreLabeld: the crop box {}..{} of {} does not hold the {} label",
                              start, end, original, image.sizes()));
    view.copy_(image);
    const auto cur = result.sizes().vec();
    const auto rank = cur.size() - 1;
    if (spatial.size() >= rank) {
      const std::vector<int64_t> size(spatial.end() - static_cast<std::ptrdiff_t>(rank),
                                      spatial.end());
      if (std::vector<int64_t>(cur.begin() + 1, cur.end()) != size)
        result = spatial::interpolate(result, size, o_.modes[i], o_.align[i]);
    }
    if (!slice || o_.slice_only) return result.dim() <= 3 ? result : result.slice(0, 0, 1);
    auto final = at::zeros(spatial, at::kDouble);
    final[static_cast<int64_t>(*slice)].copy_(result.to(at::kDouble).reshape(final[0].sizes()));
    return final.unsqueeze(0);
  }

  Options o_;
};

// ------------------------------------------------------------------------------------------------
// Specs and factories.

ArgSpec meta_key_spec(const char* name, const char* def, const char* doc) {
  return opt(name, A::kString, fmt::format("\"{}\"", def), doc);
}

std::vector<ArgSpec> crop_meta_specs() {
  return {meta_keys_spec(),
          meta_postfix_spec(),
          meta_key_spec("start_coord_key", "foreground_start_coord", "Where the box start goes."),
          meta_key_spec("end_coord_key", "foreground_end_coord", "Where the box end goes."),
          meta_key_spec("original_shape_key", "foreground_original_shape",
                        "Where the shape before the crop goes."),
          meta_key_spec("cropped_shape_key", "foreground_cropped_shape",
                        "Where the shape after the crop goes.")};
}

ArgSpec batched_spec() {
  return opt("batched", A::kBool, "false",
             "Clara 4.x writes true inside ClickInteraction; Barton runs the click transforms on "
             "each item of the batch, which is what the batched form computes item by item.");
}

void register_training(TransformRegistry& r) {
  r.add(dict_spec("FindAllValidSlicesd",
                  "Lists the slices (axis 1) of a [1, D, H, W] label that "
                  "hold foreground, for 2-D DeepGrow.",
                  {meta_key_spec("label", "label", "Label key."),
                   meta_key_spec("sids", "sids", "Where the slice list goes.")}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<FindAllValidSlices>(a.require<std::string>("label"),
                                                      a.require<std::string>("sids"));
        });
  r.add(dict_spec("AddInitialSeedPointd",
                  "Draws the first positive click in each connected region of the label "
                  "(probability rising with the distance to the region's edge).",
                  {meta_key_spec("label", "label", "Label key."),
                   meta_key_spec("guidance", "guidance", "Where the guidance goes."),
                   meta_key_spec("sids", "sids", "Slice list (2-D)."),
                   meta_key_spec("sid", "sid", "Chosen slice (2-D)."),
                   opt("connected_regions", A::kInt, "5", "Regions clicked in 2-D.")}),
        [](const ConfigNode& a, const BuildContext&) {
          const auto n = a.require<int64_t>("connected_regions");
          if (n < 1) throw a.at("connected_regions").error("must be at least 1");
          return std::make_unique<AddInitialSeedPoint>(
              a.require<std::string>("label"), a.require<std::string>("guidance"),
              a.require<std::string>("sids"), a.require<std::string>("sid"), n);
        });
  r.add(
      dict_spec("AddGuidanceSignald",
                "Appends one Gaussian channel per click group (positive, negative) to the image.",
                {meta_key_spec("image", "image", "Image key."),
                 meta_key_spec("guidance", "guidance", "Guidance key."),
                 opt("sigma", A::kFloat, "2", "Gaussian sigma in voxels."),
                 opt("number_intensity_ch", A::kInt, "1", "Image channels kept."), batched_spec()}),
      [](const ConfigNode& a, const BuildContext&) {
        return std::make_unique<AddGuidanceSignal>(
            a.require<std::string>("image"), a.require<std::string>("guidance"),
            a.require<double>("sigma"), a.require<int64_t>("number_intensity_ch"));
      });
  r.add(dict_spec("FindDiscrepancyRegionsd",
                  "Where the prediction misses the label (positive) or overshoots it (negative).",
                  {meta_key_spec("label", "label", "Label key."),
                   meta_key_spec("pred", "pred", "Prediction key."),
                   meta_key_spec("discrepancy", "discrepancy", "Where the result goes."),
                   batched_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<FindDiscrepancyRegions>(a.require<std::string>("label"),
                                                          a.require<std::string>("pred"),
                                                          a.require<std::string>("discrepancy"));
        });
  r.add(dict_spec("AddRandomGuidanced",
                  "With the sample's probability, adds one click in the larger discrepancy.",
                  {meta_key_spec("guidance", "guidance", "Guidance key."),
                   meta_key_spec("discrepancy", "discrepancy", "Discrepancy key."),
                   meta_key_spec("probability", "probability", "Click probability key."),
                   batched_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<AddRandomGuidance>(a.require<std::string>("guidance"),
                                                     a.require<std::string>("discrepancy"),
                                                     a.require<std::string>("probability"));
        });
}

std::vector<int64_t> int_arg(const ConfigNode& a, const char* name) {
  const auto v = a.at(name);
  return v.is_array() ? v.as<std::vector<int64_t>>() : std::vector<int64_t>{v.as<int64_t>()};
}

void register_crops(TransformRegistry& r) {
  auto fg = std::vector<ArgSpec>{
      keys_spec(),
      req("source_key", A::kString, "Key whose foreground defines the box."),
      req("spatial_size", A::kInts, "Crop size when the box is smaller in every axis."),
      opt("select_fn", A::kAny, "null", "Foreground test: null (value > 0) or a threshold."),
      opt("channel_indices", A::kInts, "null", "Channels to consider."),
      opt("margin", A::kInts, "0", "Margin in voxels per axis."),
      opt("allow_smaller", A::kBool, "true", "Clip the margin at the image border."),
      allow_missing_spec()};
  for (auto& m : crop_meta_specs()) fg.push_back(m);
  r.add(dict_spec("SpatialCropForegroundd",
                  "Crops spatial_size around the foreground's box, or the box itself when it is "
                  "larger (no padding), recording the box and shapes.",
                  fg),
        [](const ConfigNode& a, const BuildContext&) {
          SpatialCropForeground::Options o;
          o.source = a.require<std::string>("source_key");
          o.size = int_arg(a, "spatial_size");
          o.margin = int_arg(a, "margin");
          if (a.given("select_fn") && !a.at("select_fn").is_null()) {
            if (!a.at("select_fn").is_number())
              throw a.at("select_fn").error("select_fn must be a number (threshold) or null");
            o.threshold = a.at("select_fn").as<double>();
          }
          if (a.given("channel_indices") && !a.at("channel_indices").is_null())
            o.channels = int_arg(a, "channel_indices");
          o.allow_smaller = a.require<bool>("allow_smaller");
          o.meta = MetaKeys::from(a);
          return std::make_unique<SpatialCropForeground>(KeySelection::from_config(a),
                                                         std::move(o));
        });
  auto gd = std::vector<ArgSpec>{keys_spec(),
                                 req("guidance", A::kString, "Guidance key."),
                                 req("spatial_size", A::kInts, "Crop size."),
                                 opt("margin", A::kInts, "20", "Margin around the clicks."),
                                 allow_missing_spec(),
                                 opt("depth_first", A::kBool, "true",
                                     "Barton: MONAI's arrays are depth first, and a 3-D crop "
                                     "smaller than spatial_size starts at depth 0 on axis 0; "
                                     "false (Barton's [C, I, J, K] images) centres every axis on "
                                     "the clicks.")};
  for (auto& m : crop_meta_specs()) gd.push_back(m);
  r.add(dict_spec("SpatialCropGuidanced",
                  "Crops around the clicks (spatial_size when their box is smaller) and moves the "
                  "clicks into the crop.",
                  gd),
        [](const ConfigNode& a, const BuildContext&) {
          const auto margin = int_arg(a, "margin");
          for (auto m : margin)
            if (m < 0) throw a.at("margin").error("margin value should not be negative");
          return std::make_unique<SpatialCropGuidance>(
              KeySelection::from_config(a), a.require<std::string>("guidance"),
              int_arg(a, "spatial_size"), margin, MetaKeys::from(a),
              a.require<bool>("depth_first"));
        });
}

void register_inference(TransformRegistry& r) {
  r.add(dict_spec("AddExtremePointsChanneld",
                  "Appends a channel of Gaussian blobs at the label's extreme points (DEXTR3D), "
                  "rescaled to [rescale_min, rescale_max].",
                  {keys_spec(), opt("label_key", A::kString, "null", "Label the points come from."),
                   opt("background", A::kFloat, "0", "Background value of the label."),
                   opt("pert", A::kFloat, "0", "Random shift of each coordinate, 0 to 2 pert."),
                   opt("sigma", A::kFloat, "3", "Gaussian sigma in voxels."),
                   opt("rescale_min", A::kFloat, "-1", "Value far from every point."),
                   opt("rescale_max", A::kFloat, "1", "Value at the points' peak."),
                   opt("points_key", A::kString, "null",
                       "Barton: take the points from this guidance value ([[points...]], as "
                       "AddGuidanceFromPointsd writes it) instead of a label, for serving."),
                   allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          AddExtremePointsChannel::Options o;
          const auto str = [&](const char* k) {
            return a.given(k) && !a.at(k).is_null() ? a.at(k).as<std::string>() : std::string();
          };
          o.label = str("label_key");
          o.points = str("points_key");
          if (o.label.empty() == o.points.empty())
            throw a.error("give label_key (training) or points_key (serving), one of them");
          o.background = a.require<double>("background");
          o.pert = a.require<double>("pert");
          o.sigma = a.require<double>("sigma");
          if (!(o.sigma > 0)) throw a.at("sigma").error("sigma must be positive");
          if (o.pert < 0) throw a.at("pert").error("pert must not be negative");
          o.rescale_min = a.require<double>("rescale_min");
          o.rescale_max = a.require<double>("rescale_max");
          return std::make_unique<AddExtremePointsChannel>(KeySelection::from_config(a),
                                                           std::move(o));
        });
  r.add(
      dict_spec("AddGuidanceFromPointsd",
                "Turns foreground/background clicks (voxels of the image as loaded) into guidance "
                "on the current image.",
                {req("ref_image", A::kString, "Image whose shape the clicks are scaled to."),
                 meta_key_spec("guidance", "guidance", "Where the guidance goes."),
                 meta_key_spec("foreground", "foreground", "Foreground clicks key."),
                 meta_key_spec("background", "background", "Background clicks key."),
                 opt("axis", A::kInt, "0", "Slice axis (2-D)."),
                 opt("depth_first", A::kBool, "true", "Roll clicks (H, W, D) -> (D, H, W)."),
                 opt("spatial_dims", A::kInt, "2", "2 or 3."),
                 opt("dimensions", A::kInt, "null", "Older name of spatial_dims."),
                 meta_key_spec("slice_key", "slice", "Chosen slice key (2-D)."), meta_keys_spec(),
                 meta_postfix_spec()}),
      [](const ConfigNode& a, const BuildContext&) {
        AddGuidanceFromPoints::Options o;
        o.ref = a.require<std::string>("ref_image");
        o.guidance = a.require<std::string>("guidance");
        o.foreground = a.require<std::string>("foreground");
        o.background = a.require<std::string>("background");
        o.slice_key = a.require<std::string>("slice_key");
        o.axis = a.require<int64_t>("axis");
        o.depth_first = a.require<bool>("depth_first");
        o.dims = a.given("dimensions") && !a.at("dimensions").is_null()
                     ? a.require<int64_t>("dimensions")
                     : a.require<int64_t>("spatial_dims");
        if (o.dims != 2 && o.dims != 3) throw a.error("spatial_dims must be 2 or 3");
        if (o.depth_first && o.axis != 0)
          throw a.at("axis").error("depth_first means the depth axis is 0");
        return std::make_unique<AddGuidanceFromPoints>(std::move(o));
      });
  r.add(dict_spec("Fetch2DSliced",
                  "Takes the clicked slice (guidance[2]) of a 3-D image along axis (2-D DeepGrow).",
                  {keys_spec(), meta_key_spec("guidance", "guidance", "Guidance key."),
                   opt("axis", A::kInt, "0", "Spatial axis the slice is taken along."),
                   meta_keys_spec(), meta_postfix_spec(), allow_missing_spec()}),
        [](const ConfigNode& a, const BuildContext&) {
          const auto axis = a.require<int64_t>("axis");
          if (axis < 0 || axis > 2) throw a.at("axis").error("axis must be 0, 1 or 2");
          return std::make_unique<Fetch2DSliced>(KeySelection::from_config(a),
                                                 a.require<std::string>("guidance"), axis);
        });
  r.add(dict_spec(
            "ResizeGuidanced", "Scales guidance from the crop to the resized image.",
            {req("guidance", A::kString, "Guidance key."),
             req("ref_image", A::kString, "Resized image."), meta_keys_spec(), meta_postfix_spec(),
             meta_key_spec("cropped_shape_key", "foreground_cropped_shape",
                           "The crop's full shape.")}),
        [](const ConfigNode& a, const BuildContext&) {
          return std::make_unique<ResizeGuidance>(a.require<std::string>("guidance"),
                                                  a.require<std::string>("ref_image"),
                                                  a.require<std::string>("cropped_shape_key"));
        });
  auto rl = std::vector<ArgSpec>{keys_spec(),
                                 req("ref_image", A::kString, "Image as loaded."),
                                 opt("slice_only", A::kBool, "false", "2-D: return the slice."),
                                 opt("mode", A::kStrings, "\"nearest\"", "Resize mode per key."),
                                 opt("align_corners", A::kAny, "null", "Per key, or null."),
                                 allow_missing_spec()};
  for (auto& m : crop_meta_specs()) rl.push_back(m);
  r.add(dict_spec("RestoreLabeld",
                  "Pastes a label predicted on the crop back into the image as loaded.", rl),
        [](const ConfigNode& a, const BuildContext&) {
          auto k = KeySelection::from_config(a);
          RestoreLabel::Options o;
          o.ref = a.require<std::string>("ref_image");
          o.slice_only = a.require<bool>("slice_only");
          o.modes = per_key<std::string>(a, "mode", k.keys.size(), "nearest");
          o.align.assign(k.keys.size(), std::nullopt);
          const auto ac = a.at("align_corners");
          if (ac.is_bool()) o.align.assign(k.keys.size(), ac.as<bool>());
          if (ac.is_array()) {
            if (ac.size() != k.keys.size()) throw ac.error("one entry per key");
            for (std::size_t i = 0; i < ac.size(); ++i)
              if (!ac.at(i).is_null()) o.align[i] = ac.at(i).as<bool>();
          }
          o.meta = MetaKeys::from(a);
          return std::make_unique<RestoreLabel>(std::move(k), std::move(o));
        });
}

}  // namespace

void register_deepgrow(TransformRegistry& r) {
  register_training(r);
  register_crops(r);
  register_inference(r);
}

}  // namespace barton::transforms
