#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/config.h"
#include "mmar/registries.h"
#include "nets/blocks/layers.h"
#include "nets/network.h"
#include "support/test_support.h"

namespace barton::nets {
namespace {

std::unique_ptr<Network> make(const std::string& args) {
  return builtin_registries().networks.create(
      ConfigNode::parse("{\"name\": \"UNet\", \"args\": " + args + "}", "net.json"));
}

const char* kSpleen =
    R"({"dimensions": 3, "in_channels": 1, "out_channels": 2, "channels": [16, 32, 64, 128, 256],
                          "strides": [2, 2, 2, 2], "num_res_units": 2, "norm": "batch"})";

TEST(UNet, SpleenConfigHasMonaisParameterCountAndKeys) {
  auto net = make(kSpleen);
  EXPECT_EQ(count_parameters(*net), 4808917);
  const auto keys = state_dict_keys(*net);
  for (const char* k :
       {"model.0.conv.unit0.conv.weight", "model.0.conv.unit0.conv.bias",
        "model.0.conv.unit0.adn.N.weight", "model.0.conv.unit0.adn.N.running_mean",
        "model.0.conv.unit0.adn.N.num_batches_tracked", "model.0.conv.unit0.adn.A.weight",
        "model.0.conv.unit1.conv.weight", "model.0.residual.weight",
        "model.1.submodule.0.conv.unit0.conv.weight",
        "model.1.submodule.1.submodule.1.submodule.1.submodule.conv.unit0.conv.weight",
        "model.2.0.conv.weight", "model.2.0.adn.A.weight", "model.2.1.conv.unit0.conv.weight"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
  }
  // The top up-path residual unit ends with a bare convolution (last_conv_only) and no residual
  // conv.
  EXPECT_EQ(std::find(keys.begin(), keys.end(), "model.2.1.conv.unit0.adn.A.weight"), keys.end());
  EXPECT_EQ(std::find(keys.begin(), keys.end(), "model.2.1.residual.weight"), keys.end());
  EXPECT_EQ(keys.front(), "model.0.conv.unit0.conv.weight");
}

TEST(UNet, ForwardShapes2DAnd3D) {
  auto net = make(kSpleen);
  net->eval();
  torch::NoGradGuard g;
  EXPECT_EQ(net->forward(torch::randn({2, 1, 32, 32, 32})).sizes(),
            (torch::IntArrayRef{2, 2, 32, 32, 32}));
  auto net2 = make(
      R"({"spatial_dims": 2, "in_channels": 3, "out_channels": 4, "channels": [8, 16, 32], "strides": [2, 2],
                       "num_res_units": 0, "act": ["leakyrelu", {"negative_slope": 0.2}], "norm": ["group", {"num_groups": 4}]})");
  EXPECT_EQ(net2->forward(torch::randn({1, 3, 24, 40})).sizes(),
            (torch::IntArrayRef{1, 4, 24, 40}));
}

TEST(UNet, StateDictRoundTripGivesTheSameOutput) {
  auto a = make(kSpleen), b = make(kSpleen);
  a->eval();
  b->eval();
  load_state_dict(*b, state_dict(*a));
  torch::NoGradGuard g;
  const auto x = torch::randn({1, 1, 32, 32, 32});
  EXPECT_TRUE(torch::allclose(a->forward(x), b->forward(x)));
  auto sd = state_dict(*a);
  sd.erase("model.0.residual.weight");
  test::expect_error_containing([&] { load_state_dict(*b, sd); },
                                "missing keys: model.0.residual.weight");
  sd = state_dict(*a);
  sd["model.0.residual.weight"] = torch::zeros({3});
  test::expect_error_containing([&] { load_state_dict(*b, sd); },
                                "state_dict key 'model.0.residual.weight' has shape [3]");
}

TEST(UNet, BadConfigNamesThePointer) {
  test::expect_error_containing(
      [] {
        make(
            R"({"spatial_dims": 4, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]})");
      },
      "net.json:/args/spatial_dims: must be 2 or 3");
  test::expect_error_containing(
      [] {
        make(R"({"in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2]})");
      },
      "net.json:/args/strides: needs at least len(channels) - 1 = 2 values");
  test::expect_error_containing(
      [] {
        make(
            R"({"in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2], "act": "swish"})");
      },
      "unsupported activation 'swish'");
}

// The phase decomposition equals LibTorch's ConvTranspose to 1e-5, forward and backward (its own
// backward pass; with at most 4 output channels the batch-folded one).
void check_conv_transpose(int dims, int64_t out = 5) {
  torch::manual_seed(0);
  ConvTranspose fast(dims, 6, out, 3, 2, 1, 1, true), ref(dims, 6, out, 3, 2, 1, 1, true);
  ref->set_fast(false);
  {
    torch::NoGradGuard g;
    ref->weight.copy_(fast->weight);
    ref->bias.copy_(fast->bias);
  }
  std::vector<int64_t> shape = {2, 6, 7, 6};
  if (dims == 3) shape.push_back(5);
  auto x1 = torch::randn(shape, torch::requires_grad());
  auto x2 = x1.detach().clone().requires_grad_(true);
  auto y1 = fast->forward(x1), y2 = ref->forward(x2);
  ASSERT_EQ(y1.sizes(), y2.sizes());
  EXPECT_LT((y1 - y2).abs().max().item<float>(), 1e-5);
  auto g = torch::randn(y1.sizes());
  (y1 * g).sum().backward();
  (y2 * g).sum().backward();
  EXPECT_LT((x1.grad() - x2.grad()).abs().max().item<float>(), 1e-5);
  EXPECT_LT((fast->weight.grad() - ref->weight.grad()).abs().max().item<float>(), 1e-4);
  EXPECT_LT((fast->bias.grad() - ref->bias.grad()).abs().max().item<float>(), 1e-4);
}

TEST(ConvTranspose, PhaseDecompositionMatchesLibTorch3D) {
  check_conv_transpose(3);
  check_conv_transpose(3, 2);
}
TEST(ConvTranspose, PhaseDecompositionMatchesLibTorch2D) {
  check_conv_transpose(2);
  check_conv_transpose(2, 1);
}

// Inputs of at most 4 channels are convolved with the batch folded into the channels while
// gradients are recorded: the same outputs and gradients as the plain convolution.
TEST(ConvTranspose, BatchFoldedConvolutionMatchesPlain) {
  for (int dims : {2, 3}) {
    torch::manual_seed(1);
    ConvOptions o;
    o.dims = dims;
    o.in = 2;
    o.out = 3;
    o.stride = 2;
    o.conv_only = true;
    Convolution conv(o);
    std::vector<int64_t> shape = {3, 2, 9, 8};
    if (dims == 3) shape.push_back(7);
    auto x1 = torch::randn(shape, torch::requires_grad());
    auto x2 = x1.detach().clone().requires_grad_(true);
    auto y1 = conv->forward(x1);
    const auto params = conv->named_parameters();
    const auto& w = params["conv.weight"];
    const auto& b = params["conv.bias"];
    auto y2 = dims == 3 ? torch::conv3d(x2, w, b, 2, 1) : torch::conv2d(x2, w, b, 2, 1);
    ASSERT_EQ(y1.sizes(), y2.sizes());
    EXPECT_LT((y1 - y2).abs().max().item<float>(), 1e-5);
    auto g = torch::randn(y1.sizes());
    (y1 * g).sum().backward();
    const auto gw1 = w.grad().clone(), gb1 = b.grad().clone();
    w.mutable_grad().zero_();
    b.mutable_grad().zero_();
    (y2 * g).sum().backward();
    EXPECT_LT((x1.grad() - x2.grad()).abs().max().item<float>(), 1e-5);
    EXPECT_LT((gw1 - w.grad()).abs().max().item<float>(), 1e-4);
    EXPECT_LT((gb1 - b.grad()).abs().max().item<float>(), 1e-4);
  }
}

/// A 3-D convolution alone (no norm or activation), as the two slab tests below use it.
Convolution bare_conv(int64_t in, int64_t out, int64_t stride, int64_t kernel) {
  ConvOptions o;
  o.in = in;
  o.out = out;
  o.stride = stride;
  o.kernel = kernel;
  o.conv_only = true;
  return Convolution(o);
}

// Without gradients, thin 3D convolutions over large volumes run one slab of output planes at a
// time (the halo cut from the input, zeros past its ends): the same output as one convolution, for
// stride 1 and 2, odd depths, a last slab shorter than the others, and kernel sizes 1 and 3.
TEST(Convolution, SlabWiseEvalConvolutionMatchesPlain) {
  struct Case {
    int64_t in, out, stride, kernel, depth, hw;
  };
  for (const auto& c : std::vector<Case>{{2, 2, 1, 3, 80, 64},
                                         {1, 16, 2, 3, 81, 96},
                                         {16, 2, 1, 3, 70, 64},
                                         {1, 16, 1, 1, 75, 64}}) {
    SCOPED_TRACE(fmt::format("{}->{} stride {} kernel {} depth {}", c.in, c.out, c.stride, c.kernel,
                             c.depth));
    torch::manual_seed(3);
    Convolution conv = bare_conv(c.in, c.out, c.stride, c.kernel);
    conv->eval();
    const auto x = torch::randn({2, c.in, c.depth, c.hw, c.hw - 3});
    const auto params = conv->named_parameters();
    torch::NoGradGuard ng;
    const auto y = conv->forward(x);
    const auto ref =
        torch::conv3d(x, params["conv.weight"], params["conv.bias"], c.stride, (c.kernel - 1) / 2);
    ASSERT_EQ(y.sizes(), ref.sizes());
    EXPECT_LT((y - ref).abs().max().item<float>(), 1e-5);
    EXPECT_TRUE(y.is_contiguous());
  }
}

TEST(Convolution, BatchOfOneSmall3DInputGoesToOneDnnWithTheSameResult) {
  // PyTorch's rule sends these to its slow native convolution; Barton calls oneDNN directly.
  torch::manual_seed(5);
  for (const auto& shape :
       std::vector<std::vector<int64_t>>{{1, 16, 32, 32, 32}, {1, 3, 17, 20, 9}}) {
    const auto x = torch::randn(shape);
    const auto w = torch::randn({8, shape[1], 3, 3, 3}), b = torch::randn({8});
    torch::NoGradGuard ng;
    const auto y = slab_conv3d(x, w, b, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1);
    const auto ref = torch::conv3d(x, w, b, 1, 1);
    ASSERT_EQ(y.sizes(), ref.sizes());
    EXPECT_LT((y - ref).abs().max().item<float>(), 1e-3 * ref.abs().max().item<float>());
  }
}

// With gradients a batch of one is cut into column slabs along the last axis, batched, and
// joined: the same output and the same gradients for the input, weight and bias as one
// convolution, for stride 1 and 2, kernel 1 and 3, widths that leave a short last slab, and
// inputs that do not qualify (already over PyTorch's rule, or a batch of two).
TEST(Convolution, BatchOfOneTrainingConvolutionSplitByColumnsMatchesPlain) {
  struct Case {
    int64_t in, out, stride, kernel, batch, depth, h, w;
  };
  for (const auto& c : std::vector<Case>{{16, 16, 1, 3, 1, 32, 32, 32},
                                         {16, 32, 2, 3, 1, 17, 20, 19},
                                         {3, 8, 1, 3, 1, 9, 10, 7},
                                         {32, 64, 2, 3, 1, 8, 8, 8},
                                         {8, 4, 1, 1, 1, 12, 12, 5},
                                         {64, 64, 1, 3, 1, 20, 20, 6},
                                         {16, 16, 1, 3, 2, 16, 16, 16}}) {
    SCOPED_TRACE(fmt::format("{}->{} stride {} kernel {} batch {} {}x{}x{}", c.in, c.out, c.stride,
                             c.kernel, c.batch, c.depth, c.h, c.w));
    torch::manual_seed(11);
    Convolution conv = bare_conv(c.in, c.out, c.stride, c.kernel);
    conv->train();
    const auto params = conv->named_parameters();
    const auto x = torch::randn({c.batch, c.in, c.depth, c.h, c.w}).requires_grad_(true);
    const bool split = c.batch == 1 && c.in * c.depth * c.h <= 20480;
    const int64_t pad = (c.kernel - 1) / 2;
    EXPECT_EQ(column_split_conv3d(x, params["conv.weight"], params["conv.bias"],
                                  {c.stride, c.stride, c.stride}, {pad, pad, pad}, {1, 1, 1}, 1)
                  .defined(),
              split);
    const auto y = conv->forward(x);
    const auto ref =
        torch::conv3d(x, params["conv.weight"], params["conv.bias"], c.stride, (c.kernel - 1) / 2);
    ASSERT_EQ(y.sizes(), ref.sizes());
    const double scale = ref.abs().max().item<double>();
    EXPECT_LT((y - ref).abs().max().item<double>(), 1e-5 * scale);
    const auto g = torch::randn_like(ref);
    const auto ours =
        torch::autograd::grad({y}, {x, params["conv.weight"], params["conv.bias"]}, {g}, true);
    const auto theirs =
        torch::autograd::grad({ref}, {x, params["conv.weight"], params["conv.bias"]}, {g}, true);
    for (std::size_t i = 0; i < 3; ++i) {
      const double m = theirs[i].abs().max().item<double>();
      EXPECT_LT((ours[i] - theirs[i]).abs().max().item<double>(), 1e-4 * m) << "gradient " << i;
    }
  }
}

}  // namespace
}  // namespace barton::nets

#include "engine/inferer.h"

namespace barton::engine {
namespace {

TEST(SlidingWindow, TestTimeFlipsAverageFlippedPredictions) {
  const auto x = torch::rand({1, 1, 13, 11, 9});
  SlidingWindowOptions o;
  o.roi_size = {8, 8, 8};
  o.tta_flips = true;
  // An equivariant predictor gives back its input exactly.
  EXPECT_LT((sliding_window_inference(x, o, [](const torch::Tensor& v) { return v * 2; }) - x * 2)
                .abs()
                .max()
                .item<float>(),
            1e-5);
  // A position-dependent one is averaged over the four views.
  auto ramp = [](const torch::Tensor& v) {
    return v + torch::arange(v.size(4), torch::kFloat).view({1, 1, 1, 1, -1});
  };
  o.tta_flips = false;
  const auto plain = sliding_window_inference(x, o, ramp);
  o.tta_flips = true;
  const auto tta = sliding_window_inference(x, o, ramp);
  EXPECT_GT((plain - tta).abs().max().item<float>(), 0.1);
  // Windows cover the image exactly once per start; starts are pulled back inside.
  const auto starts = window_starts({13, 11, 9}, {8, 8, 8}, {0.25});
  EXPECT_EQ(starts.size(), 2u * 2u * 2u);
  EXPECT_EQ(starts.back(), (std::vector<int64_t>{5, 3, 1}));
}

}  // namespace
}  // namespace barton::engine
