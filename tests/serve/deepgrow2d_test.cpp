// The sample DeepGrow 2D MMAR (mmars/deepgrow_2d) end to end, small: slices prepared from
// synthetic volumes (barton data deepgrow), trained with simulated clicks, served: the clicked
// slice alone is labelled, on the input's grid, through AIAA /v1/deepgrow, MONAI Label /infer and
// barton infer --clicks alike.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "io/image.h"
#include "serve/interactive_support.h"
#include "transforms/deepgrow/functional.h"

namespace barton {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::raw_http;
using test::sh;

// Small sizes for a 2-core CI: 48 x 48 crops resized to 32 x 32, two click rounds.
const char* kTrainSets =
    " --set epochs=4 num_interval_per_valid=2 max_train_interactions=2 max_val_interactions=2"
    " /train/pre_transforms/3/args/spatial_size=[48,48]"
    " /train/pre_transforms/4/args/spatial_size=[32,32]";
const std::vector<std::string> kServeSets = {"/pre_transforms/7/args/spatial_size=[48,48]",
                                             "/pre_transforms/8/args/spatial_size=[32,32]"};

/// The sample's configs on synthetic volumes cut into slices, trained once for this program.
const test::TrainedSample& trained() {
  static test::TempDir dir;
  static const auto t = test::train_sample(
      dir.path(), "deepgrow_2d", "--cases 4 --size 40 40 16 --spacing 2 2 5 --seed 5", kTrainSets,
      "data deepgrow --dataset_json {root}/data/dataset.json --datalist_key training,validation "
      "--output {root}/data/slices");
  return t;
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

test::RawReply click(int port, const std::string& target, const json& params) {
  return raw_http(
      port, test::python_request("POST", target,
                                 {{"params", "", "", params.dump()},
                                  {"datapoint", "/tmp/x/case_3.nii.gz", "application/octet-stream",
                                   read_file(case_image())}}));
}

/// Labelled voxels of `mask` ([1, I, J, K]) that lie off slice k.
int64_t off_slice(const io::Image& mask, int64_t k) {
  return mask.data.sum().item<int64_t>() - mask.data.select(3, k).sum().item<int64_t>();
}

TEST(Deepgrow2D, SlicesArePreparedAndTheSampleTrainsWithSimulatedClicks) {
  const auto& t = trained();
  EXPECT_NE(t.log.find("4 volumes -> "), std::string::npos) << t.log;
  const auto doc = json::parse(read_file(t.root + "/data/slices/dataset.json"));
  EXPECT_GT(doc["training"].size(), 4u) << "several slices per volume";
  EXPECT_TRUE(fs::exists(t.root + "/models/model.pt")) << t.log;
  EXPECT_NE(t.log.find("val_mean_dice"), std::string::npos) << t.log;
  const auto stats = json::parse(read_file(t.root + "/models/train_stats.json"));
  ASSERT_TRUE(stats.contains("best_validation_metric")) << stats.dump();
  EXPECT_GE(stats["best_validation_metric"].get<double>(), 0.0);
  EXPECT_LE(stats["best_validation_metric"].get<double>(), 1.0);
}

TEST(Deepgrow2D, AClickLabelsItsSliceAloneOnTheInputGrid) {
  Served s;
  auto r = raw_http(s.port, test::simple_request("GET", "/v1/models?type=deepgrow"));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto list = json::parse(r.body);
  ASSERT_EQ(list.size(), 1u) << r.body;
  EXPECT_EQ(list[0]["deepgrow"], "2D") << "3D Slicer's 2-D DeepGrow tool reads it";
  EXPECT_EQ(list[0]["dimension"], 2);

  const auto c = organ_voxel();
  const json params = {{"foreground", {c}}, {"background", json::array()}};
  r = click(s.port, "/v1/deepgrow?model=deepgrow_2d", params);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto first = test::parse_mask_reply(r);
  const auto input = io::read_image(case_image());
  ASSERT_EQ(first.mask.data.sizes(), input.data.sizes()) << "the mask is on the input's grid";
  for (std::size_t i = 0; i < 16; ++i) EXPECT_NEAR(first.mask.affine[i], input.affine[i], 1e-5);
  EXPECT_EQ(off_slice(first.mask, c[2]), 0) << "only the clicked slice is labelled";
  ASSERT_EQ(first.params["crop"].size(), 3u) << first.params.dump();
  EXPECT_EQ(first.params["crop"][2], json({c[2], c[2]})) << first.params.dump();
  for (std::size_t d = 0; d < 2; ++d) {
    EXPECT_LE(first.params["crop"][d][0].get<int64_t>(), c[d]) << first.params.dump();
    EXPECT_GE(first.params["crop"][d][1].get<int64_t>(), c[d]) << first.params.dump();
  }

  // Clicks on two slices: the lower one is segmented with the clicks on it (MONAI's rule).
  const std::vector<int64_t> above{c[0], c[1], c[2] + 1}, below{c[0] + 3, c[1], c[2] - 1};
  r = click(s.port, "/v1/deepgrow?model=deepgrow_2d",
            {{"foreground", {c, above}}, {"background", {below}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto lower = test::parse_mask_reply(r);
  EXPECT_EQ(lower.params["crop"][2], json({c[2] - 1, c[2] - 1})) << lower.params.dump();
  EXPECT_EQ(off_slice(lower.mask, c[2] - 1), 0);

  // MONAI Label's /infer with a session: the session's prepared image, the same mask.
  r = raw_http(s.port, test::python_request("PUT", "/session/?expiry=60",
                                            {{"image", "/x/ct.nii.gz", "application/octet-stream",
                                              read_file(case_image())}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto id = json::parse(r.body)["session_id"].get<std::string>();
  r = raw_http(s.port, test::python_request("POST", "/infer/deepgrow_2d?session_id=" + id,
                                            {{"params", "", "", params.dump()}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(test::parse_mask_reply(r).mask.data.equal(first.mask.data));

  // barton infer --clicks: the server's mask.
  test::TempDir out;
  std::string sets;
  for (const auto& v : kServeSets) sets += " " + v;
  const auto log =
      sh(test::barton_bin() + " infer " + trained().root + " --input " + case_image() +
         " --output " + out.path() + " --set" + sets + " --clicks '" + params.dump() + "' 2>&1");
  const auto mask = io::read_image(out.path() + "/case_3/case_3_clicks.nii.gz");
  EXPECT_TRUE(mask.data.equal(first.mask.data)) << log;
}

/// A pipeline folder (config_aiaa.json only) chaining the two samples, with `batch_size`.
std::string pipeline_folder(const test::TempDir& dir,
                            const std::string& name,
                            int batch_size,
                            const std::string& models = R"(["deepgrow_2d", "deepgrow_3d"])") {
  const auto root = dir.path() + "/" + name;
  fs::create_directories(root + "/config");
  auto doc = json::parse(
      read_file(test::source_dir() + "/mmars/deepgrow_pipeline/config/config_aiaa.json"));
  doc["inference"]["args"]["batch_size"] = batch_size;
  doc["inference"]["args"]["models"] = json::parse(models);
  write_file_atomic(root + "/config/config_aiaa.json", doc.dump(2));
  return root;
}

/// Both samples' serve overrides, each for its own model (NAME:KEY=VALUE).
std::vector<std::string> both_sets() {
  auto sets = test::deepgrow3d_serve_sets("deepgrow_3d");
  for (const auto& v : kServeSets) sets.push_back("deepgrow_2d:" + v);
  return sets;
}

TEST(Deepgrow2D, PipelineRedrawsTheThreeDMaskSliceBySlice) {
  const auto& t3 = test::deepgrow3d_sample();
  test::TempDir dir;
  const auto one = pipeline_folder(dir, "pipeline_one", 1);
  const auto many = pipeline_folder(dir, "pipeline_many", 32);
  test::ServedSample s({trained().root, t3.root, one, many}, both_sets());
  auto r = raw_http(s.port, test::simple_request("GET", "/v1/models?type=pipeline"));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto list = json::parse(r.body);
  ASSERT_EQ(list.size(), 2u) << r.body;
  EXPECT_EQ(list[0]["deepgrow"], "3D") << "Slicer sends every click";
  EXPECT_EQ(list[0]["models"], json({"deepgrow_2d", "deepgrow_3d"}));

  const auto c = organ_voxel();
  const json params = {{"foreground", {c}}, {"background", json::array()}};
  r = click(s.port, "/v1/deepgrow?model=deepgrow_3d", params);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto coarse = test::parse_mask_reply(r).mask.data[0];
  r = click(s.port, "/v1/deepgrow?model=pipeline_one", params);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto fine = test::parse_mask_reply(r);
  ASSERT_EQ(fine.mask.data.sizes(), io::read_image(case_image()).data.sizes());
  // The 2-D model redrew each slice whose 3-D mask holds a region of at least 10 voxels (at the
  // input's 2 mm; more at the 2-D model's 1 mm), and no slice where the 3-D mask is empty.
  int64_t nonempty = 0, dense = 0;
  for (int64_t k = 0; k < coarse.size(2); ++k) {
    const auto sl = coarse.select(2, k) > 0;
    const bool any = sl.any().item<bool>();
    nonempty += any;
    if (any) {
      const auto [comp, n] = transforms::deepgrow::label_components(sl);
      dense +=
          at::bincount(comp.flatten().to(at::kLong), {}, n + 1).slice(0, 1).max().item<int64_t>() >=
          10;
    } else {
      EXPECT_EQ(fine.mask.data[0].select(2, k).sum().item<int64_t>(), 0) << "slice " << k;
    }
  }
  const auto refined = fine.params["refined_slices"].get<int64_t>();
  EXPECT_GE(refined, dense) << fine.params.dump();
  EXPECT_LE(refined, nonempty) << fine.params.dump();
  // Slices go through the 2-D network 32 at a time or one by one: the same mask.
  r = click(s.port, "/v1/deepgrow?model=pipeline_many", params);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(test::parse_mask_reply(r).mask.data.equal(fine.mask.data));
  // MONAI Label's /infer: the same.
  r = click(s.port, "/infer/pipeline_one", params);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(test::parse_mask_reply(r).mask.data.equal(fine.mask.data));
  EXPECT_EQ(click(s.port, "/v1/deepgrow?model=pipeline_one", json::object()).status, 400);
}

TEST(Deepgrow2D, BadPipelinesSetsAndModelConfigsAreRefusedAtStart) {
  test::TempDir dir;
  const auto bad = pipeline_folder(dir, "pipeline_bad", 4, R"(["deepgrow_2d", "missing"])");
  try {
    test::ServedSample s({trained().root, bad}, kServeSets);
    ADD_FAILURE() << "served";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("pipeline_bad/config/config_aiaa.json"), std::string::npos) << what;
    EXPECT_NE(what.find("'missing'"), std::string::npos) << what;
  }
  try {
    test::ServedSample s(trained().root, {"nosuch:/pre_transforms/0/args/keys=image"});
    ADD_FAILURE() << "served";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no model named 'nosuch'"), std::string::npos) << e.what();
  }
  // A pipeline that names no models, and one that names one model only, are refused naming the
  // file and what is missing.
  const auto refused = [&](const std::string& aiaa, const std::string& want) {
    const auto root = dir.path() + "/pipeline_broken";
    fs::create_directories(root + "/config");
    test::write_text(root + "/config/config_aiaa.json", aiaa);
    try {
      test::ServedSample s({trained().root, root}, kServeSets);
      ADD_FAILURE() << "served " << aiaa;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("pipeline_broken/config/config_aiaa.json"), std::string::npos) << what;
      EXPECT_NE(what.find(want), std::string::npos) << what;
    }
  };
  refused(R"({"type": "pipeline"})", "needs \"models\"");
  refused(R"({"type": "pipeline", "inference": {"args": {"models": ["deepgrow_2d"]}}})",
          "a pipeline chains two models");
  refused(R"({"type": "pipeline", "models": ["deepgrow_2d", "x"], "batch_size": 0})",
          "batch_size must be at least 1");
  // A model whose config_aiaa.json says 2-D DeepGrow over a 3-D inference config is refused.
  const auto mislabelled = dir.path() + "/mislabelled";
  fs::create_directories(mislabelled + "/config");
  for (const auto* f : {"config_inference.json", "environment.json"})
    fs::copy_file(test::deepgrow3d_sample().root + "/config/" + f, mislabelled + "/config/" + f);
  test::write_text(mislabelled + "/config/config_aiaa.json",
                   R"({"type": "deepgrow", "inference": {"meta_data": {"deepgrow": "2D"}}})");
  try {
    test::ServedSample s({mislabelled}, test::kDeepgrow3dServeSets);
    ADD_FAILURE() << "served";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("says deepgrow \"2D\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace barton
