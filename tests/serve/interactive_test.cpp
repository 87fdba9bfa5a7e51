// The sample DeepGrow 3D MMAR (mmars/deepgrow_3d) end to end, small: trained with simulated
// clicks (ClickInteraction), validated with simulated clicks, then served: AIAA /v1/deepgrow and
// MONAI Label /infer/{model} with foreground/background clicks, with and without a session.
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

const std::string& kTrainSets = test::kDeepgrow3dTrainSets;
const std::vector<std::string>& kServeSets = test::kDeepgrow3dServeSets;

/// The sample MMAR's configs on synthetic data, trained once for this program.
const test::TrainedSample& trained() {
  return test::deepgrow3d_sample();
}

std::string case_image() {
  return trained().root + "/data/imagesTr/case_3.nii.gz";
}

/// A voxel [i, j, k] inside case 3's organ: the label's centre of mass.
std::vector<int64_t> organ_voxel() {
  return test::organ_voxel(trained().root);
}

struct Served : test::ServedSample {
  Served() : test::ServedSample(trained().root, kServeSets) {}
};

using test::parse_mask_reply;

TEST(Interactive, SampleDeepGrowMmarTrainsAndValidatesWithSimulatedClicks) {
  const auto& t = trained();
  EXPECT_TRUE(fs::exists(t.root + "/models/model.pt")) << t.log;
  // The validation with simulated clicks ran each epoch and reported a Dice in [0, 1].
  EXPECT_NE(t.log.find("val_mean_dice"), std::string::npos) << t.log;
  const auto stats = json::parse(read_file(t.root + "/models/train_stats.json"));
  ASSERT_TRUE(stats.contains("best_validation_metric")) << stats.dump();
  const double best = stats["best_validation_metric"].get<double>();
  EXPECT_GE(best, 0.0);
  EXPECT_LE(best, 1.0);
  // Validating the checkpoint with the training config's validate section: simulated clicks
  // drawn from fixed seeds, so two runs report the same Dice.
  const auto validate = [&] {
    const auto out = sh("BARTON_THREADS=2 " + test::barton_bin() + " validate " + t.root + " -c " +
                        t.root + "/config/config_train.json" + kTrainSets + " 2>&1");
    const auto at = out.find("val_mean_dice: ");
    EXPECT_NE(at, std::string::npos) << out;
    return at == std::string::npos ? std::string() : out.substr(at, 21);
  };
  const auto first = validate();
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(validate(), first);
  // config_validation.json runs the same validation.
  const auto own = sh("BARTON_THREADS=2 " + test::barton_bin() + " validate " + t.root +
                      " --set max_val_interactions=2 /pre_transforms/2/args/pixdim=[2,2,2]"
                      " /pre_transforms/4/args/spatial_size=[48,48,48]"
                      " /pre_transforms/5/args/spatial_size=[32,32,32] 2>&1");
  const auto at = own.find("val_mean_dice: ");
  ASSERT_NE(at, std::string::npos) << own;
  EXPECT_EQ(own.substr(at, 21), first);
}

TEST(Interactive, DeepgrowClicksThroughAiaaAndMonaiLabelWithSessions) {
  Served s;
  auto r = raw_http(s.port, test::simple_request("GET", "/v1/models?type=deepgrow"));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto list = json::parse(r.body);
  ASSERT_EQ(list.size(), 1u) << r.body;
  EXPECT_EQ(list[0]["type"], "deepgrow");
  EXPECT_EQ(list[0]["deepgrow"], "3D") << "3D Slicer reads it";

  const auto click = organ_voxel();
  const json params = {
      {"foreground", {click}}, {"background", json::array()}, {"current_point", click}};
  const auto image = read_file(case_image());
  r = raw_http(s.port, test::python_request("POST", "/v1/deepgrow?model=deepgrow_3d",
                                            {{"params", "", "", params.dump()},
                                             {"datapoint", "/tmp/x/case_3.nii.gz",
                                              "application/octet-stream", image}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto first = parse_mask_reply(r);
  const auto input = io::read_image(case_image());
  ASSERT_EQ(first.mask.data.sizes(), input.data.sizes()) << "the mask is on the input's grid";
  for (std::size_t i = 0; i < 16; ++i) EXPECT_NEAR(first.mask.affine[i], input.affine[i], 1e-5);
  ASSERT_EQ(first.params["crop"].size(), 3u) << first.params.dump();
  for (std::size_t d = 0; d < 3; ++d) {
    EXPECT_LE(first.params["crop"][d][0].get<int64_t>(), click[d]) << first.params.dump();
    EXPECT_GE(first.params["crop"][d][1].get<int64_t>(), click[d]) << first.params.dump();
  }
  for (const auto* stage : {"read", "pre_process", "network", "post_process", "write"})
    EXPECT_TRUE(first.params["latencies"].contains(stage)) << stage;
  // Nothing outside the crop box is labelled.
  const auto& c = first.params["crop"];
  auto outside = first.mask.data.clone();
  outside.slice(1, c[0][0].get<int64_t>(), c[0][1].get<int64_t>() + 1)
      .slice(2, c[1][0].get<int64_t>(), c[1][1].get<int64_t>() + 1)
      .slice(3, c[2][0].get<int64_t>(), c[2][1].get<int64_t>() + 1)
      .zero_();
  EXPECT_EQ(outside.sum().item<int64_t>(), 0);

  // A session: the first click prepares the image, later clicks reuse it and agree with the
  // upload's answer.
  r = raw_http(
      s.port, test::python_request("PUT", "/session/?expiry=60",
                                   {{"image", "/x/ct.nii.gz", "application/octet-stream", image}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto id = json::parse(r.body)["session_id"].get<std::string>();
  const auto session_click = [&](const std::string& target) {
    return raw_http(s.port,
                    test::python_request("POST", target + id, {{"params", "", "", params.dump()}}));
  };
  ASSERT_EQ(session_click("/v1/deepgrow?model=deepgrow_3d&session_id=").status, 200);
  r = session_click("/v1/deepgrow?model=deepgrow_3d&session_id=");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto cached = parse_mask_reply(r);
  EXPECT_TRUE(cached.params["session_cached"].get<bool>());
  EXPECT_EQ(cached.params["latencies"]["read"], 0.0);
  EXPECT_TRUE(cached.mask.data.equal(first.mask.data));
  // MONAI Label's client: /infer/{model} with the same clicks.
  r = session_click("/infer/deepgrow_3d?session_id=");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(parse_mask_reply(r).mask.data.equal(first.mask.data));
}

TEST(Interactive, InferClicksWritesTheServersMaskAndRefusesBadClicks) {
  Served s;  // the same model through the server, for comparison
  const auto click = organ_voxel();
  const json params = {{"foreground", {click}}, {"background", json::array()}};
  const auto r = raw_http(
      s.port, test::python_request("POST", "/v1/deepgrow?model=deepgrow_3d",
                                   {{"params", "", "", params.dump()},
                                    {"datapoint", "/tmp/x/case_3.nii.gz",
                                     "application/octet-stream", read_file(case_image())}}));
  ASSERT_EQ(r.status, 200) << r.body;
  test::TempDir out;
  std::string sets;
  for (const auto& v : kServeSets) sets += " " + v;
  const auto base = test::barton_bin() + " infer " + trained().root + " --input " + case_image() +
                    " --output " + out.path() + " --set" + sets;
  const auto log = sh(base + " --clicks '" + params.dump() + "' 2>&1");
  EXPECT_NE(log.find("network"), std::string::npos) << log;
  const auto mask = io::read_image(out.path() + "/case_3/case_3_clicks.nii.gz");
  EXPECT_TRUE(mask.data.equal(parse_mask_reply(r).mask.data))
      << "barton infer --clicks = the server";
  EXPECT_NE(sh(base + " --clicks '{\"foreground\": [[1, 2' 2>&1", 1).find("--clicks is not JSON"),
            std::string::npos);
  EXPECT_NE(sh(base + " --clicks '{\"foreground\": [[1000, 2, 3]]}' 2>&1", 1)
                .find("lies outside the image"),
            std::string::npos);
  EXPECT_NE(sh(test::barton_bin() + " infer " + trained().root + " --clicks '{}' 2>&1", 1)
                .find("--clicks needs --input IMAGE"),
            std::string::npos);
}

TEST(Interactive, BadClicksGetTheirStatus) {
  Served s;
  const auto image = read_file(case_image());
  const auto ask = [&](const std::string& target, const json& params) {
    return raw_http(s.port, test::python_request("POST", target,
                                                 {{"params", "", "", params.dump()},
                                                  {"datapoint", "/tmp/x/case_3.nii.gz",
                                                   "application/octet-stream", image}}));
  };
  auto r = ask("/v1/deepgrow?model=deepgrow_3d", json::object());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("foreground"), std::string::npos) << r.body;
  EXPECT_EQ(ask("/v1/deepgrow?model=deepgrow_3d", {{"foreground", "x"}}).status, 400);
  EXPECT_EQ(ask("/v1/deepgrow?model=deepgrow_3d", {{"foreground", {{1, 2}}}}).status, 400);
  EXPECT_EQ(ask("/v1/segmentation?model=deepgrow_3d", json::object()).status, 400);
  r = ask("/v1/deepgrow?model=deepgrow_3d", {{"foreground", {{1000, 2, 3}}}});
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("outside the image"), std::string::npos) << r.body;
  EXPECT_EQ(ask("/v1/dextr3d?model=deepgrow_3d", {{"points", json::array()}}).status, 400);
}

}  // namespace
}  // namespace barton
