// MONAI's UNet (monai/networks/nets/unet.py) with its module tree and parameter names.
#include <torch/torch.h>

#include "core/errors.h"
#include "nets/blocks/extra_layers.h"
#include "nets/blocks/layers.h"
#include "nets/register.h"

namespace barton::nets {

namespace {

using A = ArgType;

struct UNetOptions {
  // from_config sets every field from the arguments, whose defaults are the spec's (ADR 0002).
  int dims = 0;
  int64_t in = 0, out = 0;
  std::vector<int64_t> channels, strides;
  int64_t kernel = 0, up_kernel = 0;
  int num_res_units = 0;
  LayerSpec act, norm;
  double dropout = 0.0;  ///< also MONAI's dropout=None
  bool bias = false;
  std::string adn_ordering;

  static UNetOptions from_config(const ConfigNode& a) {
    UNetOptions o;
    o.dims = parse_spatial_dims(a, 3);
    std::tie(o.in, o.out) = parse_io_channels(a);
    o.channels = a.require<std::vector<int64_t>>("channels");
    o.strides = a.require<std::vector<int64_t>>("strides");
    if (o.channels.size() < 2) throw a.at("channels").error("needs at least 2 levels");
    if (o.strides.size() < o.channels.size() - 1) {
      throw ConfigError(
          a.at("strides").source(), a.at("strides").pointer(),
          fmt::format("needs at least len(channels) - 1 = {} values", o.channels.size() - 1));
    }
    auto scalar_kernel = [&](const char* k) {
      const auto v = a.at(k);
      if (v.is_array()) {
        const auto ks = v.as<std::vector<int64_t>>();
        for (auto x : ks) {
          if (x != ks[0]) throw v.error("anisotropic kernels are not supported yet");
        }
        return ks.at(0);
      }
      return v.as<int64_t>();
    };
    o.kernel = scalar_kernel("kernel_size");
    o.up_kernel = scalar_kernel("up_kernel_size");
    o.num_res_units = a.require<int>("num_res_units");
    o.act = LayerSpec::from_config(a.at("act"));
    o.norm = LayerSpec::from_config(a.at("norm"));
    if (auto v = a.get_optional<double>("dropout")) o.dropout = *v;
    o.bias = a.require<bool>("bias");
    o.adn_ordering = a.require<std::string>("adn_ordering");
    try {
      make_act(o.act);
      (void)make_norm(o.norm.name.empty() ? LayerSpec::of("batch") : o.norm, o.dims, 8 * 8);
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      throw a.error(e.what());
    }
    return o;
  }
};

class UNet final : public Network {
 public:
  explicit UNet(UNetOptions o) : o_(std::move(o)) {
    model_ = register_module("model", block(o_.in, o_.out, 0, true));
  }
  torch::Tensor forward(torch::Tensor x) override { return model_->forward(x); }
  std::string name() const override { return "UNet"; }
  int spatial_dims() const override { return o_.dims; }

 private:
  ConvOptions conv(int64_t in, int64_t out, int64_t stride, int64_t kernel) const {
    ConvOptions c;
    c.dims = o_.dims;
    c.in = in;
    c.out = out;
    c.stride = stride;
    c.kernel = kernel;
    c.act = o_.act;
    c.norm = o_.norm;
    c.dropout = o_.dropout;
    c.bias = o_.bias;
    c.adn_ordering = o_.adn_ordering;
    return c;
  }
  torch::nn::AnyModule down(int64_t in, int64_t out, int64_t stride) const {
    if (o_.num_res_units > 0)
      return torch::nn::AnyModule(
          ResidualUnit(conv(in, out, stride, o_.kernel), o_.num_res_units, false));
    return torch::nn::AnyModule(Convolution(conv(in, out, stride, o_.kernel)));
  }
  torch::nn::AnyModule up(int64_t in, int64_t out, int64_t stride, bool is_top) const {
    auto c = conv(in, out, stride, o_.up_kernel);
    c.transposed = true;
    c.conv_only = is_top && o_.num_res_units == 0;
    auto up_conv = Convolution(c);
    if (o_.num_res_units == 0) return torch::nn::AnyModule(up_conv);
    Seq seq;
    seq->push_back(up_conv);
    seq->push_back(ResidualUnit(conv(out, out, 1, o_.kernel), 1, is_top));
    return torch::nn::AnyModule(seq);
  }
  Seq block(int64_t in, int64_t out, std::size_t level, bool is_top) const {
    const int64_t c = o_.channels[level], s = o_.strides[level];
    torch::nn::AnyModule sub;
    int64_t upc;
    if (o_.channels.size() - level > 2) {
      sub = torch::nn::AnyModule(block(c, c, level + 1, false));
      upc = c * 2;
    } else {
      sub = down(c, o_.channels[level + 1], 1);  // the bottom layer
      upc = c + o_.channels[level + 1];
    }
    Seq seq;
    seq->push_back(down(in, c, s));
    seq->push_back(SkipConnection(sub));
    seq->push_back(up(upc, out, s, is_top));
    return seq;
  }

  UNetOptions o_;
  Seq model_{nullptr};
};

ComponentSpec unet_spec() {
  auto args = spatial_dims_specs();
  for (auto a :
       {req("in_channels", A::kInt, "Input channels."),
        req("out_channels", A::kInt, "Output channels (classes)."),
        req("channels", A::kInts, "Channels per level."),
        req("strides", A::kInts, "Stride per down level."),
        opt("kernel_size", A::kInts, "3", "Convolution kernel size (isotropic)."),
        opt("up_kernel_size", A::kInts, "3", "Up-sampling convolution kernel size (isotropic)."),
        opt("num_res_units", A::kInt, "0", "Residual units per level; 0: plain convolutions."),
        opt("act", A::kAny, "\"PRELU\"", "Activation: a name or [name, {args}]."),
        opt("norm", A::kAny, "\"INSTANCE\"", "batch, instance or group."),
        opt("dropout", A::kFloat, "0.0", "Dropout probability."),
        opt("bias", A::kBool, "true", "Use a bias in the convolutions."),
        opt("adn_ordering", A::kString, "\"NDA\"",
            "Order of activation (A), dropout (D) and normalisation (N) after a convolution.")})
    args.push_back(a);
  return ComponentSpec{"UNet", "MONAI's residual UNet; state_dict keys match MONAI's.", args};
}

}  // namespace

void register_unet(NetworkRegistry& r) {
  r.add(unet_spec(), [](const ConfigNode& a, const BuildContext&) {
    return std::make_unique<UNet>(UNetOptions::from_config(a));
  });
}

}  // namespace barton::nets
