// MONAI's DynUNet (monai/networks/nets/dynunet.py, blocks/dynunet_block.py) with its module tree
// and parameter names (docs/monai-semantics-nn.md section 3.3): input_block, downsamples,
// bottleneck, upsamples, output_block, deep_supervision_heads and skip_layers, where skip_layers
// registers the same block objects a second time (so the state_dict lists every tensor twice, as
// MONAI's does). Kernels and strides may differ per level and per axis.
#include <torch/torch.h>

#include "core/errors.h"
#include "nets/blocks/extra_layers.h"
#include "nets/blocks/layers.h"
#include "nets/register.h"

namespace barton::nets {

namespace {

using A = ArgType;

namespace F = torch::nn::functional;
using Ints = std::vector<int64_t>;

struct DynUNetOptions {
  // from_config sets every field from the arguments, whose defaults are the spec's (ADR 0002).
  int dims = 0;
  int64_t in = 0, out = 0;
  std::vector<Ints> kernels, strides,
      up_kernels;  ///< Per level, per axis (up_kernels: len(strides) - 1 levels).
  Ints filters;
  double dropout = -1;  ///< < 0: none (MONAI dropout=None).
  LayerSpec norm, act;
  bool deep_supervision = false;
  int deep_supr_num = 0;
  bool res_block = false;
  bool trans_bias = false;

  static DynUNetOptions from_config(const ConfigNode& a) {
    DynUNetOptions o;
    o.dims = parse_spatial_dims(a, 3);
    std::tie(o.in, o.out) = parse_io_channels(a);
    const auto n = static_cast<std::size_t>(o.dims);
    // A list with one entry per level; each entry an int or a list of spatial_dims ints.
    auto per_level = [&](const char* key) {
      const auto v = a.at(key);
      if (!v.is_array())
        throw ConfigError(v.source(), v.pointer(),
                          "expected a list with one kernel/stride per level");
      std::vector<Ints> levels;
      for (std::size_t i = 0; i < v.size(); ++i) {
        const auto e = v.at(i);
        if (e.is_array() && e.size() != n) {
          throw ConfigError(e.source(), e.pointer(),
                            fmt::format("needs spatial_dims = {} values, got {}", n, e.size()));
        }
        auto xs = ints_rep(e, n);
        for (auto x : xs) {
          if (x < 1) throw e.error("must be positive");
        }
        levels.push_back(std::move(xs));
      }
      return levels;
    };
    o.kernels = per_level("kernel_size");
    o.strides = per_level("strides");
    o.up_kernels = per_level("upsample_kernel_size");
    if (o.kernels.size() != o.strides.size() || o.kernels.size() < 3) {
      throw ConfigError(a.source(), a.pointer() + "/kernel_size",
                        "length of kernel_size and strides should be the same, and no less than 3");
    }
    const std::size_t levels = o.strides.size();
    if (o.up_kernels.size() < levels - 1) {
      throw ConfigError(a.source(), a.pointer() + "/upsample_kernel_size",
                        fmt::format("needs len(strides) - 1 = {} entries, got {}", levels - 1,
                                    o.up_kernels.size()));
    }
    // MONAI zips upsample_kernel_size[::-1] with the up levels: extra leading entries are unused.
    o.up_kernels.erase(o.up_kernels.begin(),
                       o.up_kernels.end() - static_cast<std::ptrdiff_t>(levels - 1));
    for (std::size_t i = 0; i < levels; ++i) {
      for (std::size_t d = 0; d < n; ++d) {
        if (o.kernels[i][d] - o.strides[i][d] + 1 < 0) {
          throw ConfigError(a.source(), a.pointer() + "/kernel_size/" + std::to_string(i),
                            "padding (kernel - stride + 1) / 2 would be negative");
        }
      }
    }
    if (a.given("filters")) {
      const auto fv = a.at("filters");
      o.filters = fv.as<Ints>();
      if (o.filters.size() < levels) {
        throw ConfigError(fv.source(), fv.pointer(),
                          "length of filters should be no less than the length of strides");
      }
      o.filters.resize(levels);
      for (auto f : o.filters) {
        if (f < 1) throw fv.error("filter counts must be positive");
      }
    } else {
      for (std::size_t i = 0; i < levels; ++i)
        o.filters.push_back(std::min<int64_t>(int64_t{1} << (5 + i), o.dims == 3 ? 320 : 512));
    }
    if (a.given("dropout")) {
      const auto dv = a.at("dropout");
      o.dropout = dv.as<double>();
      if (o.dropout < 0 || o.dropout > 1) throw dv.error("must be in [0, 1]");
    }
    o.norm = parse_norm(a, "norm_name", o.dims, /*allow_none=*/false);
    o.act = parse_act(a, "act_name", /*allow_none=*/false);
    o.deep_supervision = a.require<bool>("deep_supervision");
    o.deep_supr_num = a.require<int>("deep_supr_num");
    if (o.deep_supervision) {
      const auto where = a.pointer() + "/deep_supr_num";
      if (o.deep_supr_num < 1)
        throw ConfigError(a.source(), where, "deep_supr_num should be larger than 0");
      if (static_cast<std::size_t>(o.deep_supr_num) >= levels - 1) {
        throw ConfigError(
            a.source(), where,
            fmt::format("deep_supr_num should be less than the number of up sample layers ({})",
                        levels - 1));
      }
    }
    o.res_block = a.require<bool>("res_block");
    o.trans_bias = a.require<bool>("trans_bias");
    return o;
  }
};

/// dynunet_block.get_conv_layer: a Convolution with children "conv" (padding (k - s + 1) / 2 per
/// axis; transposed: output_padding 2p + s - k) and "adn" (holding only "D" = nn.Dropout when a
/// dropout is given; act and norm are None). Weights kaiming_normal_(a = 0.01), bias 0, as
/// DynUNet.initialize_weights does.
class DynConvImpl : public torch::nn::Module {
 public:
  DynConvImpl(const DynUNetOptions& o,
              int64_t in,
              int64_t out,
              const Ints& kernel,
              const Ints& stride,
              bool bias,
              bool transposed = false) {
    Ints pad, out_pad;
    for (std::size_t d = 0; d < kernel.size(); ++d) {
      BARTON_CHECK(kernel[d] - stride[d] + 1 >= 0,
                   "DynUNet: padding (kernel - stride + 1) / 2 is negative for kernel {} stride {}",
                   kernel[d], stride[d]);
      pad.push_back((kernel[d] - stride[d] + 1) / 2);
      if (transposed) {
        out_pad.push_back(2 * pad.back() + stride[d] - kernel[d]);
        BARTON_CHECK(out_pad.back() >= 0,
                     "DynUNet: negative output padding for kernel {} stride {}", kernel[d],
                     stride[d]);
      }
    }
    conv_ = make_conv_nd(o.dims, in, out, kernel, stride, pad, bias, transposed, out_pad);
    register_module("conv", conv_.ptr());
    torch::NoGradGuard no_grad;
    for (auto& p : conv_.ptr()->named_parameters(false)) {
      if (p.key() == "weight") torch::nn::init::kaiming_normal_(p.value(), 0.01);
      if (p.key() == "bias") p.value().zero_();
    }
    adn_ = torch::nn::Sequential();
    if (o.dropout >= 0) {
      adn_->push_back("D", make_dropout(o.dropout, 1));
      has_dropout_ = true;
    }
    register_module("adn", adn_);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = conv_.forward(x);
    return has_dropout_ ? adn_->forward(x) : x;
  }

 private:
  torch::nn::AnyModule conv_;
  torch::nn::Sequential adn_{nullptr};
  bool has_dropout_ = false;
};
TORCH_MODULE(DynConv);

/// UnetBasicBlock (children conv1, conv2, lrelu, norm1, norm2) or, with `res`, UnetResBlock (plus
/// conv3, norm3 when channels change or any stride is not 1).
class DynBlockImpl : public torch::nn::Module {
 public:
  DynBlockImpl(const DynUNetOptions& o,
               int64_t in,
               int64_t out,
               const Ints& kernel,
               const Ints& stride,
               bool res)
      : res_(res) {
    const Ints ones(kernel.size(), 1);
    conv1_ = register_module("conv1", DynConv(o, in, out, kernel, stride, false));
    conv2_ = register_module("conv2", DynConv(o, out, out, kernel, ones, false));
    lrelu_ = make_act(o.act);
    register_module("lrelu", lrelu_.ptr());
    norm1_ = make_norm(o.norm, o.dims, out);
    register_module("norm1", norm1_.ptr());
    norm2_ = make_norm(o.norm, o.dims, out);
    register_module("norm2", norm2_.ptr());
    if (res_) {
      downsample_ = in != out || stride != ones;
      if (downsample_) {
        conv3_ = register_module("conv3", DynConv(o, in, out, ones, stride, false));
        norm3_ = make_norm(o.norm, o.dims, out);
        register_module("norm3", norm3_.ptr());
      }
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = lrelu_.forward(norm1_.forward(conv1_->forward(x)));
    y = norm2_.forward(conv2_->forward(y));
    if (!res_) return lrelu_.forward(y);
    const auto residual = downsample_ ? norm3_.forward(conv3_->forward(x)) : x;
    return lrelu_.forward(y + residual);
  }

 private:
  bool res_ = false, downsample_ = false;
  DynConv conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::AnyModule lrelu_, norm1_, norm2_, norm3_;
};
TORCH_MODULE(DynBlock);

/// UnetUpBlock: transp_conv (kernel = stride = upsample kernel, bias trans_bias), then
/// conv_block = UnetBasicBlock(2 out -> out) on cat([upsampled, skip]).
class DynUpBlockImpl : public torch::nn::Module {
 public:
  DynUpBlockImpl(
      const DynUNetOptions& o, int64_t in, int64_t out, const Ints& kernel, const Ints& up_kernel) {
    transp_conv_ = register_module("transp_conv", DynConv(o, in, out, up_kernel, up_kernel,
                                                          o.trans_bias, /*transposed=*/true));
    conv_block_ = register_module(
        "conv_block", DynBlock(o, 2 * out, out, kernel, Ints(kernel.size(), 1), /*res=*/false));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& skip) {
    return conv_block_->forward(torch::cat({transp_conv_->forward(x), skip}, 1));
  }

 private:
  DynConv transp_conv_{nullptr};
  DynBlock conv_block_{nullptr};
};
TORCH_MODULE(DynUpBlock);

/// UnetOutBlock: conv = 1x1 DynConv with bias.
class DynOutBlockImpl : public torch::nn::Module {
 public:
  DynOutBlockImpl(const DynUNetOptions& o, int64_t in, int64_t out) {
    const Ints ones(static_cast<std::size_t>(o.dims), 1);
    conv_ = register_module("conv", DynConv(o, in, out, ones, ones, /*bias=*/true));
  }
  torch::Tensor forward(torch::Tensor x) { return conv_->forward(x); }

 private:
  DynConv conv_{nullptr};
};
TORCH_MODULE(DynOutBlock);

/// DynUNetSkipLayer: children downsample, next_layer, upsample and (deep supervision levels >= 1)
/// super_head, all shared with the network's own lists. In training mode with a super head its
/// output is stored in `heads[index - 1]`.
class DynSkipLayerImpl : public torch::nn::Module {
 public:
  DynSkipLayerImpl(std::size_t index,
                   DynBlock downsample,
                   torch::nn::AnyModule next_layer,
                   DynUpBlock upsample,
                   DynOutBlock super_head,
                   std::vector<torch::Tensor>* heads)
      : index_(index),
        downsample_(std::move(downsample)),
        next_(std::move(next_layer)),
        upsample_(std::move(upsample)),
        super_head_(std::move(super_head)),
        heads_(heads) {
    register_module("downsample", downsample_);
    register_module("next_layer", next_.ptr());
    register_module("upsample", upsample_);
    if (super_head_) register_module("super_head", super_head_);
  }
  torch::Tensor forward(torch::Tensor x) {
    const auto down = downsample_->forward(x);
    const auto next = next_.forward(down);
    auto up = upsample_->forward(next, down);
    if (super_head_ && heads_ != nullptr && index_ > 0 && is_training())
      (*heads_)[index_ - 1] = super_head_->forward(up);
    return up;
  }

 private:
  std::size_t index_;
  DynBlock downsample_;
  torch::nn::AnyModule next_;
  DynUpBlock upsample_;
  DynOutBlock super_head_;
  std::vector<torch::Tensor>* heads_;
};
TORCH_MODULE(DynSkipLayer);

class DynUNet final : public Network {
 public:
  explicit DynUNet(DynUNetOptions o) : o_(std::move(o)) {
    const auto& f = o_.filters;
    const std::size_t L = o_.strides.size();
    input_block_ = register_module(
        "input_block", DynBlock(o_, o_.in, f[0], o_.kernels[0], o_.strides[0], o_.res_block));
    downsamples_ = torch::nn::ModuleList();
    std::vector<DynBlock> downs;
    for (std::size_t i = 1; i + 1 < L; ++i) {
      DynBlock b(o_, f[i - 1], f[i], o_.kernels[i], o_.strides[i], o_.res_block);
      downsamples_->push_back(b);
      downs.push_back(b);
    }
    register_module("downsamples", downsamples_);
    bottleneck_ = register_module("bottleneck", DynBlock(o_, f[L - 2], f[L - 1], o_.kernels[L - 1],
                                                         o_.strides[L - 1], o_.res_block));
    // upsamples[j] (j = 0 deepest): filters[L-1-j] -> filters[L-2-j], kernel k[L-1-j], up kernel
    // upsample_kernel_size[L-2-j] (MONAI zips the reversed lists).
    upsamples_ = torch::nn::ModuleList();
    std::vector<DynUpBlock> ups;
    for (std::size_t j = 0; j + 1 < L; ++j) {
      DynUpBlock u(o_, f[L - 1 - j], f[L - 2 - j], o_.kernels[L - 1 - j], o_.up_kernels[L - 2 - j]);
      upsamples_->push_back(u);
      ups.push_back(u);
    }
    register_module("upsamples", upsamples_);
    output_block_ = register_module("output_block", DynOutBlock(o_, f[0], o_.out));
    std::vector<DynOutBlock> heads;
    if (o_.deep_supervision) {
      heads_list_ = torch::nn::ModuleList();
      for (int i = 0; i < o_.deep_supr_num; ++i) {
        DynOutBlock h(o_, f[static_cast<std::size_t>(i) + 1], o_.out);
        heads_list_->push_back(h);
        heads.push_back(h);
      }
      register_module("deep_supervision_heads", heads_list_);
      heads_.resize(static_cast<std::size_t>(o_.deep_supr_num));
    }
    // create_skips: level i pairs downs[i] (input_block for i = 0) with ups[L-2-i]; level i >= 1
    // carries super head i-1 while there are heads left.
    std::vector<DynBlock> all_downs = {input_block_};
    all_downs.insert(all_downs.end(), downs.begin(), downs.end());
    torch::nn::AnyModule next(bottleneck_);
    DynSkipLayer layer{nullptr};
    for (std::size_t i = all_downs.size(); i-- > 0;) {
      DynOutBlock head{nullptr};
      if (o_.deep_supervision && i >= 1 && i - 1 < heads.size()) head = heads[i - 1];
      layer = DynSkipLayer(i, all_downs[i], next, ups[L - 2 - i], head,
                           o_.deep_supervision ? &heads_ : nullptr);
      next = torch::nn::AnyModule(layer);
    }
    skip_layers_ = register_module("skip_layers", layer);
  }

  torch::Tensor forward(torch::Tensor x) override {
    auto out = output_block_->forward(skip_layers_->forward(x));
    if (!(is_training() && o_.deep_supervision)) return out;
    std::vector<torch::Tensor> all = {out};
    const auto size = out.sizes().slice(2).vec();
    for (auto& h : heads_) {
      BARTON_INTERNAL_ASSERT(h.defined(), "DynUNet: a deep supervision head produced no output");
      all.push_back(
          F::interpolate(h, F::InterpolateFuncOptions().size(size).mode(torch::kNearest)));
      h = torch::Tensor();
    }
    return torch::stack(all, 1);
  }
  std::string name() const override { return "DynUNet"; }
  int spatial_dims() const override { return o_.dims; }

 private:
  DynUNetOptions o_;
  DynBlock input_block_{nullptr}, bottleneck_{nullptr};
  torch::nn::ModuleList downsamples_{nullptr}, upsamples_{nullptr}, heads_list_{nullptr};
  DynOutBlock output_block_{nullptr};
  DynSkipLayer skip_layers_{nullptr};
  std::vector<torch::Tensor> heads_;  ///< Deep supervision outputs of the current training forward.
};

ComponentSpec dyn_unet_spec() {
  auto args = spatial_dims_specs();
  for (auto a :
       {req("in_channels", A::kInt, "Input channels."),
        req("out_channels", A::kInt, "Output channels (classes)."),
        req("kernel_size", A::kAny, "Kernel per level: an int or spatial_dims ints each."),
        req("strides", A::kAny,
            "Stride per level (the first is the input block's): an int or spatial_dims ints each."),
        req("upsample_kernel_size", A::kAny,
            "Transposed-convolution kernel per up level (the last len(strides) - 1 are used)."),
        opt("filters", A::kInts, "null",
            "Channels per level; null: 32 * 2^level, at most 320 (3D) or 512 (2D)."),
        opt("dropout", A::kFloat, "null", "Dropout probability; null: none."),
        opt("norm_name", A::kAny, "[\"INSTANCE\", {\"affine\": true}]",
            "Normalisation: a name or [name, {args}]."),
        opt("act_name", A::kAny, "[\"leakyrelu\", {\"inplace\": true, \"negative_slope\": 0.01}]",
            "Activation: a name or [name, {args}]."),
        opt("deep_supervision", A::kBool, "false",
            "Add output heads on upper decoder levels for deep supervision in training."),
        opt("deep_supr_num", A::kInt, "1",
            "Number of extra deep-supervision heads (fewer than the up levels)."),
        opt("res_block", A::kBool, "false",
            "Use residual blocks instead of plain convolution blocks."),
        opt("trans_bias", A::kBool, "false", "Use a bias in the transposed convolutions.")})
    args.push_back(a);
  return ComponentSpec{"DynUNet", "nnU-Net style dynamic UNet with deep supervision.", args};
}

}  // namespace

void register_dynunet(NetworkRegistry& r) {
  r.add(dyn_unet_spec(), [](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Network> {
    auto o = DynUNetOptions::from_config(a);
    return build_at(a, [&] { return std::make_unique<DynUNet>(o); });
  });
}

}  // namespace barton::nets
