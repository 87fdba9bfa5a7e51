#include "transforms/spatial/functional.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "core/errors.h"
#include "transforms/croppad/functional.h"

namespace barton::transforms::spatial {

namespace {

double& el(Affine& a, int r, int c) {
  return a[r * 4 + c];
}
double el(const Affine& a, int r, int c) {
  return a[r * 4 + c];
}

std::vector<int64_t> spatial_shape(const at::Tensor& t) {
  std::vector<int64_t> s;
  for (int64_t d = 1; d < t.dim(); ++d) s.push_back(t.size(d));
  return s;
}

// Index of the homogeneous column/row in the embedded 4x4 form for rank r.
constexpr int kH = 3;

int64_t interp_code(const std::string& mode) {
  if (mode == "bilinear" || mode == "linear" || mode == "trilinear") return 0;
  if (mode == "nearest") return 1;
  if (mode == "bicubic") return 2;
  throw Error("unsupported interpolation mode '" + mode +
              "' for resampling (bilinear, nearest, bicubic)");
}

int64_t padding_code(const std::string& mode) {
  if (mode == "zeros" || mode == "constant") return 0;
  if (mode == "border" || mode == "edge") return 1;
  if (mode == "reflection" || mode == "reflect") return 2;
  throw Error("unsupported padding mode '" + mode + "' for resampling (zeros, border, reflection)");
}

bool allclose(const Affine& a, const Affine& b, double atol, double rtol, int r) {
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      if ((i >= r && i != kH) || (j >= r && j != kH)) continue;
      if (std::abs(el(a, i, j) - el(b, i, j)) > atol + rtol * std::abs(el(b, i, j))) return false;
    }
  return true;
}

// grid_sample on a [r, *out] grid of input voxel indices (float64), channel-first image.
at::Tensor sample_at_indices(const at::Tensor& img,
                             const at::Tensor& idx,
                             const std::string& mode,
                             const std::string& padding,
                             bool align_corners,
                             at::ScalarType compute) {
  const int64_t r = img.dim() - 1;
  const auto in = spatial_shape(img);
  std::vector<at::Tensor> comps;
  for (int64_t d = r - 1; d >= 0; --d) {  // torch grid order: last spatial axis first
    const double n = static_cast<double>(in[d]);
    auto x = idx[d];
    comps.push_back(align_corners ? (n > 1 ? x * 2.0 / (n - 1.0) - 1.0 : x * 0.0)
                                  : (2.0 * x + 1.0) / n - 1.0);
  }
  auto grid = at::stack(comps, -1).unsqueeze(0).to(compute);
  return at::grid_sampler(img.unsqueeze(0).to(compute), grid, interp_code(mode),
                          padding_code(padding), align_corners)[0];
}

}  // namespace

Affine to_nd(const Affine& a, int r) {
  if (r == 3) return a;
  Affine out = identity_affine();
  for (int i = 0; i < r; ++i) {
    for (int j = 0; j < r; ++j) el(out, i, j) = el(a, i, j);
    el(out, i, kH) = el(a, i, kH);
  }
  return out;
}

namespace {

// (r+1)x(r+1) tensor of an embedded 4x4 matrix.
at::Tensor block(const Affine& a, int r, at::ScalarType dtype) {
  auto t = at::zeros({r + 1, r + 1}, at::kDouble);
  auto acc = t.accessor<double, 2>();
  for (int i = 0; i <= r; ++i)
    for (int j = 0; j <= r; ++j) acc[i][j] = el(a, i == r ? kH : i, j == r ? kH : j);
  return t.to(dtype);
}

Affine embed(const at::Tensor& t, int r) {
  const auto d = t.to(at::kDouble).contiguous();
  auto acc = d.accessor<double, 2>();
  Affine a = identity_affine();
  for (int i = 0; i <= r; ++i)
    for (int j = 0; j <= r; ++j) el(a, i == r ? kH : i, j == r ? kH : j) = acc[i][j];
  return a;
}

// Solves A X = B for (r+1)x(r+1) float64 matrices by LU with partial pivoting (LAPACK's dgesv
// algorithm, as numpy.linalg.solve uses), so axis-aligned affines give exact results.
at::Tensor solve_lu(const at::Tensor& a_t, const at::Tensor& b_t) {
  const int64_t n = a_t.size(0), m = b_t.size(1);
  auto a = a_t.to(at::kDouble).contiguous().clone();
  auto b = b_t.to(at::kDouble).contiguous().clone();
  auto A = a.accessor<double, 2>();
  auto B = b.accessor<double, 2>();
  for (int64_t k = 0; k < n; ++k) {
    int64_t p = k;
    for (int64_t i = k + 1; i < n; ++i) {
      if (std::abs(A[i][k]) > std::abs(A[p][k])) p = i;
    }
    BARTON_CHECK(A[p][k] != 0.0, "affine is singular");
    if (p != k) {
      for (int64_t j = 0; j < n; ++j) std::swap(A[k][j], A[p][j]);
      for (int64_t j = 0; j < m; ++j) std::swap(B[k][j], B[p][j]);
    }
    for (int64_t i = k + 1; i < n; ++i) {
      const double l = A[i][k] / A[k][k];
      A[i][k] = l;
      for (int64_t j = k + 1; j < n; ++j) A[i][j] -= l * A[k][j];
      for (int64_t j = 0; j < m; ++j) B[i][j] -= l * B[k][j];
    }
  }
  for (int64_t j = 0; j < m; ++j) {
    for (int64_t i = n - 1; i >= 0; --i) {
      double v = B[i][j];
      for (int64_t k = i + 1; k < n; ++k) v -= A[i][k] * B[k][j];
      B[i][j] = v / A[i][i];
    }
  }
  return b;
}

// MONAI's normalize_transform, with the same float64 operations, cast to `dtype`.
at::Tensor normalize_t(const std::vector<int64_t>& shape,
                       bool align_corners,
                       at::ScalarType dtype) {
  std::vector<double> s(shape.begin(), shape.end());
  auto shape_t = at::tensor(s, at::kDouble);
  auto norm = shape_t.clone();
  const int64_t r = shape_t.numel();
  auto n = at::zeros({r + 1, r + 1}, at::kDouble);
  if (align_corners) {
    norm = at::where(norm <= 1.0, at::full_like(norm, 2.0), norm);
    norm = 2.0 / (norm - 1.0);
    n = at::diag(at::cat({norm, at::ones({1}, at::kDouble)}));
    n.slice(0, 0, r).select(1, r).fill_(-1.0);
  } else {
    norm = at::where(norm <= 0.0, at::full_like(norm, 2.0), norm);
    norm = 2.0 / norm;
    n = at::diag(at::cat({norm, at::ones({1}, at::kDouble)}));
    n.slice(0, 0, r).select(1, r).copy_(1.0 / shape_t - 1.0);
  }
  return n.to(dtype);
}

}  // namespace

namespace {

// theta = N(in) @ M @ inv(N(out)), then the first r rows and columns reversed (torch's x = last
// axis): the same operations MONAI's AffineTransform performs, in the compute dtype. [1, r, r+1].
at::Tensor grid_theta(const std::vector<int64_t>& in,
                      const Affine& M,
                      const std::vector<int64_t>& out,
                      bool align_corners,
                      at::ScalarType compute) {
  const int r = static_cast<int>(in.size());
  auto theta = at::matmul(at::matmul(normalize_t(in, align_corners, compute).unsqueeze(0),
                                     block(M, r, compute).unsqueeze(0)),
                          at::inverse(normalize_t(out, align_corners, compute).unsqueeze(0)))[0];
  std::vector<int64_t> rev;
  for (int i = r - 1; i >= 0; --i) rev.push_back(i);
  rev.push_back(r);
  const auto idx = at::tensor(rev, at::kLong);
  return theta.index_select(0, idx).index_select(1, idx).slice(0, 0, r).unsqueeze(0).contiguous();
}

// The source voxel grid_sample picks along axis d (nearest) for each output index on that axis,
// from the same theta and the same affine_grid / grid_sample arithmetic as the whole-volume path:
// a grid one voxel thin across the other axes, sampling an image whose voxels hold their index + 1
// (0: outside, zeros padding). With theta's off-axis terms exactly zero, the axis-d coordinate of
// the whole grid at output index j is the thin grid's, whatever the summation order. Returns an
// empty vector when theta has a nonzero off-axis term.
std::vector<int64_t> nearest_taps_like_grid_sample(const std::vector<int64_t>& in,
                                                   const Affine& M,
                                                   const std::vector<int64_t>& out,
                                                   int d,
                                                   const std::string& padding,
                                                   at::ScalarType compute) {
  const int r = static_cast<int>(in.size());
  const auto theta = grid_theta(in, M, out, false, compute);
  const auto th = theta[0].to(at::kDouble).contiguous();
  const auto acc = th.accessor<double, 2>();
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < r; ++j)
      if (i != j && acc[i][j] != 0.0) return {};
  std::vector<int64_t> size = {1, 1}, img_size = {1, 1};
  for (int k = 0; k < r; ++k) {
    size.push_back(k == d ? out[k] : 1);
    img_size.push_back(k == d ? in[k] : 1);
  }
  const auto grid =
      at::affine_grid_generator(theta, size, false);  // [1, *thin, r], torch axis order
  auto only_d = at::zeros_like(grid);
  only_d.select(-1, r - 1 - d).copy_(grid.select(-1, r - 1 - d));
  const auto ids = at::arange(1, in[d] + 1, at::TensorOptions().dtype(compute)).reshape(img_size);
  const auto picked =
      at::grid_sampler(ids, only_d, interp_code("nearest"), padding_code(padding), false)
          .reshape(-1);
  const auto p64 = picked.to(at::kLong).contiguous();
  return {p64.data_ptr<int64_t>(), p64.data_ptr<int64_t>() + p64.numel()};
}

// One axis of a separable resample, in one pass with no temporaries:
// out[o, j, i] = w0[j] * x[o, i0[j], i] + w1[j] * x[o, i1[j], i] (the second tap only when linear),
// x viewed as [outer, n, inner]; computed in T, stored as O. Same arithmetic per element as
// index_select, mul and add in T.
template <typename T, typename O>
void resample_axis(const T* x,
                   O* y,
                   int64_t outer,
                   int64_t n,
                   int64_t inner,
                   const std::vector<int64_t>& i0,
                   const std::vector<int64_t>& i1,
                   const std::vector<T>& w0,
                   const std::vector<T>& w1,
                   bool linear) {
  const auto m = static_cast<int64_t>(i0.size());
  at::parallel_for(0, outer * m, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)),
                   [&](int64_t b, int64_t e) {
                     for (int64_t row = b; row < e; ++row) {
                       const int64_t o = row / m, j = row % m;
                       const T* a = x + (o * n + i0[j]) * inner;
                       O* dst = y + row * inner;
                       const T wa = w0[j];
                       if (linear) {
                         const T* c = x + (o * n + i1[j]) * inner;
                         const T wb = w1[j];
                         for (int64_t i = 0; i < inner; ++i)
                           dst[i] = static_cast<O>(a[i] * wa + c[i] * wb);
                       } else {
                         for (int64_t i = 0; i < inner; ++i) dst[i] = static_cast<O>(a[i] * wa);
                       }
                     }
                   });
}

// Axis-aligned maps (no rotation or shear) are separable: trilinear interpolation is the product of
// three 1-D linear interpolations, so the volume is resampled one axis at a time, one pass per
// axis, instead of an 8-tap gather through a full float64 sampling grid (88 MB for a 168x168x157
// CT). Same values as grid_sample up to float rounding. A nearest-neighbour coordinate on an exact
// .5 tie takes the voxel grid_sample picks (nearest_taps_like_grid_sample), so labels come out
// as MONAI's. Returns an undefined tensor when the map is not separable.
at::Tensor separable_resample(const at::Tensor& img,
                              const Affine& M,
                              const std::vector<int64_t>& out,
                              const std::string& mode,
                              const std::string& padding,
                              at::ScalarType compute,
                              at::ScalarType out_dtype) {
  const int r = static_cast<int>(img.dim()) - 1;
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < r; ++j)
      if (i != j && el(M, i, j) != 0.0) return {};
  const bool nearest = mode == "nearest";
  if (!nearest && mode != "bilinear") return {};
  if (padding != "border" && padding != "zeros") return {};
  if (compute != at::kDouble && compute != at::kFloat) return {};
  if (out_dtype != compute && out_dtype != at::kFloat) return {};
  const auto in = spatial_shape(img);
  // Per axis: source taps and weights.
  struct Axis {
    std::vector<int64_t> i0, i1;
    std::vector<double> w0, w1;
  };
  std::vector<Axis> axes(r);
  for (int d = 0; d < r; ++d) {
    const int64_t n = in[d];
    auto& ax = axes[d];
    ax.i0.resize(out[d]);
    ax.i1.resize(out[d]);
    ax.w0.resize(out[d]);
    ax.w1.resize(out[d]);
    std::vector<int64_t> exact;  // grid_sample's picks, when this axis has a tie
    for (int64_t j = 0; j < out[d]; ++j) {
      double x = el(M, d, d) * static_cast<double>(j) + el(M, d, kH);
      if (nearest) {
        const double frac = x - std::floor(x);
        if (std::abs(frac - 0.5) < 1e-9 && exact.empty()) {
          exact = nearest_taps_like_grid_sample(in, M, out, d, padding, compute);
          if (exact.empty()) return {};
        }
        int64_t k = static_cast<int64_t>(std::nearbyint(x));
        double w = 1.0;
        if (!exact.empty()) {
          k = exact[j] - 1;  // 0 from the sampler: outside (zeros padding)
          if (k < 0) w = 0.0;
          k = std::clamp<int64_t>(k, 0, n - 1);
        } else if (k < 0 || k > n - 1) {
          if (padding == "zeros") w = 0.0;
          k = std::clamp<int64_t>(k, 0, n - 1);
        }
        ax.i0[j] = ax.i1[j] = k;
        ax.w0[j] = w;
        ax.w1[j] = 0.0;
        continue;
      }
      if (padding == "border") x = std::clamp(x, 0.0, static_cast<double>(n - 1));
      const double f = std::floor(x);
      const double w = x - f;
      int64_t a = static_cast<int64_t>(f), b = a + 1;
      double wa = 1.0 - w, wb = w;
      if (a < 0 || a > n - 1) wa = 0.0;  // zeros padding drops out-of-range taps
      if (b < 0 || b > n - 1) wb = 0.0;
      ax.i0[j] = std::clamp<int64_t>(a, 0, n - 1);
      ax.i1[j] = std::clamp<int64_t>(b, 0, n - 1);
      ax.w0[j] = wa;
      ax.w1[j] = wb;
    }
  }
  // Shrink first: axes whose output is smallest relative to the input go first.
  std::vector<int> order(r);
  for (int d = 0; d < r; ++d) order[d] = d;
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return static_cast<double>(out[a]) / in[a] < static_cast<double>(out[b]) / in[b];
  });
  auto x = img.to(compute).contiguous();
  AT_DISPATCH_FLOATING_TYPES(compute, "separable_resample", [&] {
    using T = scalar_t;
    for (std::size_t step = 0; step < order.size(); ++step) {
      const int d = order[step];
      const auto& ax = axes[d];
      const std::vector<T> w0(ax.w0.begin(), ax.w0.end()),
          w1(ax.w1.begin(), ax.w1.end());  // as .to(compute) rounds them
      auto shape = x.sizes().vec();
      int64_t outer = 1, inner = 1;
      for (int k = 0; k <= d; ++k) outer *= shape[k];  // channels and the axes before d
      for (int k = d + 2; k <= r; ++k) inner *= shape[k];
      const int64_t n = shape[d + 1];
      shape[d + 1] = out[d];
      const bool last = step + 1 == order.size();
      const auto dtype = last ? out_dtype : compute;
      auto y = at::empty(shape, x.options().dtype(dtype));
      if (dtype == compute) {
        resample_axis<T, T>(x.data_ptr<T>(), y.data_ptr<T>(), outer, n, inner, ax.i0, ax.i1, w0, w1,
                            !nearest);
      } else {
        resample_axis<T, float>(x.data_ptr<T>(), y.data_ptr<float>(), outer, n, inner, ax.i0, ax.i1,
                                w0, w1, !nearest);
      }
      x = y;
    }
  });
  return x;
}

}  // namespace

at::Tensor affine_resample(const at::Tensor& img,
                           const Affine& M,
                           const std::vector<int64_t>& out,
                           const std::string& mode,
                           const std::string& padding,
                           bool align_corners,
                           at::ScalarType compute,
                           at::ScalarType out_dtype) {
  if (out_dtype == at::ScalarType::Undefined) out_dtype = compute;
  const auto in = spatial_shape(img);
  if (!align_corners) {
    auto fast = separable_resample(img, M, out, mode, padding, compute, out_dtype);
    if (fast.defined()) return fast;
  }
  const auto theta = grid_theta(in, M, out, align_corners, compute);
  std::vector<int64_t> size = {1, img.size(0)};
  size.insert(size.end(), out.begin(), out.end());
  auto grid = at::affine_grid_generator(theta, size, align_corners);
  return at::grid_sampler(img.unsqueeze(0).to(compute), grid, interp_code(mode),
                          padding_code(padding), align_corners)[0]
      .to(out_dtype);
}

// ---------------------------------------------------------------- orientation

std::vector<std::pair<int, int>> io_orientation(const Affine& a, int r) {
  auto rzs = at::zeros({r, r}, at::kDouble);
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < r; ++j) rzs[i][j] = el(a, i, j);
  auto zooms = rzs.pow(2).sum(0).sqrt();
  zooms = at::where(zooms == 0, at::ones_like(zooms), zooms);
  const auto rs = rzs / zooms;
  auto [P, S, Qh] = at::linalg_svd(rs, /*full_matrices=*/false);
  const double tol = S.max().item<double>() * r * std::numeric_limits<double>::epsilon();
  auto keep = (S > tol).to(at::kDouble);
  auto R = at::matmul(P * keep, Qh).contiguous();
  std::vector<std::pair<int, int>> ornt(r, {-1, 1});
  auto acc = R.accessor<double, 2>();
  for (int i = 0; i < r; ++i) {
    int best = -1;
    double best_v = 0;
    for (int o = 0; o < r; ++o) {
      if (std::abs(acc[o][i]) > std::abs(best_v)) {
        best_v = acc[o][i];
        best = o;
      }
    }
    BARTON_CHECK(best >= 0, "affine has a zero column; cannot find its orientation");
    ornt[i] = {best, best_v < 0 ? -1 : 1};
    for (int j = 0; j < r; ++j) acc[best][j] = 0;
  }
  return ornt;
}

Spatial orientation(const Spatial& in, const std::string& axcodes) {
  const int r = static_cast<int>(in.data.dim()) - 1;
  BARTON_CHECK(static_cast<int>(axcodes.size()) >= r, "axcodes '{}' has fewer than {} letters",
               axcodes, r);
  const auto src = io_orientation(to_nd(in.affine, r), r);
  std::vector<std::pair<int, int>> dst(r);
  for (int o = 0; o < r; ++o) {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(axcodes[o])));
    switch (c) {
      case 'R':
        dst[o] = {0, 1};
        break;
      case 'L':
        dst[o] = {0, -1};
        break;
      case 'A':
        dst[o] = {1, 1};
        break;
      case 'P':
        dst[o] = {1, -1};
        break;
      case 'S':
        dst[o] = {2, 1};
        break;
      case 'I':
        dst[o] = {2, -1};
        break;
      default:
        throw Error(std::string("invalid axis code '") + c + "' in '" + axcodes +
                    "' (use R/L, A/P, S/I)");
    }
  }
  // ornt[i] = (output axis, flip) for input axis i.
  std::vector<std::pair<int, int>> ornt(r, {-1, 1});
  for (int o = 0; o < r; ++o) {
    bool found = false;
    for (int i = 0; i < r; ++i) {
      if (src[i].first == dst[o].first) {
        ornt[i] = {o, src[i].second == dst[o].second ? 1 : -1};
        found = true;
      }
    }
    BARTON_CHECK(found, "cannot reorient to '{}': the image has no axis along that direction",
                 axcodes);
  }
  const auto S = spatial_shape(in.data);
  auto data = in.data;
  std::vector<int64_t> flips;
  for (int i = 0; i < r; ++i) {
    if (ornt[i].second == -1) flips.push_back(i + 1);
  }
  if (!flips.empty()) data = data.flip(flips);
  std::vector<int64_t> perm(r + 1, 0);
  for (int i = 0; i < r; ++i) perm[ornt[i].first + 1] = i + 1;
  data = data.permute(perm).contiguous();
  Affine X = identity_affine();
  for (int i = 0; i < r; ++i) {
    for (int j = 0; j < r; ++j) el(X, i, j) = 0;
  }
  for (int i = 0; i < r; ++i) {
    el(X, i, ornt[i].first) = ornt[i].second;
    el(X, i, kH) = ornt[i].second == -1 ? static_cast<double>(S[i] - 1) : 0.0;
  }
  return {data, matmul(in.affine, X)};
}

// ---------------------------------------------------------------- spacing

std::pair<Affine, std::vector<int64_t>> spacing_geometry(const Affine& a,
                                                         const std::vector<int64_t>& shape,
                                                         const SpacingOptions& o) {
  // The same float64 operations, in the same order, as MONAI's zoom_affine and
  // compute_shape_offset (numpy), so that exact ties in nearest-neighbour resampling fall the same
  // way.
  const int r = static_cast<int>(shape.size());
  const Affine ar4 = to_nd(a, r);
  const auto ar = block(ar4, r, at::kDouble);
  BARTON_CHECK(!o.pixdim.empty(), "Spacingd needs pixdim");
  std::vector<double> out_d(r);
  for (int i = 0; i < r; ++i)
    out_d[i] = i < static_cast<int>(o.pixdim.size()) ? o.pixdim[i] : o.pixdim.back();
  const auto rzs = ar.slice(0, 0, r).slice(1, 0, r);
  auto orig_t = at::sqrt((rzs * rzs).sum(0));
  orig_t = at::where(orig_t == 0, at::ones_like(orig_t), orig_t);
  std::vector<double> orig_d(orig_t.data_ptr<double>(), orig_t.data_ptr<double>() + r);
  for (int i = 0; i < r; ++i) {
    const double target = out_d[i];
    double mn = target, mx = target;
    if (i < static_cast<int>(o.min_pixdim.size()) && std::isfinite(o.min_pixdim[i]))
      mn = std::min(o.min_pixdim[i], target);
    if (i < static_cast<int>(o.max_pixdim.size()) && std::isfinite(o.max_pixdim[i]))
      mx = std::max(o.max_pixdim[i], target);
    if (mn - 1e-3 <= orig_d[i] && orig_d[i] <= mx + 1e-3) out_d[i] = orig_d[i];
  }
  for (int i = 0; i < r; ++i) {
    if (out_d[i] <= 0) out_d[i] = orig_d[i];
    if (out_d[i] == 0) out_d[i] = 1;
  }
  at::Tensor new_a = at::eye(r + 1, at::kDouble);
  if (o.diagonal) {
    for (int i = 0; i < r; ++i) new_a[i][i] = out_d[i];
  } else {
    const auto zs = at::linalg_cholesky(at::matmul(rzs.t(), rzs)).t();
    const auto rotation = at::matmul(rzs, at::inverse(zs));
    auto sc = at::tensor(out_d, at::kDouble).abs() * at::sign(at::diagonal(zs));
    new_a.slice(0, 0, r).slice(1, 0, r).copy_(at::matmul(rotation, at::diag(sc)));
  }
  // compute_shape_offset
  std::vector<at::Tensor> coords;
  for (int d = 0; d < r; ++d) {
    const double n = static_cast<double>(shape[d]);
    coords.push_back(o.scale_extent ? at::tensor({-0.5, n - 0.5}, at::kDouble)
                                    : at::tensor({0.0, n - 1.0}, at::kDouble));
  }
  auto mesh = at::meshgrid(coords, "ij");
  std::vector<at::Tensor> flat;
  for (auto& m : mesh) flat.push_back(m.reshape(-1));
  auto corners = at::stack(flat);
  corners = at::cat({corners, at::ones({1, corners.size(1)}, at::kDouble)});
  auto corners_out = at::matmul(solve_lu(new_a, ar), corners);
  const auto corners_w = at::matmul(ar, corners);
  const auto all_dist = corners_out.slice(0, 0, r).clone();
  corners_out = corners_out.slice(0, 0, r) / corners_out.slice(0, r, r + 1);
  const auto ptp = std::get<0>(corners_out.max(1)) - std::get<0>(corners_out.min(1));
  const auto shp = at::round(o.scale_extent ? ptp : ptp + 1.0);
  std::vector<int64_t> out_shape(r);
  for (int d = 0; d < r; ++d) out_shape[d] = static_cast<int64_t>(shp[d].item<double>());
  at::Tensor offset;
  for (int64_t i = 0; i < corners.size(1) && !offset.defined(); ++i) {
    const auto min_corner = std::get<0>((all_dist - all_dist.slice(1, i, i + 1)).min(1));
    if (min_corner.abs().max().item<double>() <= 1e-8)
      offset = corners_w.slice(0, 0, r).select(1, i);
  }
  if (!offset.defined()) offset = std::get<0>(corners_w.slice(0, 0, r).min(1));
  new_a.slice(0, 0, r).select(1, r).copy_(offset);
  return {embed(new_a, r), out_shape};
}

Spatial spatial_resample(const Spatial& in,
                         const Affine& dst_affine,
                         const std::vector<int64_t>& out,
                         const std::string& mode,
                         const std::string& padding,
                         bool align_corners,
                         at::ScalarType compute) {
  const int r = static_cast<int>(in.data.dim()) - 1;
  const Affine ar = to_nd(in.affine, r);
  const Affine dst = to_nd(dst_affine, r);
  // X = solve(src, dst) in float64, as MONAI computes it (LU with partial pivoting).
  const Affine X = embed(solve_lu(block(ar, r, at::kDouble), block(dst, r, at::kDouble)), r);
  const auto S = spatial_shape(in.data);
  if ((allclose(ar, dst, 1e-3, 1e-5, r) || allclose(X, identity_affine(), 1e-8, 1e-5, r)) &&
      out == S) {
    return {in.data.to(at::kFloat), in.affine};
  }
  auto data = affine_resample(in.data, X, out, mode, padding, align_corners, compute, at::kFloat);
  return {data, matmul(in.affine, X)};
}

Spatial spacing(const Spatial& in,
                const SpacingOptions& o,
                const std::vector<int64_t>& force_shape) {
  const auto S = spatial_shape(in.data);
  auto [new_a, out] = spacing_geometry(in.affine, S, o);
  if (!force_shape.empty()) out = force_shape;
  auto res = spatial_resample(in, new_a, out, o.mode, o.padding_mode, o.align_corners, o.dtype);
  if (o.recompute_affine) res.affine = resize_affine(identity_affine(), S, out);
  return res;
}

// ---------------------------------------------------------------- resize / interpolate

at::Tensor interpolate(const at::Tensor& img,
                       const std::vector<int64_t>& out,
                       const std::string& mode_in,
                       std::optional<bool> align_corners) {
  const int64_t r = img.dim() - 1;
  auto x = img.to(at::kFloat).unsqueeze(0);
  std::string mode = mode_in;
  if (mode == "linear" || mode == "bilinear" || mode == "trilinear")
    mode = r == 3 ? "trilinear" : "bilinear";
  const bool ac = align_corners.value_or(false);
  at::IntArrayRef size(out);
  at::Tensor y;
  if (mode == "area") {
    y = r == 3 ? at::adaptive_avg_pool3d(x, size) : at::adaptive_avg_pool2d(x, size);
  } else if (mode == "nearest") {
    y = r == 3 ? at::upsample_nearest3d(x, size, c10::nullopt, c10::nullopt, c10::nullopt)
               : at::upsample_nearest2d(x, size, c10::nullopt, c10::nullopt);
  } else if (mode == "nearest-exact") {
    y = r == 3 ? at::_upsample_nearest_exact3d(x, size, c10::nullopt, c10::nullopt, c10::nullopt)
               : at::_upsample_nearest_exact2d(x, size, c10::nullopt, c10::nullopt);
  } else if (mode == "trilinear") {
    y = at::upsample_trilinear3d(x, size, ac, c10::nullopt, c10::nullopt, c10::nullopt);
  } else if (mode == "bilinear") {
    y = at::upsample_bilinear2d(x, size, ac, c10::nullopt, c10::nullopt);
  } else if (mode == "bicubic" && r == 2) {
    y = at::upsample_bicubic2d(x, size, ac, c10::nullopt, c10::nullopt);
  } else {
    throw Error("unsupported resize mode '" + mode_in +
                "' (nearest, nearest-exact, area, bilinear, trilinear; bicubic in 2D)");
  }
  return y[0];
}

Affine resize_affine(const Affine& a,
                     const std::vector<int64_t>& in,
                     const std::vector<int64_t>& out) {
  Affine x = identity_affine();
  for (std::size_t d = 0; d < in.size(); ++d) {
    const double s = static_cast<double>(in[d]) / static_cast<double>(std::max<int64_t>(out[d], 1));
    el(x, d, d) = s;
    el(x, d, kH) = (s - 1.0) / 2.0;
  }
  return matmul(a, x);
}

// ---------------------------------------------------------------- flips and rotations

Spatial flip(const Spatial& in, const std::vector<int64_t>& axes) {
  const auto S = spatial_shape(in.data);
  std::vector<int64_t> dims;
  Affine X = identity_affine();
  for (auto a : axes) {
    dims.push_back(a + 1);
    el(X, a, a) = -1;
    el(X, a, kH) = static_cast<double>(S[a] - 1);
  }
  return {dims.empty() ? in.data : in.data.flip(dims), matmul(in.affine, X)};
}

Spatial rotate90(const Spatial& in, int k, int a0, int a1) {
  k = ((k % 4) + 4) % 4;
  Spatial cur = in;
  for (int step = 0; step < k; ++step) {
    const auto S = spatial_shape(cur.data);
    // One np.rot90 step: out[.., o0, .., o1, ..] = in[.., o1, .., S1 - 1 - o0, ..] on axes (a0,
    // a1).
    Affine X = identity_affine();
    el(X, a0, a0) = 0;
    el(X, a1, a1) = 0;
    el(X, a0, a1) = 1;
    el(X, a1, a0) = -1;
    el(X, a1, kH) = static_cast<double>(S[a1] - 1);
    cur = {at::rot90(cur.data, 1, {a0 + 1, a1 + 1}).contiguous(), matmul(cur.affine, X)};
  }
  return cur;
}

Affine create_rotate(int r, const std::vector<double>& angles) {
  Affine m = identity_affine();
  auto rot = [](int p, int q, double t) {
    Affine a = identity_affine();
    el(a, p, p) = std::cos(t);
    el(a, p, q) = -std::sin(t);
    el(a, q, p) = std::sin(t);
    el(a, q, q) = std::cos(t);
    return a;
  };
  if (r == 2) return rot(0, 1, angles.empty() ? 0.0 : angles[0]);
  const double ax = angles.size() > 0 ? angles[0] : 0, ay = angles.size() > 1 ? angles[1] : 0,
               az = angles.size() > 2 ? angles[2] : 0;
  Affine ry = identity_affine();
  el(ry, 0, 0) = std::cos(ay);
  el(ry, 0, 2) = std::sin(ay);
  el(ry, 2, 0) = -std::sin(ay);
  el(ry, 2, 2) = std::cos(ay);
  m = matmul(matmul(rot(1, 2, ax), ry), rot(0, 1, az));
  return m;
}

Affine create_shear(int r, const std::vector<double>& c) {
  Affine m = identity_affine();
  if (c.empty()) return m;
  if (r == 2) {
    el(m, 0, 1) = c.size() > 0 ? c[0] : 0;
    el(m, 1, 0) = c.size() > 1 ? c[1] : 0;
  } else {
    const int pos[6][2] = {{0, 1}, {0, 2}, {1, 0}, {1, 2}, {2, 0}, {2, 1}};
    for (std::size_t i = 0; i < c.size() && i < 6; ++i) el(m, pos[i][0], pos[i][1]) = c[i];
  }
  return m;
}

Affine create_translate(int r, const std::vector<double>& shift) {
  Affine m = identity_affine();
  for (int d = 0; d < r && d < static_cast<int>(shift.size()); ++d) el(m, d, kH) = shift[d];
  return m;
}

Affine create_scale(int r, const std::vector<double>& scale) {
  Affine m = identity_affine();
  for (int d = 0; d < r && d < static_cast<int>(scale.size()); ++d) el(m, d, d) = scale[d];
  return m;
}

namespace {

Affine centered(const Affine& aff,
                const std::vector<int64_t>& in,
                const std::vector<int64_t>& out) {
  std::vector<double> ci, co;
  for (std::size_t d = 0; d < in.size(); ++d) {
    ci.push_back((static_cast<double>(in[d]) - 1.0) / 2.0);
    co.push_back(-(static_cast<double>(out[d]) - 1.0) / 2.0);
  }
  const int r = static_cast<int>(in.size());
  return matmul(matmul(create_translate(r, ci), aff), create_translate(r, co));
}

}  // namespace

Spatial rotate(const Spatial& in,
               const std::vector<double>& angles,
               bool keep_size,
               const std::string& mode,
               const std::string& padding,
               bool align_corners) {
  const int r = static_cast<int>(in.data.dim()) - 1;
  const auto S = spatial_shape(in.data);
  const Affine R = create_rotate(r, angles);
  std::vector<int64_t> out = S;
  if (!keep_size) {
    const int nc = 1 << r;
    for (int d = 0; d < r; ++d) {
      double lo = 0, hi = 0;
      for (int c = 0; c < nc; ++c) {
        double v = 0;
        for (int k = 0; k < r; ++k)
          v += el(R, d, k) * (((c >> k) & 1) ? static_cast<double>(S[k]) : 0.0);
        lo = c == 0 ? v : std::min(lo, v);
        hi = c == 0 ? v : std::max(hi, v);
      }
      out[d] = static_cast<int64_t>(hi - lo + 0.5);
    }
  }
  const Affine M = centered(R, S, out);
  auto data =
      affine_resample(in.data, M, out, mode, padding, align_corners, at::kFloat, at::kFloat);
  return {data, matmul(in.affine, M)};
}

Spatial zoom(const Spatial& in,
             const std::vector<double>& factors,
             const std::string& mode,
             const std::string& padding_mode,
             std::optional<bool> align_corners,
             bool keep_size) {
  const auto S = spatial_shape(in.data);
  std::vector<int64_t> out(S.size());
  for (std::size_t d = 0; d < S.size(); ++d)
    out[d] = static_cast<int64_t>(std::floor(static_cast<double>(S[d]) * factors[d]));
  Spatial z{interpolate(in.data, out, mode, align_corners), resize_affine(in.affine, S, out)};
  if (!keep_size || out == S) return z;
  // ResizeWithPadOrCrop back to S: centre crop the axes that grew, then symmetric pad.
  std::vector<int64_t> roi(S.size());
  for (std::size_t d = 0; d < S.size(); ++d) roi[d] = std::min(S[d], out[d]);
  const auto start = croppad::center_crop_start(out, roi);
  std::vector<int64_t> end(S.size());
  for (std::size_t d = 0; d < S.size(); ++d) end[d] = start[d] + roi[d];
  auto data = croppad::crop_or_pad(z.data, start, end);
  Affine a = croppad::translate_affine(z.affine, start);
  const auto [before, after] = croppad::pad_amounts(roi, S, true);
  data = croppad::pad(data, before, after, padding_mode);
  std::vector<int64_t> neg(before.size());
  for (std::size_t d = 0; d < before.size(); ++d) neg[d] = -before[d];
  return {data, croppad::translate_affine(a, neg)};
}

at::Tensor grid_resample(const at::Tensor& img,
                         const at::Tensor& grid,
                         const std::string& mode,
                         const std::string& padding,
                         at::ScalarType compute) {
  const int64_t r = img.dim() - 1;
  const auto in = spatial_shape(img);
  std::vector<at::Tensor> comps;
  for (int64_t d = r - 1; d >= 0; --d) {
    comps.push_back(grid[d].to(at::kDouble) *
                    (2.0 / std::max<double>(2.0, static_cast<double>(in[d]))));
  }
  auto g = at::stack(comps, -1).unsqueeze(0).to(compute);
  return at::grid_sampler(img.unsqueeze(0).to(compute), g, interp_code(mode), padding_code(padding),
                          false)[0];
}

Spatial affine_grid_resample(const Spatial& in,
                             const Affine& aff,
                             const std::vector<int64_t>& out,
                             const std::string& mode,
                             const std::string& padding,
                             bool align_corners,
                             at::ScalarType compute) {
  const int r = static_cast<int>(in.data.dim()) - 1;
  const auto S = spatial_shape(in.data);
  // Centred output grid, mapped by aff: input-centred coordinates.
  std::vector<at::Tensor> axes;
  for (int d = 0; d < r; ++d) {
    const double half = (static_cast<double>(out[d]) - 1.0) / 2.0;
    auto ax = at::linspace(-half, half, out[d], at::kDouble);
    if (align_corners && out[d] > 1)
      ax = ax * (static_cast<double>(out[d]) / (static_cast<double>(out[d]) - 1.0));
    axes.push_back(ax);
  }
  auto mesh = at::meshgrid(axes, "ij");
  std::vector<at::Tensor> g;
  for (int i = 0; i < r; ++i) {
    auto v = at::full(mesh[0].sizes(), el(aff, i, kH), at::kDouble);
    for (int k = 0; k < r; ++k) v = v + el(aff, i, k) * mesh[k];
    g.push_back(v);
  }
  at::Tensor data;
  if (!align_corners) {
    data = grid_resample(in.data, at::stack(g), mode, padding, compute);
  } else {
    std::vector<at::Tensor> idx;
    for (int d = 0; d < r; ++d) {
      const double n = static_cast<double>(S[d]);
      idx.push_back(g[d] * (n - 1.0) / n + (n - 1.0) / 2.0);
    }
    data = sample_at_indices(in.data, at::stack(idx), mode, padding, true, compute);
  }
  return {data.to(at::kFloat), matmul(in.affine, centered(aff, S, out))};
}

}  // namespace barton::transforms::spatial
