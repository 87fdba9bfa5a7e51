#pragma once
/// MONAI's building blocks with MONAI's child names: Convolution ("conv", "adn" with "N", "D",
/// "A"), ResidualUnit ("conv" with "unit0".., "residual"), SkipConnection ("submodule"), and a
/// ConvTranspose that computes stride-2 kernel-3 cases as eight ordinary convolutions (the
/// sub-pixel / phase decomposition; docs/adr/0006-convtranspose-as-subpixel-phases.md), keeping
/// ConvTranspose's weight layout.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>

#include "core/config.h"

namespace barton::nets {

/// nn::Sequential with a concrete forward, so it can sit inside AnyModule (MONAI nests
/// Sequentials).
class SeqImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(Seq);

/// A layer type with arguments: "PRELU" or ["prelu", {"init": 0.2}] in configs.
struct LayerSpec {
  std::string name;                    ///< Lower case ("prelu", "batch", ...); "" = none.
  std::map<std::string, double> args;  ///< Numeric arguments (bools as 0/1).
  static LayerSpec from_config(const ConfigNode& node);
  static LayerSpec of(std::string name, std::map<std::string, double> args = {}) {
    return {std::move(name), std::move(args)};
  }
};

torch::nn::AnyModule make_act(const LayerSpec& spec);
/// "batch" gives SyncBatchNorm instead of BatchNorm while a sync hook is set (below).
torch::nn::AnyModule make_norm(const LayerSpec& spec, int dims, int64_t channels);

/// In-place sum of a tensor over the data-parallel ranks.
using AllReduceSum = std::function<void(torch::Tensor&)>;
/// Networks built while `hook` is set use SyncBatchNorm for "batch" norms (PyTorch's
/// convert_sync_batchnorm, decided at construction); nullptr restores BatchNorm. Not thread-safe:
/// call before building networks.
void set_sync_batchnorm(std::shared_ptr<AllReduceSum> hook);

/// BatchNorm whose training-mode statistics are computed over every rank's batch (sums of x and
/// x^2 and the count, all-reduced, with the all-reduce differentiated). Same parameters and
/// buffers as BatchNorm (weight, bias, running_mean, running_var, num_batches_tracked), so
/// checkpoints are interchangeable. Eval mode is plain batch_norm with the running statistics.
class SyncBatchNormImpl : public torch::nn::Module {
 public:
  SyncBatchNormImpl(int64_t channels,
                    double eps,
                    double momentum,
                    bool affine,
                    std::shared_ptr<AllReduceSum> hook);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  double eps_, momentum_;
  std::shared_ptr<AllReduceSum> hook_;
};
TORCH_MODULE(SyncBatchNorm);

/// Transposed convolution with ConvTranspose's parameters ("weight" [in, out, k...], "bias").
class ConvTransposeImpl : public torch::nn::Module {
 public:
  ConvTransposeImpl(int dims,
                    int64_t in,
                    int64_t out,
                    int64_t kernel,
                    int64_t stride,
                    int64_t padding,
                    int64_t output_padding,
                    bool bias);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  /// True when the phase decomposition applies (kernel 3, stride 2, padding 1, output_padding 1).
  bool fast() const { return fast_; }
  void set_fast(bool f) { fast_ = f && fast_possible_; }

 private:
  int dims_;
  int64_t stride_, padding_, output_padding_;
  bool fast_possible_, fast_;
};
TORCH_MODULE(ConvTranspose);

/// ConvTranspose (kernel 3, stride 2, padding 1, output_padding 1, one group) of x [B, in, *S]
/// with weight [in, out, 3...] as 2^dims ordinary convolutions, interleaved. `bias` may be
/// undefined.
torch::Tensor conv_transpose_phase(const torch::Tensor& x,
                                   const torch::Tensor& weight,
                                   const torch::Tensor& bias,
                                   int dims);
/// The same as one autograd node that keeps only x and the weight for the backward pass (what
/// ConvTranspose uses in training).
torch::Tensor conv_transpose_phase_trainable(const torch::Tensor& x,
                                             const torch::Tensor& weight,
                                             const torch::Tensor& bias,
                                             int dims);

/// conv.forward(x) for a Conv2d/Conv3d module; while gradients are recorded, inputs of at most 4
/// channels run as a batch-folded grouped convolution (same result, a fraction of oneDNN's padded
/// buffers: layers.cpp).
torch::Tensor conv_module_forward(torch::nn::AnyModule& conv, const torch::Tensor& x);

/// At most 4 input or output channels: where oneDNN's 16-channel blocks are mostly padding.
bool is_thin_conv(int64_t in_channels, int64_t out_channels);

/// With gradients: a batch of one cut into column slabs that pass PyTorch's oneDNN rule (see
/// layers.cpp); an undefined tensor when the input does not qualify (the caller convolves as
/// usual).
torch::Tensor column_split_conv3d(const torch::Tensor& x,
                                  const torch::Tensor& w,
                                  const torch::Tensor& b,
                                  c10::IntArrayRef stride,
                                  c10::IntArrayRef padding,
                                  c10::IntArrayRef dilation,
                                  int64_t groups);

/// torch::conv3d, but without gradients (and not while tracing) a convolution with at most 4 input
/// or output channels runs one slab of output planes at a time, so that oneDNN's 16-channel
/// blocked copies exist for a slab only (layers.cpp). Same outputs. Also the plan's
/// barton::slab_conv3d op.
torch::Tensor slab_conv3d(const torch::Tensor& x,
                          const torch::Tensor& w,
                          const torch::Tensor& b,
                          c10::IntArrayRef stride,
                          c10::IntArrayRef padding,
                          c10::IntArrayRef dilation,
                          int64_t groups);

struct ConvOptions {
  int dims = 3;
  int64_t in = 1, out = 1;
  int64_t stride = 1;
  int64_t kernel = 3;
  LayerSpec act = LayerSpec::of("prelu");
  LayerSpec norm = LayerSpec::of("instance");
  double dropout = -1;  ///< < 0: no dropout layer.
  bool bias = true;
  bool conv_only = false;
  bool transposed = false;
  std::string adn_ordering = "NDA";
};

/// MONAI's Convolution: conv then ADN (norm, dropout, activation in adn_ordering).
class ConvolutionImpl : public torch::nn::Module {
 public:
  explicit ConvolutionImpl(const ConvOptions& o);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::AnyModule conv_;
  torch::nn::Sequential adn_{nullptr};
};
TORCH_MODULE(Convolution);

/// MONAI's ResidualUnit: `subunits` Convolutions (stride on the first) plus a residual path
/// (identity, or a conv when stride or channels change).
class ResidualUnitImpl : public torch::nn::Module {
 public:
  ResidualUnitImpl(const ConvOptions& o, int subunits, bool last_conv_only);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Sequential conv_{nullptr};
  torch::nn::AnyModule residual_;
  bool has_residual_ = false;
};
TORCH_MODULE(ResidualUnit);

/// cat([x, submodule(x)], dim=1).
class SkipConnectionImpl : public torch::nn::Module {
 public:
  explicit SkipConnectionImpl(torch::nn::AnyModule submodule);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::AnyModule submodule_;
};
TORCH_MODULE(SkipConnection);

}  // namespace barton::nets
