#include "nets/blocks/extra_layers.h"

#include <torch/torch.h>

#include "core/strings.h"

namespace barton::nets {

namespace F = torch::nn::functional;

torch::nn::AnyModule make_conv_nd(int dims,
                                  int64_t in,
                                  int64_t out,
                                  const std::vector<int64_t>& kernel,
                                  const std::vector<int64_t>& stride,
                                  const std::vector<int64_t>& padding,
                                  bool bias,
                                  bool transposed,
                                  const std::vector<int64_t>& output_padding) {
  BARTON_INTERNAL_ASSERT(dims == 2 || dims == 3, "make_conv_nd: dims {}", dims);
  const auto n = static_cast<std::size_t>(dims);
  BARTON_INTERNAL_ASSERT(kernel.size() == n && stride.size() == n && padding.size() == n &&
                             (output_padding.empty() || output_padding.size() == n),
                         "make_conv_nd: per-axis values must have {} entries", dims);
  const std::vector<int64_t> op =
      output_padding.empty() ? std::vector<int64_t>(n, 0) : output_padding;
  if (transposed) {
    if (dims == 3) {
      return torch::nn::AnyModule(torch::nn::ConvTranspose3d(
          torch::nn::ConvTranspose3dOptions(in, out, torch::ExpandingArray<3>(kernel))
              .stride(torch::ExpandingArray<3>(stride))
              .padding(torch::ExpandingArray<3>(padding))
              .output_padding(torch::ExpandingArray<3>(op))
              .bias(bias)));
    }
    return torch::nn::AnyModule(torch::nn::ConvTranspose2d(
        torch::nn::ConvTranspose2dOptions(in, out, torch::ExpandingArray<2>(kernel))
            .stride(torch::ExpandingArray<2>(stride))
            .padding(torch::ExpandingArray<2>(padding))
            .output_padding(torch::ExpandingArray<2>(op))
            .bias(bias)));
  }
  if (dims == 3) {
    return torch::nn::AnyModule(
        torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, torch::ExpandingArray<3>(kernel))
                              .stride(torch::ExpandingArray<3>(stride))
                              .padding(torch::ExpandingArray<3>(padding))
                              .bias(bias)));
  }
  return torch::nn::AnyModule(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, torch::ExpandingArray<2>(kernel))
                            .stride(torch::ExpandingArray<2>(stride))
                            .padding(torch::ExpandingArray<2>(padding))
                            .bias(bias)));
}

torch::nn::AnyModule make_conv_nd(int dims,
                                  int64_t in,
                                  int64_t out,
                                  int64_t kernel,
                                  int64_t stride,
                                  int64_t padding,
                                  bool bias,
                                  bool transposed,
                                  int64_t output_padding) {
  const auto n = static_cast<std::size_t>(dims);
  return make_conv_nd(dims, in, out, std::vector<int64_t>(n, kernel),
                      std::vector<int64_t>(n, stride), std::vector<int64_t>(n, padding), bias,
                      transposed, std::vector<int64_t>(n, output_padding));
}

torch::nn::AnyModule make_dropout(double p, int dropout_dim) {
  if (dropout_dim == 3) return torch::nn::AnyModule(torch::nn::Dropout3d(p));
  if (dropout_dim == 2) return torch::nn::AnyModule(torch::nn::Dropout2d(p));
  return torch::nn::AnyModule(torch::nn::Dropout(p));
}

// ---------------------------------------------------------------- UpSample

UpSampleImpl::UpSampleImpl(
    int dims, int64_t in, int64_t out, const std::string& mode_in, bool align_corners, bool bias)
    : dims_(dims), align_corners_(align_corners) {
  const auto mode = to_lower(mode_in);
  if (mode == "deconv") {
    deconv_mode_ = true;
    deconv_ = make_conv_nd(dims, in, out, 2, 2, 0, bias, /*transposed=*/true);
    register_module("deconv", deconv_.ptr());
  } else if (mode == "nontrainable") {
    deconv_mode_ = false;
    if (in != out) {
      has_preconv_ = true;
      preconv_ = make_conv_nd(dims, in, out, 1, 1, 0, bias);
      register_module("preconv", preconv_.ptr());
    }
    auto opts = torch::nn::UpsampleOptions()
                    .scale_factor(std::vector<double>(static_cast<std::size_t>(dims), 2.0))
                    .align_corners(align_corners);
    if (dims == 3)
      opts.mode(torch::kTrilinear);
    else
      opts.mode(torch::kBilinear);
    register_module("upsample_non_trainable", torch::nn::Upsample(opts));
  } else {
    throw NotSupported("UpSample mode '" + mode_in + "' is not supported (deconv, nontrainable)");
  }
}

torch::Tensor UpSampleImpl::forward(torch::Tensor x) {
  if (deconv_mode_) return deconv_.forward(x);
  if (has_preconv_) x = preconv_.forward(x);
  auto opts = F::InterpolateFuncOptions()
                  .scale_factor(std::vector<double>(static_cast<std::size_t>(dims_), 2.0))
                  .align_corners(align_corners_);
  if (dims_ == 3)
    opts.mode(torch::kTrilinear);
  else
    opts.mode(torch::kBilinear);
  return F::interpolate(x, opts);
}

std::string parse_upsample_mode(const ConfigNode& a, std::string_view key) {
  const auto v = a.at(key);
  const auto mode = to_lower(v.as<std::string>());
  if (mode == "deconv" || mode == "nontrainable") return mode;
  if (mode == "pixelshuffle") {
    throw ConfigError(
        v.source(), v.pointer(),
        "upsample mode 'pixelshuffle' is not supported yet (use deconv or nontrainable)");
  }
  throw ConfigError(v.source(), v.pointer(),
                    "unknown upsample mode '" + mode + "' (deconv, nontrainable)");
}

// ---------------------------------------------------------------- config helpers

std::vector<ArgSpec> spatial_dims_specs() {
  return {
      opt("spatial_dims", ArgType::kInt, "null", "2 or 3; null: dimensions when given, else 3."),
      opt("dimensions", ArgType::kInt, "null", "Clara 4.x / old MONAI name of spatial_dims.")};
}

int parse_spatial_dims(const ConfigNode& a, int def) {
  if (a.given("spatial_dims") && a.given("dimensions")) {
    throw a.at("dimensions").error("give spatial_dims or the older dimensions, not both");
  }
  const char* key = a.given("dimensions") ? "dimensions" : "spatial_dims";
  if (!a.given(key)) return def;
  const auto v = a.at(key);
  const int dims = v.as<int>();
  if (dims != 2 && dims != 3) throw v.error("must be 2 or 3");
  return dims;
}

std::pair<int64_t, int64_t> parse_io_channels(const ConfigNode& a) {
  const auto in = a.require<int64_t>("in_channels");
  const auto out = a.require<int64_t>("out_channels");
  if (in < 1 || out < 1) throw a.error("in_channels and out_channels must be positive");
  return {in, out};
}

LayerSpec parse_act(const ConfigNode& a, std::string_view key, bool allow_none) {
  const auto v = a.at(key);
  auto spec = LayerSpec::from_config(v);
  if (spec.name.empty()) {
    if (allow_none) return spec;
    throw v.error("this network needs an activation");
  }
  try {
    (void)make_act(spec);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw v.error(e.what());
  }
  return spec;
}

LayerSpec parse_norm(const ConfigNode& a, std::string_view key, int dims, bool allow_none) {
  const auto v = a.at(key);
  auto spec = LayerSpec::from_config(v);
  if (spec.name.empty()) {
    if (allow_none) return spec;
    throw v.error("this network needs a norm");
  }
  try {
    const auto g = spec.args.find("num_groups");
    const int64_t channels =
        g != spec.args.end() && g->second >= 1 ? static_cast<int64_t>(g->second) : 64;
    (void)make_norm(spec, dims, channels);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw v.error(e.what());
  }
  return spec;
}

std::vector<int64_t> ints_rep(const ConfigNode& v, std::size_t n) {
  if (v.is_array()) {
    auto xs = v.as<std::vector<int64_t>>();
    if (xs.size() != n)
      throw ConfigError(v.source(), v.pointer(),
                        fmt::format("expected {} values, got {}", n, xs.size()));
    return xs;
  }
  return std::vector<int64_t>(n, v.as<int64_t>());
}

int64_t isotropic_int(const ConfigNode& v, std::string_view what) {
  if (!v.is_array()) return v.as<int64_t>();
  const auto xs = v.as<std::vector<int64_t>>();
  if (xs.empty()) throw v.error(fmt::format("{} must not be empty", what));
  for (auto x : xs) {
    if (x != xs[0])
      throw ConfigError(v.source(), v.pointer(),
                        fmt::format("anisotropic {} is not supported by this network yet", what));
  }
  return xs[0];
}

}  // namespace barton::nets
