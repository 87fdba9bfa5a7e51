// MONAI's AttentionUnet (monai/networks/nets/attentionunet.py, MONAI >= 1.4 semantics: kernel_size
// reaches the ConvBlocks) with its module tree and parameter names (docs/monai-semantics-nn.md
// section 3.4): model = Sequential(head ConvBlock, AttentionLayer recursion, reduce_channels).
#include <torch/torch.h>

#include "core/errors.h"
#include "nets/blocks/extra_layers.h"
#include "nets/blocks/layers.h"
#include "nets/register.h"

namespace barton::nets {

namespace {

using A = ArgType;

struct AttentionUnetOptions {
  // from_config sets every field from the arguments, whose defaults are the spec's (ADR 0002).
  int dims = 0;
  int64_t in = 0, out = 0;
  std::vector<int64_t> channels, strides;
  int64_t kernel = 0, up_kernel = 0;
  double dropout = 0.0;  ///< < 0: no dropout layer.

  static AttentionUnetOptions from_config(const ConfigNode& a) {
    AttentionUnetOptions o;
    o.dims = parse_spatial_dims(a, 3);
    std::tie(o.in, o.out) = parse_io_channels(a);
    const auto ch = a.at("channels");
    o.channels =
        ch.is_array() ? ch.as<std::vector<int64_t>>() : std::vector<int64_t>{ch.as<int64_t>()};
    if (o.channels.size() < 2) throw ch.error("needs at least 2 levels");
    for (auto c : o.channels) {
      if (c < 1) throw ch.error("channel counts must be positive");
    }
    const auto st = a.at("strides");
    if (st.is_array()) {
      for (std::size_t i = 0; i < st.size(); ++i)
        o.strides.push_back(isotropic_int(st.at(i), "stride"));
    } else {
      o.strides.push_back(st.as<int64_t>());
    }
    if (o.strides.size() < o.channels.size() - 1) {
      throw ConfigError(
          st.source(), st.pointer(),
          fmt::format("needs at least len(channels) - 1 = {} values", o.channels.size() - 1));
    }
    for (auto s : o.strides) {
      if (s < 1) throw st.error("strides must be positive");
    }
    o.kernel = isotropic_int(a.at("kernel_size"), "kernel_size");
    o.up_kernel = isotropic_int(a.at("up_kernel_size"), "up_kernel_size");
    for (const char* k : {"kernel_size", "up_kernel_size"}) {
      const int64_t v = std::string(k) == "kernel_size" ? o.kernel : o.up_kernel;
      if (v < 1 || v % 2 == 0)
        throw ConfigError(a.source(), a.pointer() + "/" + k, "must be odd (same padding)");
    }
    o.dropout = a.at("dropout").is_null() ? -1.0 : a.at("dropout").as<double>();
    return o;
  }
};

ConvOptions conv_opts(
    const AttentionUnetOptions& o, int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  ConvOptions c;
  c.dims = o.dims;
  c.in = in;
  c.out = out;
  c.kernel = kernel;
  c.stride = stride;
  return c;
}

/// ConvBlock: child "conv" = Sequential of two Convolutions (kernel k, stride s then 1; relu, batch
/// norm).
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(const AttentionUnetOptions& o, int64_t in, int64_t out, int64_t stride) {
    Seq s;
    for (int i = 0; i < 2; ++i) {
      auto c = conv_opts(o, i == 0 ? in : out, out, o.kernel, i == 0 ? stride : 1);
      c.act = LayerSpec::of("relu");
      c.norm = LayerSpec::of("batch");
      c.dropout = o.dropout;
      s->push_back(Convolution(c));
    }
    conv_ = register_module("conv", s);
  }
  torch::Tensor forward(torch::Tensor x) { return conv_->forward(x); }

 private:
  Seq conv_{nullptr};
};
TORCH_MODULE(ConvBlock);

/// UpConv: child "up" = transposed Convolution (relu, batch norm, dropout 0).
class UpConvImpl : public torch::nn::Module {
 public:
  UpConvImpl(const AttentionUnetOptions& o, int64_t in, int64_t out, int64_t stride) {
    auto c = conv_opts(o, in, out, o.up_kernel, stride);
    c.act = LayerSpec::of("relu");
    c.norm = LayerSpec::of("batch");
    c.dropout = 0.0;
    c.transposed = true;
    up_ = register_module("up", Convolution(c));
  }
  torch::Tensor forward(torch::Tensor x) { return up_->forward(x); }

 private:
  Convolution up_{nullptr};
};
TORCH_MODULE(UpConv);

/// AttentionBlock: W_g, W_x = Seq(1x1 conv, BatchNorm); psi = Seq(1x1 conv -> 1, BatchNorm(1),
/// Sigmoid); relu.
class AttentionBlockImpl : public torch::nn::Module {
 public:
  AttentionBlockImpl(const AttentionUnetOptions& o, int64_t f_int, int64_t f_g, int64_t f_l) {
    auto c1 = [&](int64_t i, int64_t out) {
      auto c = conv_opts(o, i, out, 1, 1);
      c.conv_only = true;
      return Convolution(c);
    };
    auto bn = [&](int64_t ch) { return make_norm(LayerSpec::of("batch"), o.dims, ch); };
    Seq wg, wx, psi;
    wg->push_back(c1(f_g, f_int));
    wg->push_back(bn(f_int));
    wx->push_back(c1(f_l, f_int));
    wx->push_back(bn(f_int));
    psi->push_back(c1(f_int, 1));
    psi->push_back(bn(1));
    psi->push_back(torch::nn::Sigmoid());
    w_g_ = register_module("W_g", wg);
    w_x_ = register_module("W_x", wx);
    psi_ = register_module("psi", psi);
    register_module("relu", torch::nn::ReLU());
  }
  torch::Tensor forward(const torch::Tensor& g, const torch::Tensor& x) {
    const auto a = torch::relu(w_g_->forward(g) + w_x_->forward(x));
    return x * psi_->forward(a);
  }

 private:
  Seq w_g_{nullptr}, w_x_{nullptr}, psi_{nullptr};
};
TORCH_MODULE(AttentionBlock);

/// AttentionLayer: children attention, upconv, merge, submodule;
/// merge(cat([attention(g = up, x), up])) with up = upconv(submodule(x)).
class AttentionLayerImpl : public torch::nn::Module {
 public:
  AttentionLayerImpl(const AttentionUnetOptions& o,
                     int64_t in,
                     int64_t out,
                     torch::nn::AnyModule submodule,
                     int64_t stride)
      : submodule_(std::move(submodule)) {
    attention_ = register_module("attention", AttentionBlock(o, in / 2, in, in));
    upconv_ = register_module("upconv", UpConv(o, out, in, stride));
    auto m = conv_opts(o, 2 * in, in, 3, 1);  // MONAI Convolution defaults: PReLU, instance norm
    m.dropout = o.dropout;
    merge_ = register_module("merge", Convolution(m));
    register_module("submodule", submodule_.ptr());
  }
  torch::Tensor forward(torch::Tensor x) {
    const auto from_lower = upconv_->forward(submodule_.forward(x));
    const auto att = attention_->forward(from_lower, x);
    return merge_->forward(torch::cat({att, from_lower}, 1));
  }

 private:
  AttentionBlock attention_{nullptr};
  UpConv upconv_{nullptr};
  Convolution merge_{nullptr};
  torch::nn::AnyModule submodule_;
};
TORCH_MODULE(AttentionLayer);

class AttentionUnet final : public Network {
 public:
  explicit AttentionUnet(AttentionUnetOptions o) : o_(std::move(o)) {
    model_ = Seq();
    model_->push_back(ConvBlock(o_, o_.in, o_.channels[0], 1));
    model_->push_back(block(0));
    auto rc = conv_opts(o_, o_.channels[0], o_.out, 1, 1);
    rc.conv_only = true;
    model_->push_back(Convolution(rc));
    register_module("model", model_);
  }
  torch::Tensor forward(torch::Tensor x) override { return model_->forward(x); }
  std::string name() const override { return "AttentionUnet"; }
  int spatial_dims() const override { return o_.dims; }

 private:
  AttentionLayer block(std::size_t level) const {
    const int64_t c0 = o_.channels[level], c1 = o_.channels[level + 1], s = o_.strides[level];
    if (o_.channels.size() - level > 2) {
      Seq sub;
      sub->push_back(ConvBlock(o_, c0, c1, s));
      sub->push_back(block(level + 1));
      return AttentionLayer(o_, c0, c1, torch::nn::AnyModule(sub), s);
    }
    return AttentionLayer(o_, c0, c1, torch::nn::AnyModule(ConvBlock(o_, c0, c1, s)),
                          s);  // the bottom layer
  }

  AttentionUnetOptions o_;
  Seq model_{nullptr};
};

ComponentSpec attention_unet_spec() {
  auto args = spatial_dims_specs();
  for (auto a : {req("in_channels", A::kInt, "Input channels."),
                 req("out_channels", A::kInt, "Output channels (classes)."),
                 req("channels", A::kInts, "Channels per level."),
                 req("strides", A::kInts, "Stride per down level (isotropic)."),
                 opt("kernel_size", A::kInts, "3", "Convolution kernel size (odd, isotropic)."),
                 opt("up_kernel_size", A::kInts, "3",
                     "Up-sampling convolution kernel size (odd, isotropic)."),
                 opt("dropout", A::kFloat, "0.0", "Dropout probability; null: no dropout layer.")})
    args.push_back(a);
  return ComponentSpec{"AttentionUnet", "Attention UNet.", args};
}

}  // namespace

void register_attention_unet(NetworkRegistry& r) {
  r.add(attention_unet_spec(),
        [](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Network> {
          auto o = AttentionUnetOptions::from_config(a);
          return build_at(a, [&] { return std::make_unique<AttentionUnet>(o); });
        });
}

}  // namespace barton::nets
