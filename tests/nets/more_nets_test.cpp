// BasicUNet, SegResNet, DynUNet and AttentionUnet against the PyTorch twin of MONAI's definitions
// (tests/golden/monai_twin/run_nn.py, run with /usr/bin/python3): identical state_dict keys (names
// and order) and shapes, identical parameter counts, the twin's model.pt loads, and eval-mode
// (DynUNet deep supervision: training-mode) outputs agree.
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/config.h"
#include "io/torch_file.h"
#include "mmar/registries.h"
#include "nets/network.h"
#include "nets/nn_twin.h"
#include "support/test_support.h"

namespace barton {
namespace {

using json = nlohmann::json;

using Twin = test::NnTwin;
using test::max_diff;

std::unique_ptr<nets::Network> make(const std::string& name, const std::string& args) {
  return builtin_registries().networks.create(
      ConfigNode::parse("{\"name\": \"" + name + "\", \"args\": " + args + "}", "n.json"));
}

/// Builds `name` with `args` in the twin (seed 0) and in Barton; compares keys, shapes, parameter
/// counts; loads the twin's state_dict and compares the outputs for `shape`-sized input.
void check_against_twin(const std::string& name,
                        const std::string& args,
                        const std::vector<int64_t>& shape,
                        bool train = false,
                        bool shares_parameters = false) {
  SCOPED_TRACE(name + " " + args + (train ? " (train)" : ""));
  Twin twin;
  torch::manual_seed(7);
  const auto x = torch::randn(shape);
  const auto r = twin.run({{"kind", "network"},
                           {"name", name},
                           {"args", json::parse(args)},
                           {"seed", 0},
                           {"input", twin.spec(x)},
                           {"train", train}});
  ASSERT_TRUE(r.contains("state_dict"));
  auto net = make(name, args);
  std::vector<std::string> py_keys;
  for (const auto& e : r["state_dict"]) py_keys.push_back(e[0]);
  ASSERT_EQ(nets::state_dict_keys(*net), py_keys);
  const auto sd = nets::state_dict(*net);
  for (const auto& e : r["state_dict"]) {
    const auto key = e[0].get<std::string>();
    EXPECT_EQ(sd.at(key).sizes().vec(), e[1].get<std::vector<int64_t>>()) << key;
  }
  EXPECT_EQ(nets::count_parameters(*net), r["num_parameters"].get<int64_t>());
  if (!shares_parameters) {
    EXPECT_EQ(nets::count_parameters(*net), r["num_parameters"].get<int64_t>());
  }
  nets::load_state_dict(*net, io::load_state_dict_file(r["state_dict_path"]));
  net->train(train);
  torch::NoGradGuard g;
  const auto y = net->forward(x);
  const auto ref = Twin::load(r["output"]);
  ASSERT_EQ(y.sizes(), ref.sizes());
  const double scale = std::max(1.0, ref.abs().max().item<double>());
  EXPECT_LT(max_diff(y, ref), 1e-5 * scale);
}

// ---------------------------------------------------------------- BasicUNet

TEST(MoreNets, BasicUNet2DDeconvWithOddSizesMatchesTheTwin) {
  // 35 x 34: the replicate padding of the upsampled maps is exercised on both axes.
  check_against_twin(
      "BasicUNet",
      R"({"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "features": [4, 4, 8, 8, 16, 4]})",
      {2, 1, 35, 34});
}

TEST(MoreNets, BasicUNet3DNontrainableBatchNormPReLUMatchesTheTwin) {
  check_against_twin(
      "BasicUNet",
      R"({"dimensions": 3, "in_channels": 2, "out_channels": 2, "features": [2, 2, 4, 4, 8, 2],
                         "upsample": "nontrainable", "norm": "batch", "act": "prelu"})",
      {1, 2, 32, 34, 32});
}

TEST(MoreNets, BasicUNetAliasAndPixelShuffleRefused) {
  auto net = make("BasicUnet", R"({"spatial_dims": 2, "features": [4, 4, 8, 8, 16, 4]})");
  EXPECT_EQ(net->name(), "BasicUNet");
  EXPECT_EQ(net->spatial_dims(), 2);
  test::expect_error_containing(
      [] { make("BasicUNet", R"({"spatial_dims": 2, "upsample": "pixelshuffle"})"); },
      "n.json:/args/upsample: upsample mode 'pixelshuffle' is not supported");
}

// ---------------------------------------------------------------- SegResNet

TEST(MoreNets, SegResNet2DDefaultBlocksMatchesTheTwin) {
  check_against_twin(
      "SegResNet", R"({"spatial_dims": 2, "init_filters": 8, "in_channels": 2, "out_channels": 3})",
      {2, 2, 16, 24});
}

TEST(MoreNets, SegResNet3DDeconvGroupNormPReLUMatchesTheTwin) {
  // PReLU: act_mod is shared with conv_final.1, so its weight is listed twice.
  check_against_twin("SegResNet",
                     R"({"spatial_dims": 3, "init_filters": 4, "in_channels": 1, "out_channels": 2,
                         "norm": ["group", {"num_groups": 2}], "act": "prelu", "blocks_down": [1, 1, 1], "blocks_up": [1, 1],
                         "upsample_mode": "deconv", "dropout_prob": 0.2})",
                     {1, 1, 16, 16, 16}, false, /*shares_parameters=*/true);
}

TEST(MoreNets, SegResNetDefaultHasMonaisParameterCount) {
  auto net = make("SegResNet", "{}");
  EXPECT_EQ(nets::count_parameters(*net), 1176186);
  const auto keys = nets::state_dict_keys(*net);
  EXPECT_EQ(keys.size(), 83u);
  EXPECT_EQ(keys.front(), "convInit.conv.weight");
  EXPECT_EQ(keys.back(), "conv_final.2.conv.bias");
  net->eval();
  torch::NoGradGuard g;
  EXPECT_EQ(net->forward(torch::randn({1, 1, 16, 16, 16})).sizes(),
            (torch::IntArrayRef{1, 2, 16, 16, 16}));
}

TEST(MoreNets, SegResNetConfigErrors) {
  test::expect_error_containing([] { make("SegResNet", R"({"init_filters": 4})"); },
                                "not divisible");
  test::expect_error_containing([] { make("SegResNet", R"({"upsample_mode": "pixelshuffle"})"); },
                                "n.json:/args/upsample_mode");
  test::expect_error_containing(
      [] { make("SegResNet", R"({"blocks_down": [1, 2], "blocks_up": [1, 1]})"); },
      "n.json:/args/blocks_up");
}

// ---------------------------------------------------------------- DynUNet

const char* kDyn2D =
    R"({"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "kernel_size": [[3, 3], [3, 1], 3, 3],
                         "strides": [1, [2, 1], 2, 2], "upsample_kernel_size": [[2, 1], 2, 2], "filters": [4, 8, 16, 32],
                         "res_block": true, "deep_supervision": true, "deep_supr_num": 2})";

TEST(MoreNets, DynUNet2DAnisotropicResBlockDeepSupervisionMatchesTheTwin) {
  check_against_twin("DynUNet", kDyn2D, {2, 1, 32, 16}, /*train=*/false,
                     /*shares_parameters=*/true);
}

TEST(MoreNets, DynUNetTrainingModeStacksTheDeepSupervisionHeadsLikeMonai) {
  // Instance norm without running stats and no dropout: training-mode outputs are deterministic.
  check_against_twin("DynUNet", kDyn2D, {2, 1, 32, 16}, /*train=*/true, /*shares_parameters=*/true);
  auto net = make("DynUNet", kDyn2D);
  torch::NoGradGuard g;
  net->train();
  EXPECT_EQ(net->forward(torch::randn({1, 1, 32, 16})).sizes(),
            (torch::IntArrayRef{1, 3, 2, 32, 16}));
  net->eval();
  EXPECT_EQ(net->forward(torch::randn({1, 1, 32, 16})).sizes(), (torch::IntArrayRef{1, 2, 32, 16}));
}

TEST(MoreNets, DynUNet3DBasicBlockTransBiasBatchNormMatchesTheTwin) {
  check_against_twin(
      "DynUNet",
      R"({"spatial_dims": 3, "in_channels": 2, "out_channels": 3, "kernel_size": [3, [1, 3, 3], 3],
                         "strides": [1, [1, 2, 2], 2], "upsample_kernel_size": [[1, 2, 2], 2], "filters": [4, 8, 16],
                         "trans_bias": true, "norm_name": "batch", "act_name": "prelu", "dropout": 0.1})",
      {1, 2, 8, 16, 16}, false, /*shares_parameters=*/true);
}

TEST(MoreNets, DynUNetSkipLayersShareTheBlocksTensors) {
  auto net = make("DynUNet", kDyn2D);
  const auto sd = nets::state_dict(*net);
  EXPECT_TRUE(sd.at("skip_layers.downsample.conv1.conv.weight")
                  .is_same(sd.at("input_block.conv1.conv.weight")));
  EXPECT_TRUE(sd.at("skip_layers.next_layer.super_head.conv.conv.weight")
                  .is_same(sd.at("deep_supervision_heads.0.conv.conv.weight")));
  EXPECT_EQ(sd.at("output_block.conv.conv.bias").abs().sum().item<double>(),
            0.0);                                                // MONAI's init: bias 0
  EXPECT_EQ(sd.count("upsamples.0.transp_conv.conv.bias"), 0u);  // trans_bias false
}

TEST(MoreNets, DynUNetConfigErrors) {
  const std::string base =
      R"("spatial_dims": 2, "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3, 3, 3],
                              "upsample_kernel_size": [2, 2, 2])";
  test::expect_error_containing(
      [&] {
        make("DynUNet",
             "{" + base +
                 R"(, "strides": [1, 2, 2, 2], "deep_supervision": true, "deep_supr_num": 3})");
      },
      "n.json:/args/deep_supr_num");
  test::expect_error_containing([&] { make("DynUNet", "{" + base + R"(, "strides": [1, 2, 2]})"); },
                                "length of kernel_size and strides should be the same");
  test::expect_error_containing(
      [&] { make("DynUNet", "{" + base + R"(, "strides": [1, [2, 2, 2], 2, 2]})"); },
      "n.json:/args/strides/1");
  test::expect_error_containing(
      [&] { make("DynUNet", "{" + base + R"(, "strides": [1, 2, 2, 2], "filters": [4, 8]})"); },
      "n.json:/args/filters");
}

// ---------------------------------------------------------------- AttentionUnet

TEST(MoreNets, AttentionUnet2DKernel5MatchesTheTwin) {
  check_against_twin(
      "AttentionUnet",
      R"({"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "channels": [2, 4, 8, 16], "strides": [2, 2, 2],
                         "kernel_size": 5, "up_kernel_size": 5})",
      {2, 1, 32, 32});
}

TEST(MoreNets, AttentionUnet3DMatchesTheTwin) {
  check_against_twin(
      "AttentionUnet",
      R"({"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2]})",
      {1, 1, 16, 16, 16});
}

TEST(MoreNets, AttentionUnetHasMonai14ParameterCount) {
  // MONAI issue #7726 / PR #7734: 18,846 parameters with MONAI >= 1.4 semantics.
  auto net =
      make("AttentionUnet",
           R"({"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [2, 4, 8, 16],
                                        "strides": [2, 2, 2], "kernel_size": 5, "up_kernel_size": 5})");
  EXPECT_EQ(nets::count_parameters(*net), 18846);
  test::expect_error_containing(
      [] {
        make("AttentionUnet",
             R"({"in_channels": 1, "out_channels": 1, "channels": [4, 8, 16], "strides": [2]})");
      },
      "n.json:/args/strides");
}

}  // namespace
}  // namespace barton
