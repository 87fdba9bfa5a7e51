#include "transforms/deepgrow/functional.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <set>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "core/errors.h"
#include "transforms/croppad/functional.h"
#include "transforms/intensity/functional.h"
#include "transforms/trace.h"

namespace barton::transforms::deepgrow {

namespace {

/// An N-d grid padded by one voxel on every side, so the 3^N - 1 neighbours of an inside voxel are
/// fixed offsets with no bounds checks. `inner[f]` is the padded index of flat voxel f.
struct PaddedGrid {
  std::vector<int64_t> inner;
  std::vector<int64_t> offsets;
  int64_t size = 1;

  explicit PaddedGrid(const std::vector<int64_t>& shape) {
    const auto nd = shape.size();
    std::vector<int64_t> pshape(nd), stride(nd);
    for (std::size_t d = 0; d < nd; ++d) pshape[d] = shape[d] + 2;
    for (std::size_t d = nd; d-- > 0;) {
      stride[d] = size;
      size *= pshape[d];
    }
    int64_t n = 1;
    for (auto s : shape) n *= s;
    inner.resize(static_cast<std::size_t>(n));
    std::vector<int64_t> c(nd, 0);
    for (int64_t f = 0; f < n; ++f) {
      int64_t p = 0;
      for (std::size_t d = 0; d < nd; ++d) p += (c[d] + 1) * stride[d];
      inner[static_cast<std::size_t>(f)] = p;
      for (std::size_t d = nd; d-- > 0;) {
        if (++c[d] < shape[d]) break;
        c[d] = 0;
      }
    }
    int64_t combos = 1;
    for (std::size_t d = 0; d < nd; ++d) combos *= 3;
    for (int64_t k = 0; k < combos; ++k) {
      int64_t off = 0, rest = k;
      for (std::size_t d = 0; d < nd; ++d) {
        off += (rest % 3 - 1) * stride[d];
        rest /= 3;
      }
      if (off != 0) offsets.push_back(off);
    }
  }
};

std::vector<uint8_t> inside_of(const at::Tensor& t) {
  const auto m = (t.to(at::kDouble) != 0).to(at::kByte).contiguous();
  const auto* p = m.data_ptr<uint8_t>();
  return std::vector<uint8_t>(p, p + m.numel());
}

}  // namespace

at::Tensor chessboard_distance(const at::Tensor& region) {
  const auto shape = region.sizes().vec();
  const auto inside = inside_of(region);
  const PaddedGrid g(shape);
  constexpr int32_t kOutside = -2, kUnset = -1;
  std::vector<int32_t> dist(static_cast<std::size_t>(g.size), kOutside);
  std::vector<int64_t> queue;
  queue.reserve(inside.size());
  for (std::size_t f = 0; f < inside.size(); ++f) {
    const auto p = static_cast<std::size_t>(g.inner[f]);
    if (inside[f]) {
      dist[p] = kUnset;
    } else {
      dist[p] = 0;
      queue.push_back(g.inner[f]);
    }
  }
  // Breadth-first over king moves: the layer of a voxel is its chessboard distance to the nearest
  // zero voxel.
  for (std::size_t head = 0; head < queue.size(); ++head) {
    const auto p = queue[head];
    const int32_t next = dist[static_cast<std::size_t>(p)] + 1;
    for (const auto off : g.offsets) {
      auto& q = dist[static_cast<std::size_t>(p + off)];
      if (q == kUnset) {
        q = next;
        queue.push_back(p + off);
      }
    }
  }
  auto out = at::empty(shape, at::kInt);
  auto* o = out.data_ptr<int32_t>();
  for (std::size_t f = 0; f < inside.size(); ++f) o[f] = dist[static_cast<std::size_t>(g.inner[f])];
  return out;
}

std::pair<at::Tensor, int64_t> label_components(const at::Tensor& mask) {
  const auto shape = mask.sizes().vec();
  const auto inside = inside_of(mask);
  const PaddedGrid g(shape);
  std::vector<int32_t> lab(static_cast<std::size_t>(g.size), 0);
  for (std::size_t f = 0; f < inside.size(); ++f)
    if (inside[f]) lab[static_cast<std::size_t>(g.inner[f])] = -1;
  int32_t n = 0;
  std::vector<int64_t> stack;
  for (std::size_t f = 0; f < inside.size(); ++f) {
    const auto p0 = g.inner[f];
    if (lab[static_cast<std::size_t>(p0)] != -1) continue;
    ++n;
    lab[static_cast<std::size_t>(p0)] = n;
    stack.assign(1, p0);
    while (!stack.empty()) {
      const auto p = stack.back();
      stack.pop_back();
      for (const auto off : g.offsets) {
        auto& q = lab[static_cast<std::size_t>(p + off)];
        if (q == -1) {
          q = n;
          stack.push_back(p + off);
        }
      }
    }
  }
  auto out = at::empty(shape, at::kInt);
  auto* o = out.data_ptr<int32_t>();
  for (std::size_t f = 0; f < inside.size(); ++f) o[f] = lab[static_cast<std::size_t>(g.inner[f])];
  return {out, n};
}

at::Tensor click_probability(const at::Tensor& region, const at::Tensor& distance) {
  const auto d = distance.to(at::kDouble).contiguous();
  const auto in = (region.to(at::kDouble) > 0).contiguous();
  if (!in.any().item<bool>()) throw Error("click sampling: the region is empty");
  if ((d.masked_select(in) <= 0).any().item<bool>()) {
    // The region fills its whole array: scipy's distance is -1 everywhere, MONAI's weights
    // exp(-1) - 1 are all the same negative number, and normalised they draw uniformly (the
    // click then carries the distance -1, which the guidance transforms skip).
    const auto w = in.to(at::kDouble);
    return w / w.sum();
  }
  // exp(d) - 1, scaled by exp(-dmax) so large regions stay finite; the ratios are unchanged.
  const double dmax = d.masked_select(in).max().item<double>();
  auto w = (at::exp(d - dmax) - std::exp(-dmax)) * in.to(at::kDouble);
  return w / w.sum();
}

int64_t draw_flat_index(const at::Tensor& probability, Rng& rng) {
  const auto p = probability.to(at::kDouble).contiguous();
  const auto* v = p.data_ptr<double>();
  const auto n = p.numel();
  const double u = rng.uniform();
  double acc = 0;
  int64_t last = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (v[i] <= 0) continue;
    last = i;
    acc += v[i];
    if (u < acc) return i;
  }
  if (last < 0) throw Error("click sampling: no voxel has a positive probability");
  return last;  // rounding left u above the running sum: the last candidate
}

std::vector<int64_t> click_point(int64_t flat,
                                 const std::vector<int64_t>& shape,
                                 const at::Tensor& distance) {
  auto g = croppad::unravel(flat, shape);
  g[0] = distance.reshape(-1)[flat].item<int64_t>();
  return g;
}

nlohmann::json read_guidance(const Sample& s, const std::string& key, const std::string& who) {
  if (!s.has(key)) throw Error(who + ": the sample has no guidance '" + key + "'");
  const auto& v = s.get(key);
  if (const auto* str = std::get_if<std::string>(&v)) {
    nlohmann::json g;
    try {
      g = nlohmann::json::parse(*str);
    } catch (const nlohmann::json::exception& e) {
      throw Error(who + ": guidance '" + key + "' is not JSON: " + e.what());
    }
    if (!g.is_array() || g.size() < 2 || !g[0].is_array() || !g[1].is_array())
      throw Error(who + ": guidance '" + key + "' must be [[positive points], [negative points]]");
    return g;
  }
  throw Error(who + ": guidance '" + key + "' must be a JSON string");
}

std::optional<double> number_value(const Sample& s, const std::string& key) {
  if (!s.has(key)) return std::nullopt;
  const auto& v = s.get(key);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* l = std::get_if<std::vector<int64_t>>(&v); l && !l->empty())
    return static_cast<double>((*l)[0]);
  if (const auto* str = std::get_if<std::string>(&v)) {
    try {
      auto j = nlohmann::json::parse(*str);
      while (j.is_array() && !j.empty()) j = j[0];
      if (j.is_number()) return j.get<double>();
    } catch (const nlohmann::json::exception&) {
    }
  }
  return std::nullopt;
}

void write_guidance(Sample& s, const std::string& key, const nlohmann::json& g) {
  s.set(key, g.dump());
}

at::Tensor guidance_signal(const std::vector<int64_t>& spatial,
                           const nlohmann::json& guidance,
                           double sigma) {
  const auto rank = static_cast<int64_t>(spatial.size());
  BARTON_CHECK(rank == 2 || rank == 3, "guidance_signal: rank {} (2 or 3)", rank);
  std::vector<int64_t> shape{static_cast<int64_t>(guidance.size())};
  shape.insert(shape.end(), spatial.begin(), spatial.end());
  auto signal = at::zeros(shape, at::kFloat);
  // Smoothing a set of unit voxels with a separable zero-padded kernel is the sum, over the
  // voxels, of the kernel's outer product placed at each (clipped at the border): only the
  // (2 tail + 1)^rank boxes around the clicks are touched, not the whole volume three times.
  const auto kt = intensity::gaussian_kernel_erf(sigma).contiguous();
  const auto* k = kt.data_ptr<float>();
  const int64_t tail = (kt.numel() - 1) / 2;
  // Rank 2 as rank 3 with one slice.
  const int64_t n0 = rank == 3 ? spatial[0] : 1, n1 = spatial[rank - 2], n2 = spatial[rank - 1];
  for (int64_t i = 0; i < shape[0]; ++i) {
    const auto& group = guidance[static_cast<std::size_t>(i)];
    if (!group.is_array()) continue;  // 2-D guidance carries the slice index as a third entry
    std::set<std::array<int64_t, 3>> voxels;
    for (const auto& point : group) {
      if (!point.is_array() || static_cast<int64_t>(point.size()) < rank) continue;
      bool negative = false;
      for (const auto& c : point) negative = negative || c.get<double>() < 0;
      if (negative) continue;
      const auto np = static_cast<int64_t>(point.size());
      std::array<int64_t, 3> v{0, 0, 0};
      for (int64_t j = 0; j < rank; ++j) {
        const auto c =
            static_cast<int64_t>(point[static_cast<std::size_t>(np - rank + j)].get<double>());
        v[static_cast<std::size_t>(3 - rank + j)] =
            std::clamp<int64_t>(c, 0, spatial[static_cast<std::size_t>(j)] - 1);
      }
      voxels.insert(v);
    }
    if (voxels.empty()) continue;
    auto ch = signal[i];
    auto* out = ch.data_ptr<float>();
    const int64_t t0 = rank == 3 ? tail : 0;
    for (const auto& v : voxels) {
      for (int64_t a = std::max<int64_t>(v[0] - t0, 0); a <= std::min(v[0] + t0, n0 - 1); ++a) {
        const float ka = rank == 3 ? k[a - v[0] + tail] : 1.0f;
        for (int64_t b = std::max<int64_t>(v[1] - tail, 0); b <= std::min(v[1] + tail, n1 - 1);
             ++b) {
          const float kab = ka * k[b - v[1] + tail];
          float* row = out + (a * n1 + b) * n2;
          for (int64_t c = std::max<int64_t>(v[2] - tail, 0); c <= std::min(v[2] + tail, n2 - 1);
               ++c)
            row[c] += kab * k[c - v[2] + tail];
        }
      }
    }
    const auto lo = ch.min(), hi = ch.max();
    ch.sub_(lo).div_(hi - lo);
  }
  return signal;
}

std::vector<std::vector<int64_t>> extreme_points(const at::Tensor& label,
                                                 double background,
                                                 double pert,
                                                 Rng& rng) {
  const auto shape = label.sizes().vec();
  const auto rank = static_cast<int64_t>(shape.size());
  // numpy's where(img != background): the foreground's coordinates in raster order.
  const auto idx = at::nonzero(label.to(at::kDouble).ne(background)).contiguous();  // [n, rank]
  const int64_t n = idx.size(0);
  if (n == 0) throw Error("extreme points: no foreground object in the label");
  const auto* c = idx.data_ptr<int64_t>();
  std::vector<std::vector<int64_t>> points;
  for (int64_t axis = 0; axis < rank; ++axis) {
    int64_t lo = c[axis], hi = c[axis];
    for (int64_t i = 1; i < n; ++i) {
      lo = std::min(lo, c[i * rank + axis]);
      hi = std::max(hi, c[i * rank + axis]);
    }
    for (const int64_t target : {lo, hi}) {
      std::vector<int64_t> ties;
      for (int64_t i = 0; i < n; ++i)
        if (c[i * rank + axis] == target) ties.push_back(i);
      const int64_t pick =
          ties[static_cast<std::size_t>(rng.randint(0, static_cast<int64_t>(ties.size())))];
      std::vector<int64_t> p(static_cast<std::size_t>(rank));
      for (int64_t j = 0; j < rank; ++j) {
        const double moved = static_cast<double>(c[pick * rank + j]) + 2.0 * pert * rng.uniform();
        p[static_cast<std::size_t>(j)] = std::clamp<int64_t>(
            static_cast<int64_t>(moved), 0, shape[static_cast<std::size_t>(j)] - 1);
      }
      points.push_back(std::move(p));
    }
  }
  return points;
}

at::Tensor extreme_points_image(const std::vector<int64_t>& spatial,
                                const std::vector<std::vector<int64_t>>& points,
                                double sigma,
                                double rescale_min,
                                double rescale_max) {
  if (!(sigma > 0))
    throw Error(fmt::format("extreme points: sigma must be positive, not {}", sigma));
  if (points.empty()) throw Error("extreme points: no points");
  nlohmann::json group = nlohmann::json::array();
  for (const auto& p : points) {
    if (p.size() != spatial.size())
      throw Error(fmt::format("extreme points: a point has {} coordinates for a {}-D image",
                              p.size(), spatial.size()));
    for (std::size_t d = 0; d < p.size(); ++d)
      if (p[d] < 0 || p[d] >= spatial[d])
        throw Error(fmt::format("extreme points: point {} lies outside the image {}",
                                nlohmann::json(p).dump(), nlohmann::json(spatial).dump()));
    group.push_back(p);
  }
  // guidance_signal already smooths unit voxels and min-max normalises to [0, 1].
  auto img = guidance_signal(spatial, nlohmann::json::array({group}), sigma);
  return img.mul_(static_cast<float>(rescale_max - rescale_min))
      .add_(static_cast<float>(rescale_min));
}

at::Tensor discrepancy(const at::Tensor& label, const at::Tensor& pred) {
  const auto l = (label > 0.5).to(at::kFloat);
  const auto p = (pred > 0.5).to(at::kFloat);
  const auto d = l - p;
  return at::cat({(d > 0).to(at::kFloat), (d < 0).to(at::kFloat)}, 0);
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> crop_from_center(
    const std::vector<int64_t>& center, const std::vector<int64_t>& size) {
  std::vector<int64_t> start(center.size()), end(center.size());
  for (std::size_t d = 0; d < center.size(); ++d) {
    start[d] = std::max<int64_t>(center[d] - size[d] / 2, 0);
    end[d] = std::max(start[d] + size[d], start[d]);
  }
  return {start, end};
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> crop_from_box(
    const std::vector<int64_t>& start_in, const std::vector<int64_t>& end_in) {
  std::vector<int64_t> start(start_in.size()), end(start_in.size());
  for (std::size_t d = 0; d < start_in.size(); ++d) {
    start[d] = std::max<int64_t>(start_in[d], 0);
    end[d] = std::max(end_in[d], start[d]);
  }
  return {start, end};
}

void slice_item(ImageItem& img,
                const std::vector<int64_t>& start,
                const std::vector<int64_t>& end,
                const std::string& name) {
  const auto shape = img.spatial_shape();
  const auto affine = img.affine;
  std::vector<int64_t> s(shape.size()), e(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    s[d] = std::clamp<int64_t>(d < start.size() ? start[d] : 0, 0, shape[d]);
    e[d] = std::clamp<int64_t>(d < end.size() ? end[d] : shape[d], s[d], shape[d]);
  }
  auto out = croppad::crop_or_pad(img.data, s, e);
  // The crop owns its storage: a session's cached image stays untouched by later in-place steps.
  if (out.storage().is_alias_of(img.data.storage())) out = out.clone(at::MemoryFormat::Contiguous);
  img.data = out;
  img.affine = croppad::translate_affine(img.affine, s);
  record(img, name, shape, affine);
}

Affine slice_affine(const Affine& a, int axis, int64_t idx) {
  Affine out = a;
  int col = 0;
  for (int c = 0; c < 3; ++c) {
    if (c == axis) continue;
    for (int r = 0; r < 4; ++r) out[r * 4 + col] = a[r * 4 + c];
    ++col;
  }
  for (int r = 0; r < 4; ++r) out[r * 4 + 2] = a[r * 4 + axis];
  for (int r = 0; r < 3; ++r)
    out[r * 4 + 3] = a[r * 4 + 3] + static_cast<double>(idx) * a[r * 4 + axis];
  return out;
}

}  // namespace barton::transforms::deepgrow
