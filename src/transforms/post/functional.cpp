#include "transforms/post/functional.h"

#include <algorithm>
#include <numeric>

#include <ATen/ATen.h>

#include "core/errors.h"

namespace barton::transforms::post {

namespace {

// Neighbour offsets (excluding the centre) within `k` orthogonal steps in `nd` dimensions.
std::vector<std::array<int64_t, 3>> neighbours(int nd, int k) {
  std::vector<std::array<int64_t, 3>> out;
  const int zr = nd == 3 ? 1 : 0;
  for (int dz = -zr; dz <= zr; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int steps = std::abs(dz) + std::abs(dy) + std::abs(dx);
        if (steps == 0 || steps > k) continue;
        out.push_back({dz, dy, dx});
      }
  return out;
}

}  // namespace

std::pair<at::Tensor, int64_t> label_components(const at::Tensor& mask_in, int connectivity) {
  const int nd = static_cast<int>(mask_in.dim());
  BARTON_CHECK(nd == 2 || nd == 3, "connected components need a 2D or 3D mask, got {}D", nd);
  BARTON_CHECK(connectivity >= 1 && connectivity <= nd, "connectivity must be in 1..{}, got {}", nd,
               connectivity);
  const auto mask = mask_in.to(at::kBool).contiguous();
  // View as [Z, Y, X] (Z = 1 for 2D).
  const int64_t Z = nd == 3 ? mask.size(0) : 1, Y = mask.size(nd - 2), X = mask.size(nd - 1);
  const bool* m = mask.data_ptr<bool>();
  auto labels = at::zeros(mask.sizes(), at::kLong);
  int64_t* lab = labels.data_ptr<int64_t>();
  const auto nbr = neighbours(nd, connectivity);
  int64_t count = 0;
  std::vector<int64_t> stack;
  for (int64_t start = 0; start < Z * Y * X; ++start) {
    if (!m[start] || lab[start]) continue;
    lab[start] = ++count;
    stack.push_back(start);
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      const int64_t z = p / (Y * X), y = (p / X) % Y, x = p % X;
      for (const auto& d : nbr) {
        const int64_t zz = z + d[0], yy = y + d[1], xx = x + d[2];
        if (zz < 0 || zz >= Z || yy < 0 || yy >= Y || xx < 0 || xx >= X) continue;
        const int64_t q = (zz * Y + yy) * X + xx;
        if (m[q] && !lab[q]) {
          lab[q] = count;
          stack.push_back(q);
        }
      }
    }
  }
  return {labels, count};
}

at::Tensor largest_components(const at::Tensor& mask, int connectivity, int num_components) {
  auto [labels, count] = label_components(mask, connectivity);
  if (count <= num_components) return mask.to(at::kBool);
  auto sizes = at::bincount(labels.reshape(-1)).to(at::kLong);
  std::vector<int64_t> sz(sizes.data_ptr<int64_t>(), sizes.data_ptr<int64_t>() + sizes.numel());
  std::vector<int64_t> ids(count);
  std::iota(ids.begin(), ids.end(), 1);
  // Descending size; ties -> higher label first (reverse of a stable ascending sort).
  std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return sz[a] < sz[b]; });
  std::reverse(ids.begin(), ids.end());
  auto keep = at::zeros({count + 1}, at::kBool);
  for (int i = 0; i < num_components; ++i) keep[ids[i]] = true;
  return keep.index({labels});
}

at::Tensor keep_largest_connected_component(const at::Tensor& img,
                                            const std::vector<int64_t>& applied_labels_in,
                                            std::optional<bool> is_onehot_in,
                                            bool independent,
                                            std::optional<int> connectivity_in,
                                            int num_components) {
  const int nd = static_cast<int>(img.dim()) - 1;
  const int connectivity = connectivity_in ? *connectivity_in : nd;
  const bool onehot = is_onehot_in ? *is_onehot_in : img.size(0) > 1;
  std::vector<int64_t> labels = applied_labels_in;
  if (labels.empty()) {
    if (onehot) {
      for (int64_t c = 1; c < img.size(0); ++c) {
        if (img[c].sum().item<double>() > 0) labels.push_back(c);
      }
    } else {
      BARTON_CHECK(img.size(0) == 1,
                   "KeepLargestConnectedComponent: a label map needs one channel, got {}",
                   img.size(0));
      const auto u = std::get<0>(at::_unique(img.to(at::kLong).reshape(-1)));
      for (int64_t i = 0; i < u.numel(); ++i) {
        const auto v = u[i].item<int64_t>();
        if (v != 0) labels.push_back(v);
      }
      std::sort(labels.begin(), labels.end());
    }
  }
  auto out = img.clone();
  if (labels.empty()) return out;
  if (independent) {
    for (const auto l : labels) {
      const auto fg = onehot ? img[l] > 0 : img[0] == static_cast<double>(l);
      const auto keep = largest_components(fg, connectivity, num_components);
      const auto drop = fg & keep.logical_not();
      if (onehot)
        out[l].masked_fill_(drop, 0);
      else
        out[0].masked_fill_(drop, 0);
    }
    return out;
  }
  at::Tensor fg;
  if (onehot) {
    fg = at::zeros(img[0].sizes(), at::kBool);
    for (const auto l : labels) fg = fg | (img[l] == 1);
  } else {
    fg = at::zeros(img[0].sizes(), at::kBool);
    for (const auto l : labels) fg = fg | (img[0] == static_cast<double>(l));
  }
  const auto keep = largest_components(fg, connectivity, num_components);
  const auto drop = fg & keep.logical_not();
  if (onehot) {
    for (const auto l : labels) out[l].masked_fill_(drop, 0);
  } else {
    out[0].masked_fill_(drop, 0);
  }
  return out;
}

at::Tensor fill_holes(const at::Tensor& img,
                      const std::vector<int64_t>& applied_labels,
                      std::optional<int> connectivity_in) {
  const int nd = static_cast<int>(img.dim()) - 1;
  const int connectivity = connectivity_in ? *connectivity_in : nd;
  const bool onehot = img.size(0) > 1;
  std::vector<int64_t> labels = applied_labels;
  if (labels.empty()) {
    if (onehot) {
      for (int64_t c = 0; c < img.size(0); ++c) {
        if (img[c].sum().item<double>() > 0) labels.push_back(c);
      }
    } else {
      const auto u = std::get<0>(at::_unique(img.to(at::kLong).reshape(-1)));
      for (int64_t i = 0; i < u.numel(); ++i) labels.push_back(u[i].item<int64_t>());
      std::sort(labels.begin(), labels.end());
    }
  }
  labels.erase(std::remove(labels.begin(), labels.end(), 0), labels.end());
  auto out = img.clone();
  for (const auto l : labels) {
    const auto not_l = onehot ? out[l] == 0 : out[0] != static_cast<double>(l);
    // Components of "not l" that touch the border are outside; the rest are holes.
    auto [comp, count] = label_components(not_l, connectivity);
    if (count == 0) continue;
    auto border = at::zeros({count + 1}, at::kBool);
    for (int d = 0; d < nd; ++d) {
      for (int64_t edge : {int64_t{0}, comp.size(d) - 1}) {
        const auto ids = comp.select(d, edge).reshape(-1);
        border.index_put_({ids}, at::ones({ids.numel()}, at::kBool));
      }
    }
    border[0] = true;  // background of the labelling = the label itself
    const auto reached = border.index({comp});
    const auto holes = reached.logical_not();
    if (onehot) {
      out[l] = at::where(holes, at::ones_like(out[l]), out[l]);
    } else {
      out[0].masked_fill_(holes, static_cast<double>(l));
    }
  }
  return out;
}

at::Tensor as_discrete(const at::Tensor& img,
                       bool argmax,
                       std::optional<int64_t> to_onehot,
                       std::optional<double> threshold,
                       bool rounding) {
  auto x = img;
  if (argmax) x = at::argmax(x, 0, /*keepdim=*/true);
  if (to_onehot) {
    BARTON_CHECK(x.size(0) == 1,
                 "AsDiscrete: to_onehot needs a single-channel label map, got {} channels",
                 x.size(0));
    const auto lab = x.to(at::kLong)[0];
    const auto mn = lab.min().item<int64_t>(), mx = lab.max().item<int64_t>();
    BARTON_CHECK(mn >= 0 && mx < *to_onehot,
                 "AsDiscrete: labels in [{}, {}] do not fit to_onehot={}", mn, mx, *to_onehot);
    x = at::one_hot(lab, *to_onehot).movedim(-1, 0);
  }
  if (threshold) x = x >= *threshold;
  if (rounding) x = at::round(x.to(at::kFloat));
  return x.to(at::kFloat);
}

}  // namespace barton::transforms::post
