#pragma once
/// Helpers shared by BasicUNet, SegResNet, DynUNet and AttentionUnet (docs/monai-semantics-nn.md
/// section 3): torch convolutions with per-axis kernel/stride/padding (parameter names "weight",
/// "bias" as torch's Conv/ConvTranspose), MONAI's UpSample ("deconv" and "nontrainable"), a dropout
/// factory by MONAI's dropout_dim, and config parsing that reports errors at the argument's JSON
/// pointer.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include "core/config.h"
#include "core/errors.h"
#include "core/registry.h"
#include "nets/blocks/layers.h"

namespace barton::nets {

/// torch.nn.Conv{2,3}d, or ConvTranspose{2,3}d when `transposed`, with `dims` values per axis for
/// kernel, stride, padding (and output_padding; empty = zeros). Dilation 1, groups 1. Default torch
/// initialisation. REQUIRES: dims is 2 or 3 and every vector has dims entries (or is empty for
/// output_padding).
torch::nn::AnyModule make_conv_nd(int dims,
                                  int64_t in,
                                  int64_t out,
                                  const std::vector<int64_t>& kernel,
                                  const std::vector<int64_t>& stride,
                                  const std::vector<int64_t>& padding,
                                  bool bias,
                                  bool transposed = false,
                                  const std::vector<int64_t>& output_padding = {});
/// The same with one value for every axis.
torch::nn::AnyModule make_conv_nd(int dims,
                                  int64_t in,
                                  int64_t out,
                                  int64_t kernel,
                                  int64_t stride,
                                  int64_t padding,
                                  bool bias,
                                  bool transposed = false,
                                  int64_t output_padding = 0);

/// MONAI's Dropout factory: dropout_dim 1 -> nn.Dropout (element-wise), 2 -> Dropout2d, 3 ->
/// Dropout3d.
torch::nn::AnyModule make_dropout(double p, int dropout_dim);

/// MONAI's UpSample (monai/networks/blocks/upsample.py) with scale factor 2:
///  * "deconv": child "deconv" = ConvTranspose(in -> out, kernel = stride = 2, bias);
///  * "nontrainable": child "preconv" = 1x1 Conv(in -> out, bias) only when in != out, then child
///    "upsample_non_trainable" = nn.Upsample(scale 2, (bi/tri)linear, align_corners).
/// Mode "pixelshuffle" is not supported (throws NotSupported).
class UpSampleImpl : public torch::nn::Module {
 public:
  UpSampleImpl(int dims,
               int64_t in,
               int64_t out,
               const std::string& mode,
               bool align_corners,
               bool bias = true);
  torch::Tensor forward(torch::Tensor x);

 private:
  int dims_;
  bool deconv_mode_ = true;
  bool has_preconv_ = false;
  bool align_corners_ = true;
  torch::nn::AnyModule deconv_, preconv_;
};
TORCH_MODULE(UpSample);

/// "deconv" or "nontrainable" (case-insensitive) from args[key]; "pixelshuffle" and anything else
/// give a ConfigError at the key.
std::string parse_upsample_mode(const ConfigNode& a, std::string_view key);

/// `spatial_dims` or the older `dimensions` (not both), 2 or 3; errors at the key.
int parse_spatial_dims(const ConfigNode& a, int def = 3);
/// The specs of spatial_dims and its older name dimensions, which every network takes.
std::vector<ArgSpec> spatial_dims_specs();

/// `in_channels` and `out_channels`, both positive.
std::pair<int64_t, int64_t> parse_io_channels(const ConfigNode& a);

/// Activation spec from args[key] (null: none, allowed only when `allow_none`). Checks that the
/// activation is supported; errors at the key.
LayerSpec parse_act(const ConfigNode& a, std::string_view key, bool allow_none);
/// Norm spec from args[key] (null: none, allowed only when `allow_none`). Checks that the norm is
/// supported; errors at the key.
LayerSpec parse_norm(const ConfigNode& a, std::string_view key, int dims, bool allow_none);

/// `n` integers from an int (repeated) or a list of exactly `n` ints; errors at `v`.
std::vector<int64_t> ints_rep(const ConfigNode& v, std::size_t n);
/// One integer from an int or a list whose entries are all equal (Barton's blocks take isotropic
/// kernels/strides); `what` names the argument in the error.
int64_t isotropic_int(const ConfigNode& v, std::string_view what);

/// Runs `make()` (a network constructor); a barton::Error that is not already a ConfigError (e.g. a
/// group norm whose channel count is not divisible) becomes a ConfigError at the args node.
template <typename F>
auto build_at(const ConfigNode& args, F&& make) -> decltype(make()) {
  try {
    return make();
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw args.error(e.what());
  }
}

}  // namespace barton::nets
