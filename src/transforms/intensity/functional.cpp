#include "transforms/intensity/functional.h"

#include <cmath>

#include <ATen/ATen.h>

#include "core/errors.h"

namespace barton::transforms::intensity {

at::Tensor scale_intensity_range(const at::Tensor& img,
                                 double a_min,
                                 double a_max,
                                 std::optional<double> b_min,
                                 std::optional<double> b_max,
                                 bool clip) {
  if (a_max - a_min == 0.0) {
    // MONAI warns "Divide by zero" and only shifts; no clip, no cast.
    auto out = img - a_min;
    return b_min ? out + *b_min : out;
  }
  auto x = (img.to(at::kFloat) - a_min) / (a_max - a_min);
  if (b_min && b_max) x = x * (*b_max - *b_min) + *b_min;
  if (clip) {
    BARTON_CHECK(b_min || b_max, "ScaleIntensityRanged: clip needs b_min or b_max");
    x = at::clamp(x, b_min ? c10::optional<at::Scalar>(*b_min) : c10::nullopt,
                  b_max ? c10::optional<at::Scalar>(*b_max) : c10::nullopt);
  }
  return x;
}

at::Tensor rescale(const at::Tensor& img, std::optional<double> minv, std::optional<double> maxv) {
  auto x = img.to(at::kFloat);
  const double mina = x.min().item<double>(), maxa = x.max().item<double>();
  if (mina == maxa) return minv ? x * *minv : x;
  auto norm = (x - mina) / (maxa - mina);
  if (!minv || !maxv) return norm;
  return norm * (*maxv - *minv) + *minv;
}

namespace {

at::Tensor normalize_one(at::Tensor x,
                         std::optional<double> sub,
                         std::optional<double> div,
                         bool nonzero) {
  x = x.to(at::kFloat).clone();
  if (nonzero) {
    const auto mask = x != 0;
    if (!mask.any().item<bool>()) return x;
    const auto vals = x.masked_select(mask);
    const double s = sub ? *sub : vals.mean().item<double>();
    double d = div ? *div : vals.std(/*unbiased=*/false).item<double>();
    if (d == 0.0) d = 1.0;
    x.masked_scatter_(mask, (vals - s) / d);
    return x;
  }
  const double s = sub ? *sub : x.mean().item<double>();
  double d = div ? *div : x.std(/*unbiased=*/false).item<double>();
  if (d == 0.0) d = 1.0;
  return (x - s) / d;
}

}  // namespace

at::Tensor normalize_intensity(const at::Tensor& img,
                               const std::vector<double>& subtrahend,
                               const std::vector<double>& divisor,
                               bool nonzero,
                               bool channel_wise) {
  if (!channel_wise) {
    BARTON_CHECK(subtrahend.size() <= 1 && divisor.size() <= 1,
                 "NormalizeIntensityd: per-channel subtrahend/divisor need channel_wise=true");
    return normalize_one(img, subtrahend.empty() ? std::nullopt : std::optional(subtrahend[0]),
                         divisor.empty() ? std::nullopt : std::optional(divisor[0]), nonzero);
  }
  const int64_t c = img.size(0);
  BARTON_CHECK(subtrahend.empty() || static_cast<int64_t>(subtrahend.size()) == c,
               "NormalizeIntensityd: subtrahend has {} values for {} channels", subtrahend.size(),
               c);
  BARTON_CHECK(divisor.empty() || static_cast<int64_t>(divisor.size()) == c,
               "NormalizeIntensityd: divisor has {} values for {} channels", divisor.size(), c);
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < c; ++i) {
    auto ch =
        normalize_one(img[i], subtrahend.empty() ? std::nullopt : std::optional(subtrahend[i]),
                      divisor.empty() ? std::nullopt : std::optional(divisor[i]), nonzero);
    // MONAI writes each channel back into the input tensor: integer inputs are truncated.
    if (!at::isFloatingType(img.scalar_type())) ch = ch.to(img.scalar_type()).to(at::kFloat);
    out.push_back(ch);
  }
  return at::stack(out);
}

at::Tensor threshold_intensity(const at::Tensor& img, double threshold, bool above, double cval) {
  const auto mask = above ? img > threshold : img < threshold;
  return at::where(mask, img, at::scalar_tensor(cval, img.options()));
}

double percentile(const at::Tensor& values, double q) {
  BARTON_CHECK(q >= 0 && q <= 100, "percentile must be in [0, 100], got {}", q);
  auto v = values.reshape(-1).to(at::kDouble);
  const int64_t n = v.numel();
  BARTON_CHECK(n > 0, "percentile of an empty tensor");
  const double r = q / 100.0 * static_cast<double>(n - 1);
  const auto i = static_cast<int64_t>(std::floor(r));
  const double frac = r - static_cast<double>(i);
  // kthvalue is 1-based and avoids a full sort.
  const double lo = std::get<0>(at::kthvalue(v, i + 1)).item<double>();
  if (frac == 0.0 || i + 1 >= n) return lo;
  const double hi = std::get<0>(at::kthvalue(v, i + 2)).item<double>();
  return lo + frac * (hi - lo);
}

at::Tensor adjust_contrast(const at::Tensor& input,
                           double gamma,
                           bool invert_image,
                           bool retain_stats) {
  auto img = at::isFloatingType(input.scalar_type()) ? input : input.to(at::kFloat);
  if (invert_image) img = -img;
  double mn = 0, sd = 0;
  if (retain_stats) {
    mn = img.mean().item<double>();
    sd = img.std(/*unbiased=*/true).item<double>();
  }
  const auto mn0 = img.min();
  const auto range = img.max() - mn0;
  auto ret = ((img - mn0) / (range + 1e-7)).pow(gamma) * range + mn0;
  if (retain_stats) {
    ret = ret - ret.mean();
    ret = ret / (ret.std(/*unbiased=*/true) + 1e-8);
    ret = sd * ret + mn;
  }
  if (invert_image) ret = -ret;
  return ret;
}

at::Tensor interp(const at::Tensor& img,
                  const std::vector<double>& xp,
                  const std::vector<double>& fp) {
  BARTON_CHECK(xp.size() == fp.size() && xp.size() >= 2,
               "interp needs at least two control points");
  auto x = img.to(at::kDouble);
  auto xs = at::tensor(xp, at::kDouble), fs = at::tensor(fp, at::kDouble);
  const int64_t n = static_cast<int64_t>(xp.size());
  auto seg = (at::searchsorted(xs, x.contiguous(), /*out_int32=*/false, /*right=*/false) - 1)
                 .clamp(0, n - 2);
  auto x0 = xs.index_select(0, seg.reshape(-1)).reshape(seg.sizes());
  auto x1 = xs.index_select(0, (seg + 1).reshape(-1)).reshape(seg.sizes());
  auto f0 = fs.index_select(0, seg.reshape(-1)).reshape(seg.sizes());
  auto f1 = fs.index_select(0, (seg + 1).reshape(-1)).reshape(seg.sizes());
  auto slope = (f1 - f0) / (x1 - x0);
  slope = at::where(x1 == x0, at::zeros_like(slope), slope);
  auto out = f0 + slope * (x - x0);
  out = at::where(x < xp.front(), at::full_like(out, fp.front()), out);
  out = at::where(x > xp.back(), at::full_like(out, fp.back()), out);
  return out.to(img.scalar_type());
}

at::Tensor gaussian_kernel_erf(double sigma) {
  const float s = static_cast<float>(sigma);  // MONAI holds sigma as a float32 tensor
  const auto tail = static_cast<int64_t>(std::max(static_cast<double>(s) * 4.0, 0.5) + 0.5);
  std::vector<double> k;
  if (s == 0.0f) {
    k.assign(2 * tail + 1, 0.0);
    k[tail] = 1.0;
  } else {
    const double t = 0.70710678 / std::abs(static_cast<double>(s));
    for (int64_t x = -tail; x <= tail; ++x) {
      k.push_back(std::max(0.0, 0.5 * (std::erf(t * (x + 0.5)) - std::erf(t * (x - 0.5)))));
    }
  }
  return at::tensor(k, at::kDouble).to(at::kFloat);
}

at::Tensor gaussian_smooth(const at::Tensor& img, const std::vector<double>& sigma) {
  auto x = img.to(at::kFloat).contiguous();
  const int64_t nd = x.dim() - 1;
  BARTON_CHECK(static_cast<int64_t>(sigma.size()) == nd,
               "gaussian_smooth: {} sigmas for {} spatial dims", sigma.size(), nd);
  for (int64_t d = 0; d < nd; ++d) {
    const auto k = gaussian_kernel_erf(sigma[d]);
    const int64_t len = k.numel(), pad = (len - 1) / 2;
    // Move axis d+1 last, correlate with a 1-D conv over rows, move it back.
    auto moved = x.movedim(d + 1, -1).contiguous();
    const auto shape = moved.sizes().vec();
    auto rows = moved.reshape({-1, 1, shape.back()});
    rows = at::constant_pad_nd(rows, {pad, pad}, 0.0);
    auto out = at::conv1d(rows, k.view({1, 1, len}));
    x = out.reshape(shape).movedim(-1, d + 1);
  }
  return x.contiguous();
}

}  // namespace barton::transforms::intensity
