// The sample DeepEdit MMAR (mmars/deepedit) end to end, small: trained with MONAI's DeepEdit
// interaction (click rounds or the automatic mode), validated with simulated clicks and in the
// automatic mode, then served: MONAI Label's /infer/{model} without clicks (the automatic
// segmentation) and with clicks per label name, AIAA /v1/segmentation.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "io/image.h"
#include "serve/multipart.h"
#include "serve/raw_http.h"
#include "serve/server.h"
#include "support/test_support.h"

namespace barton {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::raw_http;
using test::sh;

// Small sizes for a 2-core CI: 32^3 volumes, two click rounds.
const char* kTrainSets =
    " --set epochs=6 num_interval_per_valid=3 max_train_interactions=2 max_val_interactions=2"
    " /train/pre_transforms/4/args/spatial_size=[32,32,32]";
const std::vector<std::string> kServeSets = {"/pre_transforms/4/args/spatial_size=[32,32,32]"};

struct Trained {
  std::string root, log;
};

const Trained& trained() {
  static test::TempDir dir;
  static const Trained t = [] {
    Trained r;
    r.root = dir.path() + "/deepedit";
    fs::create_directories(r.root + "/config");
    for (const auto* f : {"config_train.json", "config_validation.json", "config_inference.json",
                          "config_aiaa.json", "environment.json"})
      fs::copy_file(test::source_dir() + "/mmars/deepedit/config/" + f, r.root + "/config/" + f);
    sh(test::barton_bin() + " data synth " + r.root +
       "/data --cases 4 --size 40 40 16 --spacing 2 2 5 --seed 5");
    r.log =
        sh("BARTON_THREADS=2 " + test::barton_bin() + " train " + r.root + kTrainSets + " 2>&1");
    return r;
  }();
  return t;
}

std::string case_image() {
  return trained().root + "/data/imagesTr/case_3.nii.gz";
}

std::vector<int64_t> organ_voxel() {
  const auto label = io::read_image(trained().root + "/data/labelsTr/case_3.nii.gz");
  const auto idx = (label.data[0] > 0).nonzero().to(torch::kDouble);
  const auto c = idx.mean(0).round().to(torch::kLong);
  return {c[0].item<int64_t>(), c[1].item<int64_t>(), c[2].item<int64_t>()};
}

struct Served {
  Served() {
    serve::ServerOptions o;
    o.models = {trained().root};
    o.sets = kServeSets;
    o.http.port = 0;
    o.device = "cpu";
    server = std::make_unique<serve::AnnotationServer>(o);
    port = server->start();
  }
  ~Served() { server->stop(); }
  std::unique_ptr<serve::AnnotationServer> server;
  int port = 0;
};

io::Image reply_mask(const test::RawReply& r) {
  const auto b = serve::multipart_boundary(r.header("content-type"));
  EXPECT_TRUE(b) << r.body.substr(0, 300);
  if (!b) return {};
  const auto parts = serve::parse_multipart(r.body, *b);
  static test::TempDir tmp;
  static int n = 0;
  const auto path = tmp.file("mask" + std::to_string(n++) + ".nii.gz");
  write_file_atomic(path, serve::find_part(parts, "image")->data);
  return io::read_image(path);
}

test::RawReply post(int port, const std::string& target, const json& params) {
  return raw_http(
      port, test::python_request("POST", target,
                                 {{"params", "", "", params.dump()},
                                  {"datapoint", "/tmp/x/case_3.nii.gz", "application/octet-stream",
                                   read_file(case_image())}}));
}

std::string dice_of(const std::string& out) {
  const auto at = out.find("val_mean_dice: ");
  EXPECT_NE(at, std::string::npos) << out;
  return at == std::string::npos ? std::string() : out.substr(at, 21);
}

TEST(DeepEdit, SampleMmarTrainsAndValidatesWithClicksAndWithout) {
  const auto& t = trained();
  EXPECT_TRUE(fs::exists(t.root + "/models/model.pt")) << t.log;
  EXPECT_NE(t.log.find("val_mean_dice"), std::string::npos) << t.log;
  // With simulated clicks (the training config's validate section): the same Dice twice.
  const auto clicks = [&] {
    return dice_of(sh("BARTON_THREADS=2 " + test::barton_bin() + " validate " + t.root + " -c " +
                      t.root + "/config/config_train.json" + kTrainSets + " 2>&1"));
  };
  const auto first = clicks();
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(clicks(), first);
  // The automatic mode (config_validation.json: the click channels zeroed).
  const auto automatic =
      dice_of(sh("BARTON_THREADS=2 " + test::barton_bin() + " validate " + t.root +
                 " --set /pre_transforms/4/args/spatial_size=[32,32,32] 2>&1"));
  EXPECT_FALSE(automatic.empty());
}

TEST(DeepEdit, ServedWithoutClicksAndWithClicksPerLabel) {
  Served s;
  auto r = raw_http(s.port, test::simple_request("GET", "/info/"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["models"]["deepedit"]["type"], "deepedit") << r.body;

  const auto input = io::read_image(case_image());
  // The automatic segmentation: no clicks.
  r = post(s.port, "/infer/deepedit", json::object());
  ASSERT_EQ(r.status, 200) << r.body;
  const auto automatic = reply_mask(r);
  ASSERT_EQ(automatic.data.sizes(), input.data.sizes()) << "the mask is on the input's grid";
  for (std::size_t i = 0; i < 16; ++i) EXPECT_NEAR(automatic.affine[i], input.affine[i], 1e-5);
  // AIAA's segmentation route answers the same.
  r = post(s.port, "/v1/segmentation?model=deepedit", json::object());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(reply_mask(r).data.equal(automatic.data));
  // Clicks per label name (MONAI Label's DeepEdit params), and the same as foreground.
  const auto click = organ_voxel();
  r = post(s.port, "/infer/deepedit", {{"organ", {click}}, {"background", json::array()}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto clicked = reply_mask(r);
  ASSERT_EQ(clicked.data.sizes(), input.data.sizes());
  r = post(s.port, "/infer/deepedit", {{"foreground", {click}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(reply_mask(r).data.equal(clicked.data));
  // Bad clicks: 400 naming the label; outside the image: 422.
  r = post(s.port, "/infer/deepedit", {{"organ", "x"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("organ"), std::string::npos) << r.body;
  r = post(s.port, "/infer/deepedit", {{"organ", {{1000, 1, 1}}}});
  EXPECT_EQ(r.status, 422) << r.body;
}

}  // namespace
}  // namespace barton
