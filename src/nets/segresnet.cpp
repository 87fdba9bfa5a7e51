// MONAI's SegResNet (monai/networks/nets/segresnet.py, blocks/segresnet_block.py) with its module
// tree and parameter names (docs/monai-semantics-nn.md section 3.2): act_mod, convInit,
// down_layers, up_layers, up_samples, conv_final (whose index 1 is the shared act_mod), dropout.
#include <torch/torch.h>

#include "core/errors.h"
#include "core/strings.h"
#include "nets/blocks/extra_layers.h"
#include "nets/blocks/layers.h"
#include "nets/register.h"

namespace barton::nets {

namespace {

using A = ArgType;

struct SegResNetOptions {
  // from_config sets every field from the arguments, whose defaults are the spec's (ADR 0002).
  int dims = 0;
  int64_t init_filters = 0;
  int64_t in = 0, out = 0;
  double dropout_prob = -1;  ///< < 0: none (MONAI dropout_prob=None).
  LayerSpec act, norm;
  bool use_conv_final = false;
  std::vector<int64_t> blocks_down, blocks_up;
  std::string upsample_mode;

  static SegResNetOptions from_config(const ConfigNode& a) {
    SegResNetOptions o;
    o.dims = parse_spatial_dims(a, 3);
    o.init_filters = a.require<int64_t>("init_filters");
    std::tie(o.in, o.out) = parse_io_channels(a);
    if (o.init_filters < 1)
      throw ConfigError(a.source(), a.pointer() + "/init_filters", "must be positive");
    if (a.given("dropout_prob")) {
      o.dropout_prob = a.at("dropout_prob").as<double>();
      if (o.dropout_prob < 0 || o.dropout_prob > 1) {
        throw ConfigError(a.source(), a.pointer() + "/dropout_prob", "must be in [0, 1]");
      }
    }
    o.act = parse_act(a, "act", /*allow_none=*/false);
    o.norm = parse_norm(a, "norm", o.dims, /*allow_none=*/false);
    // Deprecated norm_name / num_groups: only "group" is accepted; it overrides norm.
    const auto norm_name = a.require<std::string>("norm_name");
    if (!norm_name.empty()) {
      if (to_lower(norm_name) != "group") {
        throw ConfigError(a.source(), a.pointer() + "/norm_name",
                          "deprecated norm_name must be 'group' (use norm instead)");
      }
      o.norm = LayerSpec::of(
          "group", {{"num_groups", static_cast<double>(a.require<int64_t>("num_groups"))}});
    }
    o.use_conv_final = a.require<bool>("use_conv_final");
    auto blocks = [&](const char* key, std::vector<int64_t>& dst) {
      const auto v = a.at(key);
      dst = v.is_array() ? v.as<std::vector<int64_t>>() : std::vector<int64_t>{v.as<int64_t>()};
      for (auto b : dst) {
        if (b < 0) throw v.error("block counts must not be negative");
      }
    };
    blocks("blocks_down", o.blocks_down);
    blocks("blocks_up", o.blocks_up);
    if (o.blocks_down.empty())
      throw ConfigError(a.source(), a.pointer() + "/blocks_down", "needs at least one level");
    if (o.blocks_up.size() + 1 > o.blocks_down.size()) {
      throw ConfigError(a.source(), a.pointer() + "/blocks_up",
                        fmt::format("has {} levels; at most len(blocks_down) - 1 = {}",
                                    o.blocks_up.size(), o.blocks_down.size() - 1));
    }
    o.upsample_mode = parse_upsample_mode(a, "upsample_mode");
    return o;
  }
};

/// get_conv_layer: Convolution(conv_only) -> key "<name>.conv.weight".
Convolution conv_layer(
    int dims, int64_t in, int64_t out, int64_t kernel = 3, int64_t stride = 1, bool bias = false) {
  ConvOptions c;
  c.dims = dims;
  c.in = in;
  c.out = out;
  c.kernel = kernel;
  c.stride = stride;
  c.bias = bias;
  c.conv_only = true;
  return Convolution(c);
}

/// ResBlock: children norm1, norm2, act, conv1, conv2; x + conv2(act(norm2(conv1(act(norm1(x)))))).
class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(const SegResNetOptions& o, int64_t channels) {
    norm1_ = make_norm(o.norm, o.dims, channels);
    register_module("norm1", norm1_.ptr());
    norm2_ = make_norm(o.norm, o.dims, channels);
    register_module("norm2", norm2_.ptr());
    act_ = make_act(o.act);
    register_module("act", act_.ptr());
    conv1_ = register_module("conv1", conv_layer(o.dims, channels, channels));
    conv2_ = register_module("conv2", conv_layer(o.dims, channels, channels));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = conv1_->forward(act_.forward(norm1_.forward(x)));
    y = conv2_->forward(act_.forward(norm2_.forward(y)));
    return y + x;
  }

 private:
  torch::nn::AnyModule norm1_, norm2_, act_;
  Convolution conv1_{nullptr}, conv2_{nullptr};
};
TORCH_MODULE(ResBlock);

class SegResNet final : public Network {
 public:
  explicit SegResNet(SegResNetOptions o) : o_(std::move(o)) {
    const int64_t f = o_.init_filters;
    act_mod_ = make_act(o_.act);
    register_module("act_mod", act_mod_.ptr());
    conv_init_ = register_module("convInit", conv_layer(o_.dims, o_.in, f));
    down_layers_ = torch::nn::ModuleList();
    for (std::size_t i = 0; i < o_.blocks_down.size(); ++i) {
      const int64_t ch = f << i;
      Seq s;
      if (i == 0)
        s->push_back(torch::nn::Identity());
      else
        s->push_back(conv_layer(o_.dims, ch / 2, ch, 3, 2));
      for (int64_t b = 0; b < o_.blocks_down[i]; ++b) s->push_back(ResBlock(o_, ch));
      down_layers_->push_back(s);
      downs_.push_back(s);
    }
    register_module("down_layers", down_layers_);
    up_layers_ = torch::nn::ModuleList();
    up_samples_ = torch::nn::ModuleList();
    const std::size_t n_up = o_.blocks_up.size();
    for (std::size_t i = 0; i < n_up; ++i) {
      const int64_t ch = f << (n_up - i);
      Seq layer;
      for (int64_t b = 0; b < o_.blocks_up[i]; ++b) layer->push_back(ResBlock(o_, ch / 2));
      up_layers_->push_back(layer);
      ups_.push_back(layer);
      Seq sample;
      sample->push_back(conv_layer(o_.dims, ch, ch / 2, 1));
      sample->push_back(
          UpSample(o_.dims, ch / 2, ch / 2, o_.upsample_mode, /*align_corners=*/false));
      up_samples_->push_back(sample);
      samples_.push_back(sample);
    }
    register_module("up_layers", up_layers_);
    register_module("up_samples", up_samples_);
    conv_final_ = Seq();
    conv_final_->push_back(make_norm(o_.norm, o_.dims, f));
    conv_final_->push_back(act_mod_);  // the same module instance as act_mod
    conv_final_->push_back(conv_layer(o_.dims, f, o_.out, 1, 1, /*bias=*/true));
    register_module("conv_final", conv_final_);
    if (o_.dropout_prob >= 0) {
      dropout_ = make_dropout(o_.dropout_prob, o_.dims);
      register_module("dropout", dropout_.ptr());
    }
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = conv_init_->forward(x);
    if (o_.dropout_prob >= 0) x = dropout_.forward(x);
    std::vector<torch::Tensor> down_x;
    for (auto& d : downs_) {
      x = d->forward(x);
      down_x.push_back(x);
    }
    std::reverse(down_x.begin(), down_x.end());
    for (std::size_t i = 0; i < samples_.size(); ++i) {
      x = samples_[i]->forward(x) + down_x[i + 1];
      if (!ups_[i]->is_empty()) x = ups_[i]->forward(x);  // blocks_up[i] == 0: empty Sequential
    }
    if (o_.use_conv_final) x = conv_final_->forward(x);
    return x;
  }
  std::string name() const override { return "SegResNet"; }
  int spatial_dims() const override { return o_.dims; }

 private:
  SegResNetOptions o_;
  torch::nn::AnyModule act_mod_, dropout_;
  Convolution conv_init_{nullptr};
  torch::nn::ModuleList down_layers_{nullptr}, up_layers_{nullptr}, up_samples_{nullptr};
  std::vector<Seq> downs_, ups_, samples_;
  Seq conv_final_{nullptr};
};

ComponentSpec seg_res_net_spec() {
  auto args = spatial_dims_specs();
  for (auto a :
       {opt("init_filters", A::kInt, "8",
            "Channels of the first level, doubled at each level down."),
        opt("in_channels", A::kInt, "1", "Input channels."),
        opt("out_channels", A::kInt, "2", "Output channels (classes)."),
        opt("dropout_prob", A::kFloat, "null",
            "Dropout probability after the initial convolution; null: none."),
        opt("act", A::kAny, "[\"RELU\", {\"inplace\": true}]",
            "Activation: a name or [name, {args}]."),
        opt("norm", A::kAny, "[\"GROUP\", {\"num_groups\": 8}]",
            "Normalisation: a name or [name, {args}]."),
        opt("norm_name", A::kString, "\"\"",
            "Deprecated: only group, which replaces norm with num_groups groups."),
        opt("num_groups", A::kInt, "8", "Deprecated: group count used with norm_name."),
        opt("use_conv_final", A::kBool, "true", "End with a 1x1 convolution to out_channels."),
        opt("blocks_down", A::kInts, "[1, 2, 2, 4]", "Residual blocks per encoder level."),
        opt("blocks_up", A::kInts, "[1, 1, 1]", "Residual blocks per decoder level."),
        opt("upsample_mode", A::kString, "\"nontrainable\"",
            "Up-sampling: deconv or nontrainable (pixelshuffle is not supported).")})
    args.push_back(a);
  return ComponentSpec{"SegResNet", "MONAI's SegResNet.", args};
}

}  // namespace

void register_segresnet(NetworkRegistry& r) {
  r.add(seg_res_net_spec(),
        [](const ConfigNode& a, const BuildContext&) -> std::unique_ptr<Network> {
          auto o = SegResNetOptions::from_config(a);
          return build_at(a, [&] { return std::make_unique<SegResNet>(o); });
        });
}

}  // namespace barton::nets
