// MONAI's BasicUNet (monai/networks/nets/basic_unet.py) with its module tree and parameter names
// (docs/monai-semantics-nn.md section 3.1): conv_0, down_1..down_4, upcat_4..upcat_1, final_conv.
#include <torch/torch.h>

#include "core/errors.h"
#include "nets/blocks/extra_layers.h"
#include "nets/blocks/layers.h"
#include "nets/register.h"

namespace barton::nets {

namespace {

using A = ArgType;

namespace F = torch::nn::functional;

struct BasicUNetOptions {
  // from_config sets every field from the arguments, whose defaults are the spec's (ADR 0002).
  int dims = 0;
  int64_t in = 0, out = 0;
  std::vector<int64_t> features;
  LayerSpec act, norm;
  bool bias = false;
  double dropout = 0.0;  ///< < 0: no dropout layer (MONAI dropout=None).
  std::string upsample;

  static BasicUNetOptions from_config(const ConfigNode& a) {
    BasicUNetOptions o;
    o.dims = parse_spatial_dims(a, 3);
    std::tie(o.in, o.out) = parse_io_channels(a);
    o.features = ints_rep(a.at("features"), 6);
    for (std::size_t i = 0; i < o.features.size(); ++i) {
      if (o.features[i] < 1)
        throw ConfigError(a.source(), a.pointer() + "/features",
                          "every feature count must be positive");
    }
    o.act = parse_act(a, "act", /*allow_none=*/true);
    o.norm = parse_norm(a, "norm", o.dims, /*allow_none=*/true);
    o.bias = a.require<bool>("bias");
    o.dropout = a.at("dropout").is_null() ? -1.0 : a.at("dropout").as<double>();
    o.upsample = parse_upsample_mode(a, "upsample");
    return o;
  }
};

/// TwoConv: Sequential of conv_0, conv_1 (Convolution, kernel 3, padding 1, NDA).
Seq two_conv(const BasicUNetOptions& o, int64_t in, int64_t out) {
  auto conv = [&](int64_t i, int64_t c) {
    ConvOptions co;
    co.dims = o.dims;
    co.in = i;
    co.out = c;
    co.kernel = 3;
    co.stride = 1;
    co.act = o.act;
    co.norm = o.norm;
    co.dropout = o.dropout;
    co.bias = o.bias;
    return Convolution(co);
  };
  Seq s;
  s->push_back("conv_0", conv(in, out));
  s->push_back("conv_1", conv(out, out));
  return s;
}

/// Down: Sequential of max_pooling (kernel 2) and convs (TwoConv).
Seq down(const BasicUNetOptions& o, int64_t in, int64_t out) {
  Seq s;
  if (o.dims == 3)
    s->push_back("max_pooling", torch::nn::MaxPool3d(torch::nn::MaxPool3dOptions(2)));
  else
    s->push_back("max_pooling", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
  s->push_back("convs", two_conv(o, in, out));
  return s;
}

/// UpCat: upsample (in -> in/2, or in when !halves), then cat([skip, upsampled]) -> convs.
class UpCatImpl : public torch::nn::Module {
 public:
  UpCatImpl(const BasicUNetOptions& o, int64_t in, int64_t cat, int64_t out, bool halves)
      : dims_(o.dims) {
    const int64_t up = halves ? in / 2 : in;
    upsample_ =
        register_module("upsample", UpSample(o.dims, in, up, o.upsample, /*align_corners=*/true));
    convs_ = register_module("convs", two_conv(o, cat + up, out));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& skip) {
    auto x0 = upsample_->forward(x);
    // Replicate-pad by one voxel at the end of every axis whose size differs from the skip's.
    std::vector<int64_t> pad(static_cast<std::size_t>(2 * dims_), 0);
    bool any = false;
    for (int i = 0; i < dims_; ++i) {
      if (skip.size(-i - 1) != x0.size(-i - 1)) {
        pad[static_cast<std::size_t>(2 * i + 1)] = 1;
        any = true;
      }
    }
    if (any) x0 = F::pad(x0, F::PadFuncOptions(pad).mode(torch::kReplicate));
    return convs_->forward(torch::cat({skip, x0}, 1));
  }

 private:
  int dims_;
  UpSample upsample_{nullptr};
  Seq convs_{nullptr};
};
TORCH_MODULE(UpCat);

class BasicUNet final : public Network {
 public:
  explicit BasicUNet(BasicUNetOptions o) : o_(std::move(o)) {
    const auto& f = o_.features;
    conv_0_ = register_module("conv_0", two_conv(o_, o_.in, f[0]));
    down_1_ = register_module("down_1", down(o_, f[0], f[1]));
    down_2_ = register_module("down_2", down(o_, f[1], f[2]));
    down_3_ = register_module("down_3", down(o_, f[2], f[3]));
    down_4_ = register_module("down_4", down(o_, f[3], f[4]));
    upcat_4_ = register_module("upcat_4", UpCat(o_, f[4], f[3], f[3], true));
    upcat_3_ = register_module("upcat_3", UpCat(o_, f[3], f[2], f[2], true));
    upcat_2_ = register_module("upcat_2", UpCat(o_, f[2], f[1], f[1], true));
    upcat_1_ = register_module("upcat_1", UpCat(o_, f[1], f[0], f[5], false));
    final_conv_ = make_conv_nd(o_.dims, f[5], o_.out, 1, 1, 0, /*bias=*/true);
    register_module("final_conv", final_conv_.ptr());
  }
  torch::Tensor forward(torch::Tensor x) override {
    const auto x0 = conv_0_->forward(x);
    const auto x1 = down_1_->forward(x0);
    const auto x2 = down_2_->forward(x1);
    const auto x3 = down_3_->forward(x2);
    const auto x4 = down_4_->forward(x3);
    auto u = upcat_4_->forward(x4, x3);
    u = upcat_3_->forward(u, x2);
    u = upcat_2_->forward(u, x1);
    u = upcat_1_->forward(u, x0);
    return final_conv_.forward(u);
  }
  std::string name() const override { return "BasicUNet"; }
  int spatial_dims() const override { return o_.dims; }

 private:
  BasicUNetOptions o_;
  Seq conv_0_{nullptr}, down_1_{nullptr}, down_2_{nullptr}, down_3_{nullptr}, down_4_{nullptr};
  UpCat upcat_4_{nullptr}, upcat_3_{nullptr}, upcat_2_{nullptr}, upcat_1_{nullptr};
  torch::nn::AnyModule final_conv_;
};

ComponentSpec basic_unet_spec() {
  auto args = spatial_dims_specs();
  for (auto a :
       {opt("in_channels", A::kInt, "1", "Input channels."),
        opt("out_channels", A::kInt, "2", "Output channels (classes)."),
        opt("features", A::kInts, "[32, 32, 64, 128, 256, 32]",
            "Six channel counts: the five encoder levels and the last decoder level."),
        opt("act", A::kAny, "[\"LeakyReLU\", {\"negative_slope\": 0.1, \"inplace\": true}]",
            "Activation: a name or [name, {args}]; null: none."),
        opt("norm", A::kAny, "[\"instance\", {\"affine\": true}]",
            "Normalisation: a name or [name, {args}]; null: none."),
        opt("bias", A::kBool, "true", "Use a bias in the convolutions."),
        opt("dropout", A::kFloat, "0.0", "Dropout probability; null: no dropout layer."),
        opt("upsample", A::kString, "\"deconv\"",
            "Up-sampling: deconv or nontrainable (pixelshuffle is not supported).")})
    args.push_back(a);
  ComponentSpec s{"BasicUNet", "MONAI's BasicUNet.", args};
  s.aliases = {"BasicUnet", "Basicunet"};
  return s;
}

}  // namespace

void register_basic_unet(NetworkRegistry& r) {
  r.add(basic_unet_spec(),
        [](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Network> {
          auto o = BasicUNetOptions::from_config(a);
          return build_at(a, [&] { return std::make_unique<BasicUNet>(o); });
        });
}

}  // namespace barton::nets
