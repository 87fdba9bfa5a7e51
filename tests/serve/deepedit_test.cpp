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
#include "serve/interactive_support.h"

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

const test::TrainedSample& trained() {
  static test::TempDir dir;
  static const auto t = test::train_sample(
      dir.path(), "deepedit", "--cases 4 --size 40 40 16 --spacing 2 2 5 --seed 5", kTrainSets);
  return t;
}

std::string case_image() {
  return trained().root + "/data/imagesTr/case_3.nii.gz";
}

std::vector<int64_t> organ_voxel() {
  return test::organ_voxel(trained().root);
}

struct Served : test::ServedSample {
  Served() : test::ServedSample(trained().root, kServeSets) {}
};

io::Image reply_mask(const test::RawReply& r) {
  return test::parse_mask_reply(r).mask;
}

test::RawReply post(int port, const std::string& target, const json& params) {
  return test::post_params(port, target, params, read_file(case_image()));
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
