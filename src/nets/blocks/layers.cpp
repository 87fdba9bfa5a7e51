#include "nets/blocks/layers.h"

#include <cmath>

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "core/strings.h"

namespace barton::nets {

LayerSpec LayerSpec::from_config(const ConfigNode& node) {
  LayerSpec s;
  if (node.is_null()) return s;
  if (node.is_string()) {
    s.name = to_lower(node.as<std::string>());
    return s;
  }
  if (node.is_array() && node.size() >= 1) {
    s.name = to_lower(node.at(0).as<std::string>());
    if (node.size() > 1) {
      const auto args = node.at(1);
      for (const auto& k : args.keys()) {
        const auto v = args.at(k);
        if (v.is_bool())
          s.args[k] = v.as<bool>() ? 1.0 : 0.0;
        else if (v.is_number())
          s.args[k] = v.as<double>();
        else
          throw v.error("expected a number or boolean layer argument");
      }
    }
    return s;
  }
  throw node.error("expected a layer name (\"PRELU\") or [name, {args}]");
}

namespace {

double arg(const LayerSpec& s, const char* k, double def) {
  const auto it = s.args.find(k);
  return it == s.args.end() ? def : it->second;
}

}  // namespace

torch::nn::AnyModule make_act(const LayerSpec& s) {
  const auto& n = s.name;
  if (n == "prelu") {
    return torch::nn::AnyModule(
        torch::nn::PReLU(torch::nn::PReLUOptions()
                             .num_parameters(static_cast<int64_t>(arg(s, "num_parameters", 1)))
                             .init(arg(s, "init", 0.25))));
  }
  if (n == "relu") return torch::nn::AnyModule(torch::nn::ReLU());
  if (n == "leakyrelu") {
    return torch::nn::AnyModule(torch::nn::LeakyReLU(
        torch::nn::LeakyReLUOptions().negative_slope(arg(s, "negative_slope", 0.01))));
  }
  if (n == "elu")
    return torch::nn::AnyModule(
        torch::nn::ELU(torch::nn::ELUOptions().alpha(arg(s, "alpha", 1.0))));
  if (n == "selu") return torch::nn::AnyModule(torch::nn::SELU());
  if (n == "gelu") return torch::nn::AnyModule(torch::nn::GELU());
  if (n == "sigmoid") return torch::nn::AnyModule(torch::nn::Sigmoid());
  if (n == "tanh") return torch::nn::AnyModule(torch::nn::Tanh());
  throw Error("unsupported activation '" + n +
              "' (prelu, relu, leakyrelu, elu, selu, gelu, sigmoid, tanh)");
}

namespace {
std::shared_ptr<AllReduceSum>& sync_hook() {
  static std::shared_ptr<AllReduceSum> hook;
  return hook;
}

/// Sum over ranks with a differentiable all-reduce: the gradient of a sum over ranks is the sum
/// of the ranks' gradients.
/// The hook travels as an integer (the module that owns it outlives the step).
struct AllReduceFn : public torch::autograd::Function<AllReduceFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               torch::Tensor x,
                               int64_t hook) {
    ctx->saved_data["hook"] = hook;
    auto out = x.clone();
    (*reinterpret_cast<const AllReduceSum*>(hook))(out);
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    auto out = g.at(0).clone();
    (*reinterpret_cast<const AllReduceSum*>(ctx->saved_data["hook"].toInt()))(out);
    return {out, torch::Tensor()};
  }
};
}  // namespace

void set_sync_batchnorm(std::shared_ptr<AllReduceSum> hook) {
  sync_hook() = std::move(hook);
}

SyncBatchNormImpl::SyncBatchNormImpl(
    int64_t c, double eps, double momentum, bool affine, std::shared_ptr<AllReduceSum> hook)
    : eps_(eps), momentum_(momentum), hook_(std::move(hook)) {
  if (affine) {
    weight = register_parameter("weight", torch::ones({c}));
    bias = register_parameter("bias", torch::zeros({c}));
  }
  running_mean = register_buffer("running_mean", torch::zeros({c}));
  running_var = register_buffer("running_var", torch::ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

torch::Tensor SyncBatchNormImpl::forward(const torch::Tensor& x) {
  if (!is_training() || !hook_)
    return torch::batch_norm(x, weight, bias, running_mean, running_var, false, momentum_, eps_,
                             false);
  const int64_t c = x.size(1);
  std::vector<int64_t> red = {0};
  for (int64_t d = 2; d < x.dim(); ++d) red.push_back(d);
  const auto xf = x.to(torch::kFloat);
  const auto packed =
      torch::cat({xf.sum(red), (xf * xf).sum(red),
                  torch::full({1}, static_cast<double>(x.numel() / c), xf.options())});
  const auto global = AllReduceFn::apply(packed, reinterpret_cast<int64_t>(hook_.get()));
  const auto n = global.narrow(0, 2 * c, 1);
  const auto mean = global.narrow(0, 0, c) / n;
  const auto var = (global.narrow(0, c, c) / n - mean * mean).clamp_min(0);
  std::vector<int64_t> view(x.dim(), 1);
  view[1] = c;
  auto y = (xf - mean.view(view)) * torch::rsqrt(var + eps_).view(view);
  if (weight.defined()) y = y * weight.view(view) + bias.view(view);
  {
    torch::NoGradGuard ng;
    const double count = n.item<double>();
    running_mean.mul_(1 - momentum_).add_(mean.detach() * momentum_);
    running_var.mul_(1 - momentum_)
        .add_(var.detach() * (count / std::max(1.0, count - 1)) * momentum_);
    num_batches_tracked.add_(1);
  }
  return y.to(x.scalar_type());
}

torch::nn::AnyModule make_norm(const LayerSpec& s, int dims, int64_t channels) {
  const auto& n = s.name;
  const double eps = arg(s, "eps", 1e-5);
  if (n == "batch") {
    const double momentum = arg(s, "momentum", 0.1);
    const bool affine = arg(s, "affine", 1) != 0;
    if (sync_hook())
      return torch::nn::AnyModule(SyncBatchNorm(channels, eps, momentum, affine, sync_hook()));
    if (dims == 3)
      return torch::nn::AnyModule(torch::nn::BatchNorm3d(
          torch::nn::BatchNormOptions(channels).eps(eps).momentum(momentum).affine(affine)));
    return torch::nn::AnyModule(torch::nn::BatchNorm2d(
        torch::nn::BatchNormOptions(channels).eps(eps).momentum(momentum).affine(affine)));
  }
  if (n == "instance") {
    const bool affine = arg(s, "affine", 0) != 0;
    if (dims == 3)
      return torch::nn::AnyModule(torch::nn::InstanceNorm3d(
          torch::nn::InstanceNormOptions(channels).eps(eps).affine(affine)));
    return torch::nn::AnyModule(torch::nn::InstanceNorm2d(
        torch::nn::InstanceNormOptions(channels).eps(eps).affine(affine)));
  }
  if (n == "group") {
    const auto groups = static_cast<int64_t>(arg(s, "num_groups", 8));
    BARTON_CHECK(channels % groups == 0, "group norm: {} channels are not divisible into {} groups",
                 channels, groups);
    return torch::nn::AnyModule(torch::nn::GroupNorm(
        torch::nn::GroupNormOptions(groups, channels).eps(eps).affine(arg(s, "affine", 1) != 0)));
  }
  throw Error("unsupported norm '" + n + "' (batch, instance, group)");
}

namespace {
/// The explicit padding of a Conv2d/Conv3d (c10::variant in LibTorch 1.x, std::variant in 2.x).
template <typename Array, typename Variant>
const Array& explicit_padding(const Variant& v) {
  using namespace c10;  // NOLINT: whichever get() fits the variant type
  using namespace std;  // NOLINT
  return get<Array>(v);
}

/// oneDNN computes on blocks of 16 channels (8 without AVX-512): a 1- or 2-channel input is padded
/// to a whole block in its reorder buffers, 8-16x the tensor. Measured on the CI VM at batch 8 x
/// 96^3: a 2->2-channel 3x3x3 convolution takes 510 MB more than its output in the forward pass and
/// 963 MB in the backward pass; folding the batch into the channels, as a grouped convolution with
/// the weight repeated per sample, fills the blocks (+113 and +170 MB), same arithmetic, and the
/// backward pass is faster (356 vs 519 ms). Used for inputs of at most 4 channels.
bool fold_batch(const torch::Tensor& x) {
  return x.size(1) <= 4 && x.size(0) > 1 && x.is_cpu();
}

/// [B, C, *S] -> [1, B * C, *S]: the samples as channel groups.
torch::Tensor batch_as_groups(const torch::Tensor& t) {
  auto shape = t.sizes().vec();
  shape[1] *= shape[0];
  shape[0] = 1;
  return t.reshape(shape);
}

/// The weight once per group: [O, I, *k] -> [B * O, I, *k].
torch::Tensor weight_per_group(const torch::Tensor& w, int64_t batch) {
  std::vector<int64_t> rep(w.dim(), 1);
  rep[0] = batch;
  return w.repeat(rep);
}

torch::Tensor folded_conv(const torch::Tensor& x,
                          const torch::Tensor& w,
                          const torch::Tensor& b,
                          c10::IntArrayRef stride,
                          c10::IntArrayRef padding) {
  const int64_t batch = x.size(0);
  const auto xr = batch_as_groups(x), wr = weight_per_group(w, batch);
  const auto br = b.defined() ? b.repeat({batch}) : b;
  auto y = x.dim() == 5 ? torch::conv3d(xr, wr, br, stride, padding, 1, batch)
                        : torch::conv2d(xr, wr, br, stride, padding, 1, batch);
  auto out_shape = y.sizes().vec();
  out_shape[0] = batch;
  out_shape[1] = w.size(0);
  return y.reshape(out_shape);
}
}  // namespace

bool is_thin_conv(int64_t in_channels, int64_t out_channels) {
  return in_channels <= 4 || out_channels <= 4;
}

/// Without gradients, a 3D convolution with at most 4 input or output channels runs one slab of
/// output planes (first spatial axis) at a time, each slab's input cut with its halo (zeros past
/// the volume's ends, as the padding gives), so that oneDNN's 16-channel blocked copies of the
/// input and output exist for a slab, not the volume. At 2 x 96^3 the top 2->2 convolution of
/// MONAI's UNet otherwise holds 2 x 113 MB of padded buffers for a 14 MB output: the peak of a
/// sliding-window pass. Each output voxel is computed from the same inputs and weights.
constexpr int64_t kSlabBytes = 24ll << 20;  // padded input + output per slab

namespace {

/// PyTorch's rule for oneDNN counts N*C*D*H and must exceed this.
constexpr int64_t kOneDnnRule = 20480;

/// A float32 3-D CPU input with a batch of one that PyTorch's rule sends to its native path
/// (oneDNN is there to call; not while an export traces the network).
bool falls_to_native_conv(const torch::Tensor& x) {
  return at::hasMKLDNN() && x.is_cpu() && x.dim() == 5 && x.size(0) == 1 &&
         x.scalar_type() == at::kFloat && x.size(1) * x.size(2) * x.size(3) <= kOneDnnRule &&
         !torch::jit::tracer::isTracing();
}

}  // namespace

/// torch::conv3d without gradients. PyTorch hands a batch of one to oneDNN only when N*C*D*H >
/// 20480 (its rule counts the axes of a 2-D image), so the smaller 3-D inputs of a network's deeper
/// levels fall to its unblocked native convolution: measured 48x slower for a 16-channel 32^3
/// input on 2 cores (docs/performance.md). Those go to oneDNN directly; the same convolution.
torch::Tensor conv3d_inference(const torch::Tensor& x,
                               const torch::Tensor& w,
                               const torch::Tensor& b,
                               c10::IntArrayRef stride,
                               c10::IntArrayRef padding,
                               c10::IntArrayRef dilation,
                               int64_t groups) {
  if (falls_to_native_conv(x) && w.scalar_type() == at::kFloat && !torch::GradMode::is_enabled()) {
    return at::mkldnn_convolution(x.contiguous(), w.contiguous(),
                                  b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt,
                                  padding, stride, dilation, groups);
  }
  return torch::conv3d(x, w, b, stride, padding, dilation, groups);
}

torch::Tensor slab_conv3d(const torch::Tensor& x,
                          const torch::Tensor& w,
                          const torch::Tensor& b,
                          c10::IntArrayRef stride,
                          c10::IntArrayRef padding,
                          c10::IntArrayRef dilation,
                          int64_t groups) {
  const auto plain = [&] { return conv3d_inference(x, w, b, stride, padding, dilation, groups); };
  // Not while an export traces the network: the slabs' sizes would be frozen into the graph.
  if (torch::jit::tracer::isTracing() || torch::GradMode::is_enabled() || !x.is_cpu() ||
      x.dim() != 5 || groups != 1 || !is_thin_conv(x.size(1), w.size(0))) {
    return plain();
  }
  for (auto d : dilation) {
    if (d != 1) return plain();
  }
  const int64_t k = w.size(2), s = stride[0], p = padding[0], depth = x.size(2);
  const int64_t out_depth = (depth + 2 * p - k) / s + 1;
  const int64_t out_h = (x.size(3) + 2 * padding[1] - w.size(3)) / stride[1] + 1;
  const int64_t out_w = (x.size(4) + 2 * padding[2] - w.size(4)) / stride[2] + 1;
  if (out_depth < 2 || out_h < 1 || out_w < 1) return plain();
  constexpr int64_t kBlock =
      16;  // channels per oneDNN block (AVX-512; 8 on AVX2, so this errs high)
  const int64_t row_bytes =
      kBlock * x.size(0) * static_cast<int64_t>(x.element_size()) *
      (s * x.size(3) * x.size(4) + out_h * out_w);  // input rows + one output plane
  const int64_t rows = std::max<int64_t>(1, kSlabBytes / std::max<int64_t>(1, row_bytes));
  if (rows >= out_depth) return plain();
  torch::Tensor out;
  for (int64_t o0 = 0; o0 < out_depth; o0 += rows) {
    const int64_t o1 = std::min(out_depth, o0 + rows);
    const int64_t i0 = o0 * s - p,
                  i1 = (o1 - 1) * s - p + k;  // input planes [i0, i1) incl. the halo
    const int64_t a = std::max<int64_t>(i0, 0), e = std::min(i1, depth);
    auto xs = x.narrow(2, a, e - a);
    if (a > i0 || e < i1) xs = torch::constant_pad_nd(xs, {0, 0, 0, 0, a - i0, i1 - e}, 0);
    auto ys = conv3d_inference(xs, w, b, {s, stride[1], stride[2]}, {0, padding[1], padding[2]},
                               {1, 1, 1}, 1);
    if (!out.defined())
      out = torch::empty({x.size(0), w.size(0), out_depth, ys.size(3), ys.size(4)}, ys.options());
    out.narrow(2, o0, o1 - o0).copy_(ys);
  }
  return out;
}
/// With gradients, PyTorch's rule sends a batch of one to its native 3-D convolution whenever
/// N*C*D*H <= 20480 (conv3d_inference above), forward and backward: measured 0.61 s for a
/// 16-channel 32^3 convolution with its backward on 2 cores, against 0.030 s through oneDNN. The
/// rule does not count the last axis, so the output columns are cut into n slabs along it (each
/// slab's input with its halo of k - s columns), the slabs made a batch of n that passes the
/// rule, and the outputs joined again: the same sums, and autograd carries the gradients through
/// the cuts. Returns an undefined tensor when the input does not qualify.
torch::Tensor column_split_conv3d(const torch::Tensor& x,
                                  const torch::Tensor& w,
                                  const torch::Tensor& b,
                                  c10::IntArrayRef stride,
                                  c10::IntArrayRef padding,
                                  c10::IntArrayRef dilation,
                                  int64_t groups) {
  if (!falls_to_native_conv(x) || groups != 1) return {};
  for (auto d : dilation)
    if (d != 1) return {};
  const int64_t rule = x.size(1) * x.size(2) * x.size(3);  // N*C*D*H with N = 1
  const int64_t k = w.size(4), s = stride[2], p = padding[2], cols = x.size(4);
  const int64_t out_cols = (cols + 2 * p - k) / s + 1;
  const int64_t n = std::min(out_cols, kOneDnnRule / rule + 1);
  if (n < 2) return {};
  const int64_t per = (out_cols + n - 1) / n;  // output columns per slab (the last may be short)
  const int64_t span = (per - 1) * s + k;      // input columns a slab reads
  // Zero columns: the padding on the left, and on the right as far as the last slab reads.
  const int64_t right = std::max<int64_t>(0, (n * per - 1) * s + k - p - cols);
  const auto xp = torch::constant_pad_nd(x, {p, right}, 0);
  std::vector<torch::Tensor> slabs;
  for (int64_t i = 0; i < n; ++i) slabs.push_back(xp.narrow(4, i * per * s, span));
  const auto y = torch::conv3d(torch::cat(slabs, 0), w, b, stride, {padding[0], padding[1], 0});
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t take = std::min(per, out_cols - i * per);
    if (take > 0) parts.push_back(y.narrow(0, i, 1).narrow(4, 0, take));
  }
  return torch::cat(parts, 4);
}

torch::Tensor conv_module_forward(torch::nn::AnyModule& conv, const torch::Tensor& x) {
  const bool grad = torch::GradMode::is_enabled();
  if (auto c = std::dynamic_pointer_cast<torch::nn::Conv3dImpl>(conv.ptr())) {
    const auto stride = c10::IntArrayRef(c->options.stride());
    const auto padding =
        c10::IntArrayRef(explicit_padding<torch::ExpandingArray<3>>(c->options.padding()));
    if (!grad && c->options.padding_mode().index() == 0) {  // zeros
      return slab_conv3d(x, c->weight, c->bias, stride, padding,
                         c10::IntArrayRef(c->options.dilation()), c->options.groups());
    }
    if (grad && fold_batch(x)) return folded_conv(x, c->weight, c->bias, stride, padding);
    if (grad && c->options.padding_mode().index() == 0) {
      auto y = column_split_conv3d(x, c->weight, c->bias, stride, padding,
                                   c10::IntArrayRef(c->options.dilation()), c->options.groups());
      if (y.defined()) return y;
    }
  } else if (auto c2 = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(conv.ptr());
             c2 && grad && fold_batch(x)) {
    return folded_conv(
        x, c2->weight, c2->bias, c10::IntArrayRef(c2->options.stride()),
        c10::IntArrayRef(explicit_padding<torch::ExpandingArray<2>>(c2->options.padding())));
  }
  return conv.forward(x);
}

// ---------------------------------------------------------------- ConvTranspose

ConvTransposeImpl::ConvTransposeImpl(int dims,
                                     int64_t in,
                                     int64_t out,
                                     int64_t kernel,
                                     int64_t stride,
                                     int64_t padding,
                                     int64_t output_padding,
                                     bool with_bias)
    : dims_(dims), stride_(stride), padding_(padding), output_padding_(output_padding) {
  std::vector<int64_t> shape = {in, out};
  for (int d = 0; d < dims; ++d) shape.push_back(kernel);
  weight = register_parameter("weight", torch::empty(shape));
  // PyTorch's _ConvNd.reset_parameters: kaiming_uniform(a=sqrt(5)); fan_in from dim 1 (out) * k^d.
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    const double fan_in = static_cast<double>(out) * std::pow(static_cast<double>(kernel), dims);
    const double bound = 1.0 / std::sqrt(fan_in);
    bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound));
  }
  fast_possible_ = kernel == 3 && stride == 2 && padding == 1 && output_padding == 1;
  fast_ = fast_possible_;
}

torch::Tensor ConvTransposeImpl::forward(const torch::Tensor& x) {
  if (!fast_) {
    // One value per axis: a traced graph must say which convolution it is (TorchScript's
    // optimiser reads the dimensionality from these lists).
    const std::vector<int64_t> s(dims_, stride_), p(dims_, padding_), op(dims_, output_padding_),
        d(dims_, 1);
    if (dims_ == 3) return torch::conv_transpose3d(x, weight, bias, s, p, op, 1, d);
    return torch::conv_transpose2d(x, weight, bias, s, p, op, 1, d);
  }
  if (torch::GradMode::is_enabled() &&
      (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()))) {
    return conv_transpose_phase_trainable(x, weight, bias, dims_);
  }
  return conv_transpose_phase(x, weight, bias, dims_);
}

namespace {
/// The phase decomposition as one autograd node that keeps only its input. Recorded op by op, the
/// eight convolutions and the interleave keep a padded copy of the input and hand back eight
/// input-sized gradients; here the backward pass is the transposed convolution's adjoint: the input
/// gradient is the ordinary stride-2 convolution of the output gradient with the same weight, and
/// the weight gradient is that convolution's weight gradient with the input in the role of the
/// output gradient.
struct PhaseConvTransposeFn : public torch::autograd::Function<PhaseConvTransposeFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               torch::Tensor x,
                               torch::Tensor weight,
                               torch::Tensor bias,
                               int64_t dims) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["dims"] = dims;
    ctx->saved_data["has_bias"] = bias.defined();
    ctx->saved_data["bias_dtype"] =
        static_cast<int64_t>(bias.defined() ? bias.scalar_type() : at::kFloat);
    torch::NoGradGuard no_grad;
    return conv_transpose_phase(x, weight, bias, static_cast<int>(dims));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight_param = saved[1];
    const auto dims = ctx->saved_data["dims"].toInt();
    // Under autocast the forward convolutions ran in x's dtype (bf16); the backward pass runs
    // outside autocast, so it casts as autocast did and hands the parameters float gradients.
    const auto weight = weight_param.to(x.scalar_type());
    const auto go = g.at(0).to(x.scalar_type()).contiguous();
    const std::vector<int64_t> stride(dims, 2), padding(dims, 1), dilation(dims, 1),
        output_padding(dims, 0);
    torch::Tensor gx, gw, gb;
    const bool fold =
        fold_batch(go);  // few output channels: the adjoint convolution's input is small
    if (ctx->needs_input_grad(0)) {
      if (fold) {
        gx = folded_conv(go, weight, {}, stride, padding);
      } else {
        gx = dims == 3 ? torch::conv3d(go, weight, {}, stride, padding)
                       : torch::conv2d(go, weight, {}, stride, padding);
      }
    }
    if (ctx->needs_input_grad(1)) {
      if (fold) {
        // The same weight gradient per sample as a grouped convolution, then summed over samples.
        const int64_t batch = go.size(0);
        auto gw_all = std::get<1>(
            at::convolution_backward(batch_as_groups(x.contiguous()), batch_as_groups(go),
                                     weight_per_group(weight, batch), c10::nullopt, stride, padding,
                                     dilation, false, output_padding, batch, {false, true, false}));
        auto split = weight.sizes().vec();
        split.insert(split.begin(), batch);
        gw = gw_all.reshape(split).sum(0);
      } else {
        gw = std::get<1>(at::convolution_backward(x.contiguous(), go, weight, c10::nullopt, stride,
                                                  padding, dilation, false, output_padding, 1,
                                                  {false, true, false}));
      }
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) {
      std::vector<int64_t> axes = {0};
      for (int64_t d = 0; d < dims; ++d) axes.push_back(2 + d);
      gb = go.sum(axes, false, at::kFloat)
               .to(static_cast<c10::ScalarType>(ctx->saved_data["bias_dtype"].toInt()));
    }
    if (gw.defined()) gw = gw.to(weight_param.scalar_type());
    return {gx, gw, gb, torch::Tensor()};
  }
};
}  // namespace

torch::Tensor conv_transpose_phase_trainable(const torch::Tensor& x,
                                             const torch::Tensor& weight,
                                             const torch::Tensor& bias,
                                             int dims) {
  return PhaseConvTransposeFn::apply(x, weight, bias, static_cast<int64_t>(dims));
}

torch::Tensor conv_transpose_phase(const torch::Tensor& x,
                                   const torch::Tensor& weight,
                                   const torch::Tensor& bias,
                                   int dims) {
  const int dims_ = dims;
  // Phase decomposition: along each axis, output 2m takes tap 1 at input m; output 2m+1 takes tap 2
  // at m and tap 0 at m+1 (input padded by one voxel at the far end). Each of the 2^d phase
  // combinations is an ordinary convolution with a 1- or 2-tap sub-kernel of the transposed weight.
  const auto w = weight.transpose(0, 1);  // [out, in, k...]: a regular conv weight up to tap order
  const auto idx_even = torch::tensor({1}, torch::kLong).to(x.device());
  const auto idx_odd = torch::tensor({2, 0}, torch::kLong).to(x.device());
  // Each phase needs the input padded by one voxel at the far end of the axes where it takes two
  // taps: the convolution pads by itself (one voxel at both ends of those axes, the first output
  // dropped), with no padded copy of the input (57 MB for the top layer at 2 x 96^3, the peak of a
  // sliding-window pass). Each phase is written straight into its stride-2 view of the output: no
  // stack of the phase outputs and no interleaving copy. In training this function runs inside one
  // autograd node (conv_transpose_phase_trainable), which keeps x alone for the backward pass.
  std::vector<int64_t> out_shape = {x.size(0), weight.size(1)};
  for (int d = 0; d < dims_; ++d) out_shape.push_back(2 * x.size(2 + d));
  torch::Tensor out;
  const int n = 1 << dims_;
  for (int p = 0; p < n; ++p) {
    torch::Tensor k = w;
    std::vector<int64_t> pad(dims_, 0);
    for (int d = 0; d < dims_; ++d) {
      const bool odd = (p >> (dims_ - 1 - d)) & 1;
      k = k.index_select(2 + d, odd ? idx_odd : idx_even);
      pad[d] = odd ? 1 : 0;
    }
    auto y = dims_ == 3 ? torch::conv3d(x, k, bias, 1, pad)
                        : torch::conv2d(x, k, bias, 1, pad);  // the bias is added here
    for (int d = 0; d < dims_; ++d) {
      if (pad[d] != 0) y = y.narrow(2 + d, 1, x.size(2 + d));
    }
    if (!out.defined()) out = torch::empty(out_shape, y.options());
    auto view = out;
    for (int d = 0; d < dims_; ++d)
      view = view.slice(2 + d, (p >> (dims_ - 1 - d)) & 1, c10::nullopt, 2);
    view.copy_(y);
  }
  return out;
}

// ---------------------------------------------------------------- Convolution

ConvolutionImpl::ConvolutionImpl(const ConvOptions& o) {
  const int64_t pad = (o.kernel - 1) / 2;  // same_padding
  if (o.transposed) {
    const int64_t out_pad = o.stride - 1;  // stride_minus_kernel_padding(1, stride)
    conv_ = torch::nn::AnyModule(register_module(
        "conv", ConvTranspose(o.dims, o.in, o.out, o.kernel, o.stride, pad, out_pad, o.bias)));
  } else if (o.dims == 3) {
    conv_ = torch::nn::AnyModule(
        register_module("conv", torch::nn::Conv3d(torch::nn::Conv3dOptions(o.in, o.out, o.kernel)
                                                      .stride(o.stride)
                                                      .padding(pad)
                                                      .bias(o.bias))));
  } else {
    conv_ = torch::nn::AnyModule(
        register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in, o.out, o.kernel)
                                                      .stride(o.stride)
                                                      .padding(pad)
                                                      .bias(o.bias))));
  }
  if (o.conv_only) return;
  adn_ = torch::nn::Sequential();
  for (char c : o.adn_ordering) {
    if (c == 'N' && !o.norm.name.empty()) adn_->push_back("N", make_norm(o.norm, o.dims, o.out));
    if (c == 'D' && o.dropout >= 0)
      adn_->push_back("D", torch::nn::Dropout(o.dropout));  // MONAI's default nn.Dropout
    if (c == 'A' && !o.act.name.empty()) adn_->push_back("A", make_act(o.act));
  }
  register_module("adn", adn_);
}

torch::Tensor ConvolutionImpl::forward(torch::Tensor x) {
  x = conv_module_forward(conv_, x);
  if (adn_) x = adn_->forward(x);
  return x;
}

// ---------------------------------------------------------------- ResidualUnit

ResidualUnitImpl::ResidualUnitImpl(const ConvOptions& o, int subunits, bool last_conv_only) {
  conv_ = torch::nn::Sequential();
  const int n = std::max(1, subunits);
  int64_t in = o.in;
  int64_t stride = o.stride;
  for (int su = 0; su < n; ++su) {
    ConvOptions u = o;
    u.in = in;
    u.stride = stride;
    u.transposed = false;
    u.conv_only = last_conv_only && su == n - 1;
    conv_->push_back("unit" + std::to_string(su), Convolution(u));
    in = o.out;
    stride = 1;
  }
  register_module("conv", conv_);
  if (o.stride != 1 || o.in != o.out) {
    const int64_t k = o.stride == 1 ? 1 : o.kernel;
    const int64_t pad = o.stride == 1 ? 0 : (o.kernel - 1) / 2;
    if (o.dims == 3) {
      residual_ = torch::nn::AnyModule(
          register_module("residual", torch::nn::Conv3d(torch::nn::Conv3dOptions(o.in, o.out, k)
                                                            .stride(o.stride)
                                                            .padding(pad)
                                                            .bias(o.bias))));
    } else {
      residual_ = torch::nn::AnyModule(
          register_module("residual", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in, o.out, k)
                                                            .stride(o.stride)
                                                            .padding(pad)
                                                            .bias(o.bias))));
    }
    has_residual_ = true;
  }
}

torch::Tensor ResidualUnitImpl::forward(torch::Tensor x) {
  auto res = has_residual_ ? conv_module_forward(residual_, x) : x;
  return conv_->forward(x) + res;
}

SkipConnectionImpl::SkipConnectionImpl(torch::nn::AnyModule submodule)
    : submodule_(std::move(submodule)) {
  register_module("submodule", submodule_.ptr());
}

torch::Tensor SkipConnectionImpl::forward(torch::Tensor x) {
  return torch::cat({x, submodule_.forward(x)}, 1);
}

}  // namespace barton::nets
