#include "engine/inferer.h"

#include <cmath>

#include <torch/torch.h>

#include "core/errors.h"

namespace barton::engine {

std::vector<std::vector<int64_t>> window_starts(const std::vector<int64_t>& image,
                                                const std::vector<int64_t>& roi,
                                                const std::vector<double>& overlap) {
  const std::size_t r = image.size();
  std::vector<std::vector<int64_t>> per_axis(r);
  for (std::size_t d = 0; d < r; ++d) {
    const double ov = overlap.size() == 1 ? overlap[0] : overlap.at(d);
    int64_t interval = roi[d] == image[d]
                           ? roi[d]
                           : static_cast<int64_t>(static_cast<double>(roi[d]) * (1.0 - ov));
    if (interval <= 0) interval = 1;
    const auto num = static_cast<int64_t>(
        std::ceil(static_cast<double>(image[d]) / static_cast<double>(interval)));
    int64_t scan = 1;
    for (int64_t i = 0; i < num; ++i) {
      if (i * interval + roi[d] >= image[d]) {
        scan = i + 1;
        break;
      }
    }
    for (int64_t i = 0; i < scan; ++i) {
      int64_t s = i * interval;
      s -= std::max<int64_t>(s + roi[d] - image[d], 0);
      per_axis[d].push_back(s);
    }
  }
  std::vector<std::vector<int64_t>> out = {{}};
  for (std::size_t d = 0; d < r; ++d) {
    std::vector<std::vector<int64_t>> next;
    for (const auto& prefix : out) {
      for (auto s : per_axis[d]) {
        auto p = prefix;
        p.push_back(s);
        next.push_back(p);
      }
    }
    out = std::move(next);
  }
  return out;
}

torch::Tensor importance_map(const std::vector<int64_t>& roi,
                             const std::string& mode,
                             const std::vector<double>& sigma_scale) {
  if (mode == "constant") return torch::ones(roi, torch::kFloat);
  BARTON_CHECK(mode == "gaussian", "sliding window mode must be constant or gaussian, got '{}'",
               mode);
  torch::Tensor map;
  for (std::size_t i = 0; i < roi.size(); ++i) {
    const double sigma = static_cast<double>(roi[i]) *
                         (sigma_scale.size() == 1 ? sigma_scale[0] : sigma_scale.at(i));
    auto x = torch::arange(-(static_cast<double>(roi[i]) - 1) / 2.0,
                           (static_cast<double>(roi[i]) - 1) / 2.0 + 1, 1.0, torch::kFloat);
    x = torch::exp(x.pow(2) / (-2.0 * sigma * sigma));
    map = i == 0 ? x : map.unsqueeze(-1) * x;
  }
  const double mn = std::max(map.min().item<double>(), 1e-3);
  return map.clamp_min(mn);
}

namespace {

using A = ArgType;
torch::Tensor sliding_window_once(const torch::Tensor& inputs,
                                  const SlidingWindowOptions& o,
                                  const Predictor& predictor);
}  // namespace

torch::Tensor sliding_window_inference(const torch::Tensor& inputs,
                                       const SlidingWindowOptions& o,
                                       const Predictor& predictor) {
  auto out = sliding_window_once(inputs, o, predictor);
  if (!o.tta_flips) return out;
  for (int64_t d = 2; d < inputs.dim(); ++d) {
    out.add_(sliding_window_once(inputs.flip({d}), o, predictor).flip({d}));
  }
  return out.div_(static_cast<double>(inputs.dim() - 1));
}

namespace {

/// out /= the sum of the windows' importance weights at each voxel (MONAI's count map), one slab
/// of roi[0] along the first spatial axis at a time: a whole-volume count map would cost as much as
/// one output channel (105 MB for a 512x512x100 CT). Each voxel's sum is taken in window order,
/// as one map would take it, so the values are the same.
void normalise_by_weight_sum(torch::Tensor& out,
                             const torch::Tensor& weight,
                             const std::vector<std::vector<int64_t>>& starts,
                             const std::vector<int64_t>& roi) {
  const auto r = static_cast<int64_t>(roi.size());
  const int64_t depth = out.size(2);
  for (int64_t z0 = 0; z0 < depth; z0 += roi[0]) {
    const int64_t z1 = std::min(depth, z0 + roi[0]);
    std::vector<int64_t> shape = {1, 1, z1 - z0};
    for (int64_t d = 1; d < r; ++d) shape.push_back(out.size(2 + d));
    auto count = torch::zeros(shape, out.options());
    for (const auto& s : starts) {
      const int64_t a = std::max(z0, s[0]), b = std::min(z1, s[0] + roi[0]);
      if (a >= b) continue;
      auto dst = count.narrow(2, a - z0, b - a);
      for (int64_t d = 1; d < r; ++d) dst = dst.narrow(2 + d, s[d], roi[d]);
      dst.add_(weight.narrow(0, a - s[0], b - a));
    }
    out.narrow(2, z0, z1 - z0).div_(count);
  }
}

torch::Tensor sliding_window_once(const torch::Tensor& inputs,
                                  const SlidingWindowOptions& o,
                                  const Predictor& predictor) {
  const int64_t r = inputs.dim() - 2;
  BARTON_CHECK(r == 2 || r == 3,
               "sliding window inference needs [B, C, H, W] or [B, C, D, H, W] inputs");
  std::vector<int64_t> image(r), roi(r);
  for (int64_t d = 0; d < r; ++d) {
    const int64_t want = d < static_cast<int64_t>(o.roi_size.size()) ? o.roi_size[d] : -1;
    roi[d] = want > 0 ? want : inputs.size(2 + d);
  }
  // Pad inputs smaller than the window (diff // 2 before, the rest after).
  std::vector<int64_t> pad, before(r);
  for (int64_t d = r - 1; d >= 0; --d) {
    const int64_t diff = std::max<int64_t>(roi[d] - inputs.size(2 + d), 0);
    before[d] = diff / 2;
    pad.push_back(diff / 2);
    pad.push_back(diff - diff / 2);
  }
  torch::Tensor x = inputs;
  bool padded = false;
  for (auto p : pad) padded = padded || p > 0;
  if (padded) {
    if (o.padding_mode == "constant")
      x = torch::constant_pad_nd(inputs, pad, o.cval);
    else {
      namespace F = torch::nn::functional;
      F::PadFuncOptions::mode_t mode = torch::kReflect;
      if (o.padding_mode == "replicate")
        mode = torch::kReplicate;
      else if (o.padding_mode == "circular")
        mode = torch::kCircular;
      x = F::pad(inputs, F::PadFuncOptions(pad).mode(mode));
    }
  }
  for (int64_t d = 0; d < r; ++d) image[d] = x.size(2 + d);
  const auto starts = window_starts(image, roi, o.overlap);
  const auto weight = importance_map(roi, o.mode, o.sigma_scale).to(x.device());
  torch::Tensor out;
  const int64_t B = x.size(0);
  for (std::size_t w0 = 0; w0 < starts.size(); w0 += static_cast<std::size_t>(o.sw_batch_size)) {
    const std::size_t w1 = std::min(starts.size(), w0 + static_cast<std::size_t>(o.sw_batch_size));
    std::vector<torch::Tensor> windows;
    for (std::size_t w = w0; w < w1; ++w) {
      auto v = x;
      for (int64_t d = 0; d < r; ++d) v = v.narrow(2 + d, starts[w][d], roi[d]);
      windows.push_back(v);
    }
    const auto batch = torch::cat(windows, 0);  // [n * B, C, *roi]
    auto pred = predictor(batch);
    BARTON_CHECK(pred.dim() == r + 2, "the predictor must return [B, C, *spatial]");
    for (int64_t d = 0; d < r; ++d) {
      BARTON_CHECK(pred.size(2 + d) == roi[d],
                   "the predictor changed the window's spatial size ({} -> {})", roi[d],
                   pred.size(2 + d));
    }
    if (!out.defined()) {
      std::vector<int64_t> shape = {B, pred.size(1)};
      shape.insert(shape.end(), image.begin(), image.end());
      out = torch::zeros(shape, pred.options().dtype(torch::kFloat));
    }
    const auto weighted = pred.to(torch::kFloat) * weight;
    for (std::size_t w = w0; w < w1; ++w) {
      auto dst = out;
      for (int64_t d = 0; d < r; ++d) dst = dst.narrow(2 + d, starts[w][d], roi[d]);
      dst.add_(weighted.narrow(0, static_cast<int64_t>(w - w0) * B, B));
    }
  }
  normalise_by_weight_sum(out, weight, starts, roi);
  for (int64_t d = 0; d < r; ++d) out = out.narrow(2 + d, before[d], inputs.size(2 + d));
  return out.contiguous();
}

class SimpleInferer final : public Inferer {
 public:
  std::string name() const override { return "SimpleInferer"; }
  torch::Tensor infer(const torch::Tensor& inputs, const Predictor& predictor) const override {
    return predictor(inputs);
  }
};

class SlidingWindowInferer final : public Inferer {
 public:
  explicit SlidingWindowInferer(SlidingWindowOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "SlidingWindowInferer"; }
  torch::Tensor infer(const torch::Tensor& inputs, const Predictor& predictor) const override {
    return sliding_window_inference(inputs, o_, predictor);
  }

 private:
  SlidingWindowOptions o_;
};

std::vector<double> doubles(const ConfigNode& a, const char* k, std::vector<double> def) {
  if (a.at(k).is_null()) return def;
  const auto v = a.at(k);
  return v.is_array() ? v.as<std::vector<double>>() : std::vector<double>{v.as<double>()};
}

ComponentSpec simple_inferer_spec() {
  return ComponentSpec{"SimpleInferer", "Runs the network on the whole input.", {}};
}

ComponentSpec sliding_window_inferer_spec() {
  return ComponentSpec{
      "SlidingWindowInferer",
      "Patch-wise inference with overlap and blending.",
      {req("roi_size", A::kInts,
           "Window size per spatial axis; a non-positive entry uses the input's size."),
       opt("sw_batch_size", A::kInt, "1", "Windows run through the network per forward pass."),
       opt("overlap", A::kFloats, "0.25",
           "Overlap of neighbouring windows as a fraction of the window, one value or per axis."),
       opt("mode", A::kString, "\"constant\"", "constant or gaussian."),
       opt("sigma_scale", A::kFloats, "0.125",
           "Gaussian sigma as a fraction of the window size (mode gaussian), one or per axis."),
       opt("padding_mode", A::kString, "\"constant\"",
           "Padding of inputs smaller than the window: constant, reflect, replicate or circular."),
       opt("cval", A::kFloat, "0.0", "Fill value of constant padding."),
       opt("sw_device", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("device", A::kString, "null", "Accepted for MONAI compatibility; ignored."),
       opt("progress", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("cache_roi_weight_map", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("cpu_thresh", A::kInt, "null", "Accepted for MONAI compatibility; ignored."),
       opt("buffer_steps", A::kInt, "null", "Accepted for MONAI compatibility; ignored."),
       opt("buffer_dim", A::kInt, "-1", "Accepted for MONAI compatibility; ignored."),
       opt("with_coord", A::kBool, "false", "Accepted for MONAI compatibility; ignored."),
       opt("tta_flips", A::kBool, "false",
           "Barton: also predict on flipped inputs and average (test-time augmentation).")}};
}

}  // namespace

void register_inferers(InfererRegistry& r) {
  r.add(simple_inferer_spec(),
        [](const ConfigNode&, const BuildContext&) { return std::make_unique<SimpleInferer>(); });
  r.add(sliding_window_inferer_spec(), [](const ConfigNode& a, const BuildContext&) {
    SlidingWindowOptions o;
    const auto roi = a.at("roi_size");
    o.roi_size =
        roi.is_array() ? roi.as<std::vector<int64_t>>() : std::vector<int64_t>{roi.as<int64_t>()};
    o.sw_batch_size = a.require<int64_t>("sw_batch_size");
    if (o.sw_batch_size < 1) throw a.at("sw_batch_size").error("must be at least 1");
    o.overlap = doubles(a, "overlap", {0.25});
    for (double ov : o.overlap) {
      if (ov < 0 || ov >= 1) throw a.at("overlap").error("must be in [0, 1)");
    }
    o.mode = a.require<std::string>("mode");
    if (o.mode != "constant" && o.mode != "gaussian") {
      throw a.at("mode").error("must be constant or gaussian");
    }
    o.sigma_scale = doubles(a, "sigma_scale", {0.125});
    o.padding_mode = a.require<std::string>("padding_mode");
    o.cval = a.require<double>("cval");
    o.progress = a.require<bool>("progress");
    o.tta_flips = a.require<bool>("tta_flips");
    return std::make_unique<SlidingWindowInferer>(o);
  });
}

}  // namespace barton::engine
