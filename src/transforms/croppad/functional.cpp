#include "transforms/croppad/functional.h"

#include <cmath>

#include <ATen/ATen.h>

#include "core/errors.h"

namespace barton::transforms::croppad {

std::vector<int64_t> fall_back(const std::vector<int64_t>& size,
                               const std::vector<int64_t>& shape) {
  std::vector<int64_t> out(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const int64_t v = size.size() == 1 ? size[0] : (i < size.size() ? size[i] : -1);
    out[i] = v > 0 ? v : shape[i];
  }
  return out;
}

namespace {

// Index map for one axis of length n padded by (b, a) in a numpy mode.
std::vector<int64_t> pad_index(int64_t n, int64_t b, int64_t a, const std::string& mode) {
  std::vector<int64_t> idx;
  for (int64_t j = -b; j < n + a; ++j) {
    int64_t i = j;
    if (mode == "edge" || mode == "replicate") {
      i = std::clamp<int64_t>(j, 0, n - 1);
    } else if (mode == "reflect") {
      if (n == 1) {
        i = 0;
      } else {
        const int64_t period = 2 * (n - 1);
        int64_t m = ((j % period) + period) % period;
        i = m < n ? m : period - m;
      }
    } else if (mode == "symmetric") {
      const int64_t period = 2 * n;
      int64_t m = ((j % period) + period) % period;
      i = m < n ? m : period - 1 - m;
    } else if (mode == "wrap" || mode == "circular") {
      i = ((j % n) + n) % n;
    } else {
      throw Error("unknown padding mode '" + mode + "' (constant, edge, reflect, symmetric, wrap)");
    }
    idx.push_back(i);
  }
  return idx;
}

}  // namespace

at::Tensor pad(const at::Tensor& img,
               const std::vector<int64_t>& before,
               const std::vector<int64_t>& after,
               const std::string& mode) {
  const int64_t r = img.dim() - 1;
  bool any = false;
  for (int64_t d = 0; d < r; ++d) any = any || before[d] > 0 || after[d] > 0;
  if (!any) return img;
  if (mode == "constant" || mode == "zeros") {
    std::vector<int64_t> p;  // constant_pad_nd takes pairs from the last axis backwards
    for (int64_t d = r - 1; d >= 0; --d) {
      p.push_back(before[d]);
      p.push_back(after[d]);
    }
    return at::constant_pad_nd(img, p, 0);
  }
  auto out = img;
  for (int64_t d = 0; d < r; ++d) {
    if (before[d] == 0 && after[d] == 0) continue;
    BARTON_CHECK(out.size(d + 1) > 0, "cannot pad an empty axis with mode '{}'", mode);
    const auto idx = pad_index(out.size(d + 1), before[d], after[d], mode);
    out = out.index_select(d + 1, at::tensor(idx, at::kLong));
  }
  return out;
}

at::Tensor crop_or_pad(const at::Tensor& img,
                       const std::vector<int64_t>& start,
                       const std::vector<int64_t>& end,
                       const std::string& mode) {
  const int64_t r = img.dim() - 1;
  auto out = img;
  std::vector<int64_t> before(r, 0), after(r, 0);
  for (int64_t d = 0; d < r; ++d) {
    const int64_t n = img.size(d + 1);
    const int64_t s = std::clamp<int64_t>(start[d], 0, n), e = std::clamp<int64_t>(end[d], s, n);
    out = out.slice(d + 1, s, e);
    before[d] = std::max<int64_t>(-start[d], 0);
    after[d] = std::max<int64_t>(end[d] - n, 0);
  }
  return pad(out, before, after, mode);
}

Affine translate_affine(const Affine& a, const std::vector<int64_t>& shift) {
  Affine t = identity_affine();
  for (std::size_t d = 0; d < shift.size(); ++d) t[d * 4 + 3] = static_cast<double>(shift[d]);
  return matmul(a, t);
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> pad_amounts(
    const std::vector<int64_t>& shape, const std::vector<int64_t>& target, bool symmetric) {
  std::vector<int64_t> b(shape.size()), a(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const int64_t w = std::max<int64_t>(target[d] - shape[d], 0);
    b[d] = symmetric ? w / 2 : 0;
    a[d] = w - b[d];
  }
  return {b, a};
}

std::vector<int64_t> center_crop_start(const std::vector<int64_t>& shape,
                                       const std::vector<int64_t>& roi) {
  std::vector<int64_t> s(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d)
    s[d] = std::max<int64_t>(shape[d] / 2 - roi[d] / 2, 0);
  return s;
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> foreground_box(
    const at::Tensor& mask,
    const std::vector<int64_t>& margin,
    bool allow_smaller,
    const std::vector<int64_t>& k_divisible) {
  const int64_t r = mask.dim();
  std::vector<int64_t> start(r, 0), end(r, 0);
  const auto m = mask.to(at::kBool);
  if (!m.any().item<bool>()) return {start, end};
  for (int64_t d = 0; d < r; ++d) {
    std::vector<int64_t> other;
    for (int64_t o = 0; o < r; ++o) {
      if (o != d) other.push_back(o);
    }
    auto line = m;
    for (auto it = other.rbegin(); it != other.rend(); ++it) line = line.any(*it);
    const auto nz = line.nonzero();
    const int64_t first = nz.min().item<int64_t>(), last = nz.max().item<int64_t>();
    start[d] = first - margin[d];
    end[d] = last + margin[d] + 1;
    if (allow_smaller) {
      start[d] = std::max<int64_t>(start[d], 0);
      end[d] = std::min<int64_t>(end[d], m.size(d));
    }
  }
  for (int64_t d = 0; d < r; ++d) {
    const int64_t k = k_divisible[d];
    if (k <= 1) continue;
    const int64_t size = end[d] - start[d];
    const int64_t grown = (size + k - 1) / k * k;
    start[d] -= (grown - size) / 2;
    end[d] = start[d] + grown;
  }
  return {start, end};
}

std::vector<int64_t> correct_crop_center(const std::vector<int64_t>& center,
                                         const std::vector<int64_t>& size,
                                         const std::vector<int64_t>& shape) {
  std::vector<int64_t> out(center.size());
  for (std::size_t d = 0; d < center.size(); ++d) {
    const int64_t valid_start = size[d] / 2;
    // MONAI: uint16(S + 1 - size / 2) with true division, i.e. truncation.
    int64_t valid_end = static_cast<int64_t>(static_cast<double>(shape[d]) + 1.0 -
                                             static_cast<double>(size[d]) / 2.0);
    if (valid_start == valid_end) valid_end += 1;
    out[d] = std::min(std::max(center[d], valid_start), valid_end - 1);
  }
  return out;
}

std::vector<int64_t> crop_start_from_center(const std::vector<int64_t>& center,
                                            const std::vector<int64_t>& size) {
  std::vector<int64_t> s(center.size());
  for (std::size_t d = 0; d < center.size(); ++d)
    s[d] = std::max<int64_t>(center[d] - size[d] / 2, 0);
  return s;
}

std::vector<int64_t> unravel(int64_t flat, const std::vector<int64_t>& shape) {
  std::vector<int64_t> out(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    out[d] = flat % shape[d];
    flat /= shape[d];
  }
  return out;
}

}  // namespace barton::transforms::croppad
