#include "metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>

#include "core/errors.h"
#include "core/strings.h"

namespace barton::metrics {

namespace {

void check_shapes(const at::Tensor& p, const at::Tensor& y, const char* who) {
  BARTON_CHECK(p.sizes() == y.sizes(), "{}: y_pred has shape [{}] but y has [{}]", who,
               fmt::join(p.sizes(), ", "), fmt::join(y.sizes(), ", "));
  BARTON_CHECK(p.dim() >= 3, "{}: expected [B, C, *spatial] one-hot tensors", who);
}

std::pair<at::Tensor, at::Tensor> select(const at::Tensor& p,
                                         const at::Tensor& y,
                                         bool include_background) {
  if (include_background || p.size(1) == 1) return {p.to(at::kBool), y.to(at::kBool)};
  return {p.slice(1, 1).to(at::kBool), y.slice(1, 1).to(at::kBool)};
}

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// 1-D squared distance transform (Felzenszwalb & Huttenlocher) in place over f[0..n), stride s.
void dt1d(double* f,
          int64_t n,
          int64_t stride,
          double w2,
          std::vector<double>& d,
          std::vector<int64_t>& v,
          std::vector<double>& z) {
  d.resize(n);
  v.resize(n);
  z.resize(n + 1);
  int64_t k = 0;
  int64_t first = -1;
  for (int64_t q = 0; q < n; ++q) {
    if (std::isfinite(f[q * stride])) {
      first = q;
      break;
    }
  }
  if (first < 0) return;  // no finite values on this line
  v[0] = first;
  z[0] = -kInf;
  z[1] = kInf;
  for (int64_t q = first + 1; q < n; ++q) {
    const double fq = f[q * stride];
    if (!std::isfinite(fq)) continue;
    double s;
    while (true) {
      const int64_t p = v[k];
      s = ((fq + w2 * q * q) - (f[p * stride] + w2 * p * p)) / (2.0 * w2 * (q - p));
      if (s <= z[k] && k > 0) {
        --k;
        continue;
      }
      break;
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = kInf;
  }
  k = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[k + 1] < q) ++k;
    const double dq = q - v[k];
    d[q] = w2 * dq * dq + f[v[k] * stride];
  }
  for (int64_t q = 0; q < n; ++q) f[q * stride] = d[q];
}

// Values of `dist` at the voxels of `mask` (flattened).
at::Tensor at_voxels(const at::Tensor& dist, const at::Tensor& mask) {
  return dist.masked_select(mask);
}

// MONAI's get_surface_distance(pred_edges, gt_edges): distances from each pred edge voxel to the
// nearest gt edge voxel; gt empty -> inf for each pred edge; pred empty -> inf for each gt edge.
at::Tensor surface_distances(const at::Tensor& pe,
                             const at::Tensor& ge,
                             const std::vector<double>& spacing) {
  if (!ge.any().item<bool>()) return at::full({pe.sum().item<int64_t>()}, kInf, at::kDouble);
  if (!pe.any().item<bool>()) return at::full({ge.sum().item<int64_t>()}, kInf, at::kDouble);
  return at_voxels(distance_to(ge, spacing), pe);
}

double percentile_of(const at::Tensor& v, double q) {
  // numpy's "linear" percentile, including its lerp, so infinities give the same NaN / inf.
  auto s = std::get<0>(v.sort());
  const int64_t n = s.numel();
  const double r = q / 100.0 * static_cast<double>(n - 1);
  const auto i = static_cast<int64_t>(std::floor(r));
  const double t = r - static_cast<double>(i);
  const double a = s[i].item<double>();
  const double b = s[std::min(i + 1, n - 1)].item<double>();
  const double diff = b - a;
  double out = a + diff * t;
  if (t >= 0.5) out = b - diff * (1 - t);
  return out;
}

}  // namespace

at::Tensor distance_to(const at::Tensor& sites_in, const std::vector<double>& spacing_in) {
  const auto sites = sites_in.to(at::kBool).contiguous();
  const int64_t r = sites.dim();
  std::vector<double> spacing = spacing_in;
  spacing.resize(r, 1.0);
  auto f =
      at::where(sites, at::zeros({}, at::kDouble), at::full({}, kInf, at::kDouble)).contiguous();
  if (!sites.any().item<bool>()) return f;
  double* data = f.data_ptr<double>();
  const auto sizes = f.sizes().vec();
  const auto strides = f.strides().vec();
  std::vector<double> d;
  std::vector<int64_t> v;
  std::vector<double> z;
  for (int64_t ax = 0; ax < r; ++ax) {
    const int64_t n = sizes[ax], stride = strides[ax];
    const int64_t total = f.numel() / n;
    const double w2 = spacing[ax] * spacing[ax];
    // Enumerate every line along `ax`.
    for (int64_t line = 0; line < total; ++line) {
      int64_t rem = line, offset = 0;
      for (int64_t d2 = r - 1; d2 >= 0; --d2) {
        if (d2 == ax) continue;
        const int64_t idx = rem % sizes[d2];
        rem /= sizes[d2];
        offset += idx * strides[d2];
      }
      dt1d(data + offset, n, stride, w2, d, v, z);
    }
  }
  return f.sqrt();
}

at::Tensor edges(const at::Tensor& mask_in) {
  const auto mask = mask_in.to(at::kBool);
  const int64_t r = mask.dim();
  auto eroded = mask.clone();
  for (int64_t d = 0; d < r; ++d) {
    const int64_t n = mask.size(d);
    auto lo = at::zeros_like(mask), hi = at::zeros_like(mask);
    if (n > 1) {
      lo.narrow(d, 1, n - 1).copy_(mask.narrow(d, 0, n - 1));  // neighbour at i-1
      hi.narrow(d, 0, n - 1).copy_(mask.narrow(d, 1, n - 1));  // neighbour at i+1
    }
    eroded = eroded & lo & hi;
  }
  return mask & eroded.logical_not();
}

at::Tensor dice(const at::Tensor& y_pred,
                const at::Tensor& y_in,
                bool include_background,
                bool ignore_empty) {
  check_shapes(y_pred, y_in, "DiceMetric");
  auto [p, y] = select(y_pred, y_in, include_background);
  std::vector<int64_t> axes;
  for (int64_t d = 2; d < p.dim(); ++d) axes.push_back(d);
  const auto pd = p.to(at::kDouble), yd = y.to(at::kDouble);
  const auto inter = (pd * yd).sum(axes), ys = yd.sum(axes), ps = pd.sum(axes);
  auto f = 2.0 * inter / (ys + ps);
  const auto empty_gt = ys == 0;
  const auto empty_fill = ignore_empty ? at::full_like(f, kNaN)
                                       : at::where(ps == 0, at::ones_like(f), at::zeros_like(f));
  return at::where(empty_gt, empty_fill, f);
}

at::Tensor hausdorff(const at::Tensor& y_pred,
                     const at::Tensor& y_in,
                     bool include_background,
                     std::optional<double> percentile,
                     bool directed,
                     const std::vector<double>& spacing) {
  check_shapes(y_pred, y_in, "HausdorffDistanceMetric");
  auto [p, y] = select(y_pred, y_in, include_background);
  auto out = at::empty({p.size(0), p.size(1)}, at::kDouble);
  auto one = [&](const at::Tensor& a, const at::Tensor& b) {
    const auto dist = surface_distances(a, b, spacing);
    if (dist.numel() == 0) return kNaN;
    return percentile ? percentile_of(dist, *percentile) : dist.max().item<double>();
  };
  for (int64_t b = 0; b < p.size(0); ++b) {
    for (int64_t c = 0; c < p.size(1); ++c) {
      const auto pe = edges(p[b][c]), ge = edges(y[b][c]);
      double d1 = one(pe, ge);
      if (!directed) d1 = std::max(d1, one(ge, pe));
      out[b][c] = d1;
    }
  }
  return out;
}

at::Tensor surface_distance(const at::Tensor& y_pred,
                            const at::Tensor& y_in,
                            bool include_background,
                            bool symmetric,
                            const std::vector<double>& spacing) {
  check_shapes(y_pred, y_in, "SurfaceDistanceMetric");
  auto [p, y] = select(y_pred, y_in, include_background);
  auto out = at::empty({p.size(0), p.size(1)}, at::kDouble);
  for (int64_t b = 0; b < p.size(0); ++b) {
    for (int64_t c = 0; c < p.size(1); ++c) {
      const auto pe = edges(p[b][c]), ge = edges(y[b][c]);
      auto dist = surface_distances(pe, ge, spacing);
      if (symmetric) dist = at::cat({dist, surface_distances(ge, pe, spacing)});
      out[b][c] = dist.numel() == 0 ? kNaN : dist.mean().item<double>();
    }
  }
  return out;
}

at::Tensor surface_dice(const at::Tensor& y_pred,
                        const at::Tensor& y_in,
                        const std::vector<double>& thresholds,
                        bool include_background,
                        const std::vector<double>& spacing) {
  check_shapes(y_pred, y_in, "SurfaceDiceMetric");
  auto [p, y] = select(y_pred, y_in, include_background);
  BARTON_CHECK(static_cast<int64_t>(thresholds.size()) == p.size(1),
               "SurfaceDiceMetric: {} class_thresholds for {} classes", thresholds.size(),
               p.size(1));
  auto out = at::empty({p.size(0), p.size(1)}, at::kDouble);
  for (int64_t b = 0; b < p.size(0); ++b) {
    for (int64_t c = 0; c < p.size(1); ++c) {
      const auto pe = edges(p[b][c]), ge = edges(y[b][c]);
      const auto d1 = surface_distances(pe, ge, spacing), d2 = surface_distances(ge, pe, spacing);
      const int64_t complete =
          (pe.any().item<bool>() || ge.any().item<bool>()) ? d1.numel() + d2.numel() : 0;
      if (!pe.any().item<bool>() && !ge.any().item<bool>()) {
        out[b][c] = kNaN;
        continue;
      }
      const auto correct =
          (d1 <= thresholds[c]).sum().item<int64_t>() + (d2 <= thresholds[c]).sum().item<int64_t>();
      out[b][c] =
          complete == 0 ? kNaN : static_cast<double>(correct) / static_cast<double>(complete);
    }
  }
  return out;
}

at::Tensor confusion_counts(const at::Tensor& y_pred,
                            const at::Tensor& y_in,
                            bool include_background) {
  check_shapes(y_pred, y_in, "ConfusionMatrixMetric");
  auto [p, y] = select(y_pred, y_in, include_background);
  std::vector<int64_t> axes;
  for (int64_t d = 2; d < p.dim(); ++d) axes.push_back(d);
  const auto pd = p.to(at::kDouble), yd = y.to(at::kDouble);
  const auto tp = (pd * yd).sum(axes);
  const auto tn = ((1 - pd) * (1 - yd)).sum(axes);
  const auto pos = yd.sum(axes);
  double total = 1;
  for (auto a : axes) total *= static_cast<double>(p.size(a));
  const auto neg = total - pos;
  const auto fn = pos - tp, fp = neg - tn;
  return at::stack({tp, fp, tn, fn}, -1);
}

at::Tensor confusion_metric(const at::Tensor& counts, const std::string& raw) {
  const auto tp = counts.select(-1, 0), fp = counts.select(-1, 1), tn = counts.select(-1, 2),
             fn = counts.select(-1, 3);
  const auto p = tp + fn, n = fp + tn;
  auto div = [](const at::Tensor& a, const at::Tensor& b) {
    return at::where(b == 0, at::full_like(a, kNaN), a / b);
  };
  const std::string name = to_lower(raw);
  if (name == "sensitivity" || name == "recall" || name == "hit_rate" ||
      name == "true_positive_rate" || name == "tpr")
    return div(tp, p);
  if (name == "specificity" || name == "selectivity" || name == "true_negative_rate" ||
      name == "tnr")
    return div(tn, n);
  if (name == "precision" || name == "positive_predictive_value" || name == "ppv")
    return div(tp, tp + fp);
  if (name == "negative_predictive_value" || name == "npv") return div(tn, tn + fn);
  if (name == "miss_rate" || name == "false_negative_rate" || name == "fnr") return div(fn, p);
  if (name == "fall_out" || name == "false_positive_rate" || name == "fpr") return div(fp, n);
  if (name == "false_discovery_rate" || name == "fdr") return div(fp, fp + tp);
  if (name == "false_omission_rate" || name == "for") return div(fn, fn + tn);
  if (name == "threat_score" || name == "critical_success_index" || name == "ts" || name == "csi")
    return div(tp, tp + fn + fp);
  if (name == "accuracy" || name == "acc") return div(tp + tn, p + n);
  if (name == "balanced_accuracy" || name == "ba") return (div(tp, p) + div(tn, n)) / 2;
  if (name == "f1_score" || name == "f1") return div(2 * tp, 2 * tp + fn + fp);
  if (name == "matthews_correlation_coefficient" || name == "mcc") {
    return div(tp * tn - fp * fn, ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).sqrt());
  }
  if (name == "fowlkes_mallows_index" || name == "fm")
    return (div(tp, tp + fp) * div(tp, p)).sqrt();
  if (name == "informedness" || name == "bookmaker_informedness" || name == "bm")
    return div(tp, p) + div(tn, n) - 1;
  if (name == "markedness" || name == "deltap" || name == "mk")
    return div(tp, tp + fp) + div(tn, tn + fn) - 1;
  throw Error("unknown confusion matrix metric '" + raw + "'");
}

at::Tensor accuracy(const at::Tensor& y_pred, const at::Tensor& y) {
  check_shapes(y_pred, y, "Accuracy");
  const auto same = (y_pred.argmax(1) == y.argmax(1)).to(at::kDouble);
  return same.reshape({same.size(0), -1}).mean(1);
}

at::Tensor reduce(const at::Tensor& f, const std::string& reduction) {
  const auto nans = at::isnan(f);
  const auto filled = at::where(nans, at::zeros_like(f), f);
  const auto counts = nans.logical_not().to(at::kDouble);
  auto mean = [&](std::vector<int64_t> dims) {
    const auto s = dims.empty() ? filled.sum() : filled.sum(dims);
    const auto n = dims.empty() ? counts.sum() : counts.sum(dims);
    return at::where(n > 0, s / n, at::zeros_like(s));  // MONAI: an all-NaN buffer reduces to 0
  };
  if (reduction == "none") return f;
  if (reduction == "mean") {
    // MONAI: the mean over channels per batch row, then over the rows that have a value.
    if (f.dim() < 2) return mean({});
    const auto row_sum = filled.sum(1), row_n = counts.sum(1);
    const auto row_mean = at::where(row_n > 0, row_sum / row_n, at::zeros_like(row_sum));
    const auto rows = (row_n > 0).to(at::kDouble);
    const auto n = rows.sum(0);
    return at::where(n > 0, (row_mean * rows).sum(0) / n, at::zeros_like(n));
  }
  if (reduction == "sum") return filled.sum();
  if (reduction == "mean_batch") return mean({0});
  if (reduction == "sum_batch") return filled.sum(0);
  if (reduction == "mean_channel") return mean({1});
  if (reduction == "sum_channel") return filled.sum(1);
  throw Error("unknown reduction '" + reduction +
              "' (none, mean, sum, mean_batch, sum_batch, mean_channel, sum_channel)");
}

}  // namespace barton::metrics
