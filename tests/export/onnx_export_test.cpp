// ONNX export checked in an independent runtime: each network is exported by Barton, run in ONNX
// Runtime (npm onnxruntime-node, tests/export/ort_run.js) on the same input as Barton's own
// forward, and the outputs must agree to 1e-4. Also: dynamic spatial axes, the Triton entry,
// the inference plan (BatchNorm folding, precision), and the manifest's tamper detection.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/config.h"
#include "export/export.h"
#include "export/graph.h"
#include "export/manifest.h"
#include "export/plan.h"
#include "mmar/registries.h"
#include "support/test_support.h"
#include <unistd.h>

namespace barton {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<nets::Network> make_net(const std::string& json) {
  torch::manual_seed(3);
  const auto spec = ConfigNode::parse(json, "test.json");
  const auto in_channels = spec.at("args").at("in_channels").as<int64_t>();
  auto net = std::shared_ptr<nets::Network>(builtin_registries().networks.create(spec));
  // Non-trivial affine norms and BatchNorm statistics gathered as in training, so that folding
  // has something to fold.
  torch::NoGradGuard ng;
  for (auto& p : net->named_parameters()) {
    if (p.value().dim() == 1 && p.key().find("weight") != std::string::npos)
      p.value().uniform_(0.7, 1.3);
  }
  const auto spatial = net->spatial_dims();
  net->train();
  for (int i = 0; i < 12; ++i)
    net->forward(spatial == 3 ? torch::randn({2, in_channels, 16, 16, 16})
                              : torch::randn({2, in_channels, 32, 32}));
  net->eval();
  return net;
}

torch::Tensor forward(nets::Network& net, const torch::Tensor& x) {
  torch::NoGradGuard ng;
  net.eval();
  return net.forward(x);
}

/// Runs `model` in ONNX Runtime on `x`; returns the output (shape from the runtime).
torch::Tensor run_ort(const std::string& model, const torch::Tensor& x, const test::TempDir& tmp) {
  const auto in = tmp.file("ort_in.bin"), out = tmp.file("ort_out.bin");
  const auto xc = x.contiguous();
  write_file_atomic(in, std::string_view(static_cast<const char*>(xc.data_ptr()), xc.nbytes()));
  std::vector<std::string> dims;
  for (auto d : x.sizes()) dims.push_back(std::to_string(d));
  const auto modules = test::source_dir() + "/.npm-deps/node_modules";
  EXPECT_TRUE(fs::exists(modules + "/onnxruntime-node"))
      << "onnxruntime-node is missing: run scripts/install-deps.sh";
  std::string log;
  const int rc = test::run_command("NODE_PATH=" + modules + " node " + test::source_dir() +
                                       "/tests/export/ort_run.js " + model + " " + in + " " +
                                       fmt::format("{}", fmt::join(dims, ",")) + " " + out,
                                   &log);
  EXPECT_EQ(rc, 0) << log;
  if (rc != 0) return {};
  const auto info = nlohmann::json::parse(log.substr(log.find('{')));
  const auto shape = info["dims"].get<std::vector<int64_t>>();
  const auto bytes = read_file(out);
  return torch::from_blob(const_cast<char*>(bytes.data()), shape, torch::kFloat).clone();
}

struct Case {
  const char* label;
  const char* json;
  std::vector<int64_t> shape;
};

class OnnxExport : public ::testing::TestWithParam<Case> {};

TEST_P(OnnxExport, OnnxRuntimeMatchesBartonAndPlanMatchesCheckpoint) {
  const auto& c = GetParam();
  auto net = make_net(c.json);
  test::TempDir tmp;
  exporter::ExportOptions o;
  o.input_shape = c.shape;
  o.formats = {"onnx", "barton"};
  o.network = nlohmann::ordered_json::parse(c.json);
  const auto r = exporter::export_network(*net, tmp.file("out"), o);
  torch::manual_seed(11);
  auto x = torch::randn(c.shape);
  x[0] = x[0] * 2;  // batch of 2 (the traced batch is 1): the batch axis is dynamic
  x = torch::cat({x, torch::randn(c.shape)}, 0);
  const auto ref = forward(*net, x);
  const auto got = run_ort(tmp.file("out/model.onnx"), x, tmp);
  ASSERT_TRUE(got.defined());
  ASSERT_EQ(got.sizes(), ref.sizes());
  const double diff = (got - ref).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4) << c.label << ": ONNX Runtime vs Barton, output range "
                        << ref.abs().max().item<double>();
  // The plan (BatchNorm folded) gives the same output and the same argmax.
  auto plan = exporter::load_plan(tmp.file("out/model.plan"));
  torch::NoGradGuard ng;
  const auto p = plan.module.forward({x}).toTensor();
  EXPECT_LT((p - ref).abs().max().item<double>(), 1e-4) << c.label << ": plan vs checkpoint";
  EXPECT_TRUE(p.argmax(1).equal(ref.argmax(1))) << c.label;
  EXPECT_EQ(plan.meta["folded_batchnorms"].get<int>(), r.folded_batchnorms);
}

INSTANTIATE_TEST_SUITE_P(
    Networks,
    OnnxExport,
    ::testing::Values(
        Case{
            "UNet3D_instance_res2",
            R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16, 32], "strides": [2, 2, 2], "num_res_units": 2}})",
            {1, 1, 32, 32, 32}},
        Case{
            "UNet2D_batch",
            R"({"name": "UNet", "args": {"spatial_dims": 2, "in_channels": 2, "out_channels": 3, "channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1, "norm": "batch"}})",
            {1, 2, 64, 48}},
        Case{
            "UNet3D_batch_norescunits",
            R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2], "norm": "batch", "act": "relu"}})",
            {1, 1, 24, 24, 24}},
        Case{
            "SegResNet3D",
            R"({"name": "SegResNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "init_filters": 8}})",
            {1, 1, 32, 32, 32}},
        Case{
            "SegResNet2D_deconv",
            R"({"name": "SegResNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "init_filters": 8, "upsample_mode": "deconv"}})",
            {1, 1, 64, 64}},
        Case{
            "DynUNet3D",
            R"({"name": "DynUNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3, 3, 3], "strides": [1, 2, 2, 2], "upsample_kernel_size": [2, 2, 2]}})",
            {1, 1, 32, 32, 32}},
        Case{
            "DynUNet2D_batch_res",
            R"({"name": "DynUNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "kernel_size": [3, 3, 3], "strides": [1, 2, 2], "upsample_kernel_size": [2, 2], "norm_name": "batch", "res_block": true}})",
            {1, 1, 64, 64}},
        Case{
            "BasicUNet3D",
            R"({"name": "BasicUNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "features": [4, 4, 8, 16, 32, 4]}})",
            {1, 1, 32, 32, 32}},
        Case{
            "AttentionUnet3D",
            R"({"name": "AttentionUnet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2]}})",
            {1, 1, 32, 32, 32}}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.label); });

TEST(OnnxExportDynamic, SpatialAxesAcceptOtherShapes) {
  for (
      const char* json :
      {R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 2}})",
       R"({"name": "SegResNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "init_filters": 8}})",
       R"({"name": "DynUNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3, 3], "strides": [1, 2, 2], "upsample_kernel_size": [2, 2]}})"}) {
    auto net = make_net(json);
    test::TempDir tmp;
    exporter::ExportOptions o;
    o.network = nlohmann::ordered_json::parse(json);
    o.formats = {"onnx"};
    o.dynamic_spatial = true;
    o.input_shape = net->spatial_dims() == 3 ? std::vector<int64_t>{1, 1, 32, 32, 32}
                                             : std::vector<int64_t>{1, 1, 64, 64};
    const auto r = exporter::export_network(*net, tmp.file("out"), o);
    for (std::size_t i = 2; i < r.signature.input_dims.size(); ++i)
      EXPECT_EQ(r.signature.input_dims[i], -1) << json;
    // A shape other than the traced one, different per axis.
    const auto x =
        net->spatial_dims() == 3 ? torch::randn({3, 1, 48, 40, 16}) : torch::randn({2, 1, 96, 32});
    const auto ref = forward(*net, x);
    const auto got = run_ort(tmp.file("out/model.onnx"), x, tmp);
    ASSERT_TRUE(got.defined());
    ASSERT_EQ(got.sizes(), ref.sizes()) << json;
    EXPECT_LT((got - ref).abs().max().item<double>(), 1e-4) << json;
  }
}

// Export of the network `json` in one format and precision, traced on a 32^3 input.
exporter::ExportOptions options_32(const char* json,
                                   const std::string& format,
                                   const std::string& precision) {
  exporter::ExportOptions o;
  o.network = nlohmann::ordered_json::parse(json);
  o.formats = {format};
  o.precision = precision;
  o.input_shape = {1, 1, 32, 32, 32};
  return o;
}

TEST(OnnxExportHalf, Float16ModelRunsInOnnxRuntime) {
  const char* json =
      R"({"name": "SegResNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "init_filters": 8}})";
  auto net = make_net(json);
  test::TempDir tmp;
  auto o = options_32(json, "onnx", "fp16");
  exporter::export_network(*net, tmp.file("out"), o);
  const auto x = torch::randn({1, 1, 32, 32, 32});
  const auto ref = forward(*net, x);
  const auto got = run_ort(tmp.file("out/model.onnx"), x, tmp);
  ASSERT_TRUE(got.defined());
  const double rel = ((got - ref).abs().max() / ref.abs().max()).item<double>();
  EXPECT_LT(rel, 1e-2);  // float16 keeps 11 bits of mantissa
  EXPECT_GT(rel, 0.0);   // and is not float32 in disguise
  EXPECT_GT(got.argmax(1).eq(ref.argmax(1)).to(torch::kDouble).mean().item<double>(), 0.99);
  o.precision = "bf16";
  test::expect_error_containing([&] { exporter::export_network(*net, tmp.file("out2"), o); },
                                "ONNX export in bfloat16 is not supported");
}

TEST(PlanTest, FoldsBatchNormAndKeepsOutputs) {
  auto net = make_net(
      R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 2, "norm": "batch"}})");
  auto g = exporter::trace_network(*net, torch::randn({1, 1, 16, 16, 16}));
  auto count = [](const torch::jit::Graph& graph, const std::string& kind) {
    for (const auto& [k, n] : exporter::node_histogram(graph)) {
      if (k == kind) return n;
    }
    return 0;
  };
  const int bn = count(*g, "aten::batch_norm");
  int modules = 0;
  for (const auto& m : net->modules(false)) modules += m->name() == "torch::nn::BatchNorm3dImpl";
  EXPECT_GT(bn, 0);
  EXPECT_EQ(bn, modules);
  EXPECT_EQ(exporter::fold_batchnorm(*g), bn);
  EXPECT_EQ(count(*g, "aten::batch_norm"), 0);
  EXPECT_EQ(count(*g, "aten::dropout"), 0);
  EXPECT_TRUE(net->is_training() == false);
}

TEST(PlanTest, Bfloat16PlanStaysClose) {
  const char* json =
      R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1, "norm": "batch"}})";
  auto net = make_net(json);
  test::TempDir tmp;
  auto o = options_32(json, "barton", "bf16");
  exporter::export_network(*net, tmp.file("out"), o);
  auto plan = exporter::load_plan(tmp.file("out/model.plan"));
  EXPECT_EQ(plan.meta["precision"], "bf16");
  const auto x = torch::randn({1, 1, 32, 32, 32});
  torch::NoGradGuard ng;
  const auto p = plan.module.forward({x}).toTensor();
  EXPECT_EQ(p.scalar_type(), torch::kFloat);
  const auto ref = forward(*net, x);
  const double rel = ((p - ref).abs().max() / ref.abs().max()).item<double>();
  EXPECT_LT(rel, 0.05);  // bfloat16 keeps 8 bits of mantissa
  EXPECT_GT(rel, 0.0);   // and is not float32 in disguise
}

// Without gradients, thin convolutions over large volumes run slab by slab
// (nets/blocks/layers.cpp), but not while an export traces the network: a plan traced at batch 1 on
// 64^3 (where the top 2->2 convolution would be cut into slabs) has no slab copies in its graph,
// and runs at batch 2 with the eager network's (slab-wise) outputs.
TEST(PlanTest, ATraceWhereEagerWouldSlabRunsAtOtherBatchSizes) {
  const char* json =
      R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2], "num_res_units": 1, "norm": "batch"}})";
  auto net = make_net(json);
  auto g = exporter::trace_network(*net, torch::randn({1, 1, 64, 64, 64}));
  for (const auto& [k, n] : exporter::node_histogram(*g)) EXPECT_NE(k, "aten::copy_") << n;
  test::TempDir tmp;
  auto o = options_32(json, "barton", "");
  o.input_shape = {1, 1, 64, 64, 64};
  exporter::export_network(*net, tmp.file("out"), o);
  auto plan = exporter::load_plan(tmp.file("out/model.plan"));
  // The plan's thin convolutions are the slab-wise op (the first 1->4, its residual, the top 2->2).
  EXPECT_GE(plan.meta["slab_convolutions"].get<int>(), 3);
  int slab_nodes = 0;
  for (auto* n : plan.module.get_method("forward").graph()->nodes())
    slab_nodes += n->kind().toQualString() == std::string("barton::slab_conv3d");
  EXPECT_EQ(slab_nodes, plan.meta["slab_convolutions"].get<int>());
  const auto x = torch::randn({2, 1, 64, 64, 64});
  torch::NoGradGuard ng;
  const auto p = plan.module.forward({x}).toTensor();
  EXPECT_LT((p - forward(*net, x)).abs().max().item<double>(), 1e-4);
}

TEST(ManifestTest, VerifyDetectsAOneByteChangeInEveryFile) {
  const char* json =
      R"({"name": "UNet", "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2], "num_res_units": 1}})";
  auto net = make_net(json);
  test::TempDir tmp;
  exporter::ExportOptions o;
  o.network = nlohmann::ordered_json::parse(json);
  o.input_shape = {1, 1, 32, 32};
  o.name = "tiny";
  const auto r = exporter::export_network(*net, tmp.file("out"), o);
  const std::vector<std::string> expected = {"manifest.json", "model.onnx", "model.plan",
                                             "triton/tiny/1/model.onnx",
                                             "triton/tiny/config.pbtxt"};
  EXPECT_EQ(r.files, expected);
  const auto dir = fs::path(tmp.file("out"));
  ASSERT_TRUE(exporter::verify(dir).passed());
  EXPECT_EQ(exporter::verify(dir).ok.size(), 4u);
  const auto pbtxt = read_file(dir / "triton/tiny/config.pbtxt");
  EXPECT_NE(pbtxt.find("backend: \"onnxruntime\""), std::string::npos);
  EXPECT_NE(pbtxt.find("dims: [ 1, 32, 32 ]"), std::string::npos) << pbtxt;
  EXPECT_NE(pbtxt.find("dims: [ 2, 32, 32 ]"), std::string::npos) << pbtxt;
  for (const auto& f :
       {"model.onnx", "model.plan", "triton/tiny/1/model.onnx", "triton/tiny/config.pbtxt"}) {
    auto bytes = read_file(dir / f);
    const auto orig = bytes;
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
    write_file_atomic(dir / f, bytes);
    const auto rep = exporter::verify(dir);
    EXPECT_FALSE(rep.passed()) << f;
    ASSERT_EQ(rep.modified.size(), 1u) << f;
    EXPECT_EQ(rep.modified[0], f);
    write_file_atomic(dir / f, orig);
    EXPECT_TRUE(exporter::verify(dir).passed()) << f;
  }
  fs::remove(dir / "model.onnx");
  auto rep = exporter::verify(dir);
  ASSERT_EQ(rep.missing.size(), 1u);
  EXPECT_EQ(rep.missing[0], "model.onnx");
  write_file_atomic(dir / "extra.bin", "x");
  rep = exporter::verify(dir);
  ASSERT_EQ(rep.unlisted.size(), 1u);
  EXPECT_EQ(rep.unlisted[0], "extra.bin");
}

TEST(ExportErrors, FailedExportLeavesTheEarlierOneUntouched) {
  const char* json =
      R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]}})";
  auto net = make_net(json);
  test::TempDir tmp;
  exporter::ExportOptions o;
  o.network = nlohmann::ordered_json::parse(json);
  o.input_shape = {1, 1, 16, 16, 16};
  o.formats = {"onnx"};
  exporter::export_network(*net, tmp.file("out"), o);
  const auto before = read_file(tmp.file("out/manifest.json"));
  o.input_shape = {1, 1, 16, 16};  // 2D shape for a 3D network
  test::expect_error_containing([&] { exporter::export_network(*net, tmp.file("out"), o); },
                                "needs 5 values");
  o.input_shape = {1, 3, 16, 16, 16};  // wrong channel count
  test::expect_error_containing([&] { exporter::export_network(*net, tmp.file("out"), o); },
                                "UNet does not run on an input of shape [1, 3, 16, 16, 16]");
  o.input_shape = {1, 1, 16, 16, 16};
  o.formats = {"tensorrt"};
  test::expect_error_containing([&] { exporter::export_network(*net, tmp.file("out"), o); },
                                "unknown export format 'tensorrt'");
  EXPECT_EQ(read_file(tmp.file("out/manifest.json")), before);
  EXPECT_TRUE(exporter::verify(tmp.file("out")).passed());
  int leftovers = 0;
  for (const auto& e : fs::directory_iterator(tmp.path()))
    leftovers += e.path().filename().string().find(".tmp-") != std::string::npos;
  EXPECT_EQ(leftovers, 0);
}

TEST(ExportErrors, ASecondExportReplacesTheFirstAndClearsWhatKilledExportsLeft) {
  // The kill -9 campaign (scripts/kill9-campaign.sh) left .out.tmp-PID folders of killed exports;
  // the swap of old and new is one renameat2(RENAME_EXCHANGE).
  const char* json =
      R"({"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]}})";
  auto net = make_net(json);
  test::TempDir tmp;
  exporter::ExportOptions o;
  o.network = nlohmann::ordered_json::parse(json);
  o.input_shape = {1, 1, 16, 16, 16};
  o.formats = {"onnx"};
  exporter::export_network(*net, tmp.file("out"), o);
  // What a killed export leaves (PID 0 is never a process), and one of a running export.
  fs::create_directories(tmp.file(".out.tmp-0/triton"));
  fs::create_directories(tmp.file(".out.old-0"));
  const auto running = tmp.file(".out.tmp-" + std::to_string(::getppid()));
  fs::create_directories(running);
  o.formats = {"onnx", "barton"};
  exporter::export_network(*net, tmp.file("out"), o);
  EXPECT_TRUE(fs::exists(tmp.file("out/model.plan")));
  EXPECT_TRUE(exporter::verify(tmp.file("out")).passed());
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.path())) {
    left.push_back(e.path().filename().string());
  }
  std::sort(left.begin(), left.end());
  const std::vector<std::string> expected = {fs::path(running).filename().string(), "out"};
  EXPECT_EQ(left, expected);
}

}  // namespace
}  // namespace barton
