// The sample DEXTR3D MMAR (mmars/dextr3d) end to end, small: trained and validated with the
// label's extreme points, then served through AIAA /v1/dextr3d in both client modes (the whole
// image or a session with the points in its indices, and the client's own crop as NVIDIA's
// clients make it) and MONAI Label's /infer/{model}.
#include <cmath>
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

// Small sizes for a 2-core CI: 2 mm voxels, a 6 mm pad, 32^3 crops.
const char* kTrainSets =
    " --set epochs=12 num_interval_per_valid=4 pad_mm=3"
    " /train/pre_transforms/2/args/pixdim=[2,2,2]"
    " /train/pre_transforms/5/args/spatial_size=[32,32,32]";
const char* kValidateSets =
    " --set pad_mm=3 /pre_transforms/2/args/pixdim=[2,2,2]"
    " /pre_transforms/5/args/spatial_size=[32,32,32]";
const std::vector<std::string> kServeSets = {"pad_mm=3", "/pre_transforms/2/args/pixdim=[2,2,2]",
                                             "/pre_transforms/6/args/spatial_size=[32,32,32]"};
constexpr double kPadMm = 6.0;  // 3 voxels of 2 mm

const test::TrainedSample& trained() {
  static test::TempDir dir;
  static const auto t = test::train_sample(
      dir.path(), "dextr3d", "--cases 6 --size 40 40 16 --spacing 2 2 5 --seed 5", kTrainSets);
  return t;
}

std::string case_image() {
  return trained().root + "/data/imagesTr/case_3.nii.gz";
}
io::Image case_label() {
  return io::read_image(trained().root + "/data/labelsTr/case_3.nii.gz");
}

/// The label's six extreme points, [x, y, z] voxel indices, as a clinician would mark them.
std::vector<std::vector<int64_t>> extreme_points(const io::Image& label) {
  const auto idx = (label.data[0] > 0).nonzero();
  std::vector<std::vector<int64_t>> out;
  for (int64_t axis = 0; axis < 3; ++axis) {
    const auto col = idx.select(1, axis);
    for (const auto& target : {col.min(), col.max()}) {
      const auto row = idx[(col == target).nonzero()[0][0]];
      out.push_back({row[0].item<int64_t>(), row[1].item<int64_t>(), row[2].item<int64_t>()});
    }
  }
  return out;
}

double dice(const at::Tensor& a, const at::Tensor& b) {
  const auto x = a > 0, y = b > 0;
  const double inter = (x & y).sum().item<double>();
  const double total = x.sum().item<double>() + y.sum().item<double>();
  return total > 0 ? 2 * inter / total : 1.0;
}

struct Served : test::ServedSample {
  Served() : test::ServedSample(trained().root, kServeSets) {}
};

using test::parse_mask_reply;
using test::post_params;

/// NVIDIA's client-side DEXTR3D pre-processing (clara-train.md 5.5), written here: per axis a pad
/// of pad_mm / spacing voxels around the points' box, clamped to the image; the crop resampled
/// linearly to `roi` (voxel i of the result samples the crop at i * crop / roi, the spacing grows
/// by crop / roi); the points scaled by roi / crop.
struct ClientCrop {
  io::Image image;
  std::vector<int64_t> start, size;
  std::vector<std::vector<int64_t>> points;
};

ClientCrop client_crop(const io::Image& in,
                       const std::vector<std::vector<int64_t>>& points,
                       const std::vector<int64_t>& roi) {
  ClientCrop c;
  const auto shape = in.data.sizes().slice(1).vec();
  at::Tensor data = in.data.to(at::kFloat);
  c.image.affine = in.affine;
  for (int64_t d = 0; d < 3; ++d) {
    const double spacing =
        std::sqrt(in.affine[d] * in.affine[d] + in.affine[4 + d] * in.affine[4 + d] +
                  in.affine[8 + d] * in.affine[8 + d]);
    const auto pad = static_cast<int64_t>(kPadMm / spacing);
    int64_t lo = shape[d], hi = 0;
    for (const auto& p : points) lo = std::min(lo, p[d]), hi = std::max(hi, p[d]);
    lo = std::max<int64_t>(lo - pad, 0);
    hi = std::min<int64_t>(hi + pad, shape[d] - 1);
    c.start.push_back(lo);
    c.size.push_back(hi - lo + 1);
    data = data.slice(d + 1, lo, hi + 1);
    const double scale = static_cast<double>(hi - lo + 1) / static_cast<double>(roi[d]);
    for (int r = 0; r < 3; ++r) {
      c.image.affine[r * 4 + 3] += in.affine[r * 4 + d] * static_cast<double>(lo);
    }
    for (int r = 0; r < 3; ++r) c.image.affine[r * 4 + d] *= scale;
  }
  // grid_sample with align_corners: -1 and 1 are the crop's first and last voxel centres.
  std::vector<at::Tensor> axes;
  for (int64_t d = 0; d < 3; ++d)
    axes.push_back(at::arange(roi[d], at::kFloat) * (static_cast<double>(c.size[d]) / roi[d]) *
                       (2.0 / static_cast<double>(c.size[d] - 1)) -
                   1.0);
  const auto g = at::meshgrid({axes[0], axes[1], axes[2]}, "ij");
  const auto grid = at::stack({g[2], g[1], g[0]}, -1).unsqueeze(0);  // x = last axis
  c.image.data = at::grid_sampler(data.unsqueeze(0), grid, 0, 1, true)[0].to(at::kShort);
  c.image.file_dtype = "int16";
  for (const auto& p : points) {
    std::vector<int64_t> q;
    for (int64_t d = 0; d < 3; ++d)
      q.push_back(static_cast<int64_t>(static_cast<double>(p[d] - c.start[d]) * roi[d] /
                                       static_cast<double>(c.size[d])));
    c.points.push_back(q);
  }
  return c;
}

TEST(Dextr3d, SampleMmarTrainsAndValidatesWithExtremePoints) {
  const auto& t = trained();
  EXPECT_TRUE(fs::exists(t.root + "/models/model.pt")) << t.log;
  EXPECT_NE(t.log.find("val_mean_dice"), std::string::npos) << t.log;
  const auto stats = json::parse(read_file(t.root + "/models/train_stats.json"));
  ASSERT_TRUE(stats.contains("best_validation_metric")) << stats.dump();
  const double best = stats["best_validation_metric"].get<double>();
  EXPECT_GT(best, 0.5) << "12 small epochs from the exact extreme points";
  EXPECT_LE(best, 1.0);
  // config_validation.json: the label's own extreme points, no randomness: the same Dice twice,
  // and the best epoch's.
  const auto validate = [&] {
    const auto out = sh("BARTON_THREADS=2 " + test::barton_bin() + " validate " + t.root +
                        kValidateSets + " 2>&1");
    const auto at = out.find("val_mean_dice: ");
    EXPECT_NE(at, std::string::npos) << out;
    return at == std::string::npos ? std::string() : out.substr(at, 21);
  };
  const auto first = validate();
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(validate(), first);
  EXPECT_NEAR(std::stod(first.substr(15)), best, 1e-4) << first;
}

TEST(Dextr3d, ServedThroughAiaaInBothClientModesAndMonaiLabel) {
  Served s;
  auto r = raw_http(s.port, test::simple_request("GET", "/v1/models?type=annotation"));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto list = json::parse(r.body);
  ASSERT_EQ(list.size(), 1u) << r.body;
  EXPECT_EQ(list[0]["type"], "annotation");
  EXPECT_EQ(list[0]["roi"], json({64, 64, 64})) << "config_aiaa.json's meta_data";
  EXPECT_EQ(list[0]["padding"], 10.0);
  EXPECT_EQ(list[0]["sigma"], 3.0);

  const auto input = io::read_image(case_image());
  const auto label = case_label();
  const auto points = extreme_points(label);
  const auto image = read_file(case_image());
  // 1. The whole image with the points in its indices (pre_process=False).
  r = post_params(s.port, "/v1/dextr3d?model=dextr3d", {{"points", points}}, image);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto whole = parse_mask_reply(r);
  ASSERT_EQ(whole.mask.data.sizes(), input.data.sizes()) << "the mask is on the input's grid";
  for (std::size_t i = 0; i < 16; ++i) EXPECT_NEAR(whole.mask.affine[i], input.affine[i], 1e-5);
  const double whole_dice = dice(whole.mask.data, label.data);
  EXPECT_GT(whole_dice, 0.5);
  // Nothing labelled outside the points' box and its pad (the crop the network saw).
  ASSERT_EQ(whole.params["crop"].size(), 3u) << whole.params.dump();
  const auto& c = whole.params["crop"];
  auto outside = whole.mask.data.clone();
  outside.slice(1, c[0][0].get<int64_t>(), c[0][1].get<int64_t>() + 1)
      .slice(2, c[1][0].get<int64_t>(), c[1][1].get<int64_t>() + 1)
      .slice(3, c[2][0].get<int64_t>(), c[2][1].get<int64_t>() + 1)
      .zero_();
  EXPECT_EQ(outside.sum().item<int64_t>(), 0);

  // 2. A session: the same points give the same mask, read and resampled once.
  r = raw_http(
      s.port, test::python_request("PUT", "/session/?expiry=60",
                                   {{"image", "/x/ct.nii.gz", "application/octet-stream", image}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto id = json::parse(r.body)["session_id"].get<std::string>();
  ASSERT_EQ(post_params(s.port, "/v1/dextr3d?model=dextr3d&session_id=" + id, {{"points", points}})
                .status,
            200);
  r = post_params(s.port, "/v1/dextr3d?model=dextr3d&session_id=" + id, {{"points", points}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto cached = parse_mask_reply(r);
  EXPECT_TRUE(cached.params["session_cached"].get<bool>());
  EXPECT_TRUE(cached.mask.data.equal(whole.mask.data));
  // MONAI Label's /infer/{model}: the points as foreground.
  r = post_params(s.port, "/infer/dextr3d?session_id=" + id, {{"foreground", points}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(parse_mask_reply(r).mask.data.equal(whole.mask.data));

  // 3. The client's own crop (pre_process=True): the mask comes back on the crop's grid, and
  // pasted back as the client does, it agrees with the whole-image answer.
  const std::vector<int64_t> roi{48, 48, 48};
  const auto crop = client_crop(input, points, roi);
  test::TempDir tmp;
  io::write_image(crop.image, tmp.file("crop.nii.gz"));
  r = post_params(s.port, "/v1/dextr3d?model=dextr3d", {{"points", crop.points}},
                  read_file(tmp.file("crop.nii.gz")));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto cropped = parse_mask_reply(r);
  ASSERT_EQ(cropped.mask.data.sizes(), crop.image.data.sizes());
  for (std::size_t i = 0; i < 16; ++i)
    EXPECT_NEAR(cropped.mask.affine[i], crop.image.affine[i], 1e-5);
  auto pasted = at::zeros_like(whole.mask.data, at::kFloat);
  const auto back =
      at::upsample_nearest3d(cropped.mask.data.to(at::kFloat).unsqueeze(0), crop.size)[0];
  pasted.slice(1, crop.start[0], crop.start[0] + crop.size[0])
      .slice(2, crop.start[1], crop.start[1] + crop.size[1])
      .slice(3, crop.start[2], crop.start[2] + crop.size[2])
      .copy_(back);
  const double crop_dice = dice(pasted, label.data);
  EXPECT_GT(crop_dice, 0.5);
  EXPECT_GT(dice(pasted, whole.mask.data), 0.7) << "whole " << whole_dice << ", crop " << crop_dice;
  std::cout << "[dextr3d] Dice whole image " << whole_dice << ", client crop " << crop_dice << "\n";
}

TEST(Dextr3d, BadPointsGetTheirStatus) {
  Served s;
  const auto image = read_file(case_image());
  const auto points = extreme_points(case_label());
  auto r = post_params(s.port, "/v1/dextr3d?model=dextr3d", json::object(), image);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("at least 6 extreme points"), std::string::npos) << r.body;
  auto five = points;
  five.pop_back();
  EXPECT_EQ(post_params(s.port, "/v1/dextr3d?model=dextr3d", {{"points", five}}, image).status,
            400);
  r = post_params(s.port, "/v1/dextr3d?model=dextr3d", {{"points", "x"}}, image);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("params.points"), std::string::npos) << r.body;
  auto far = points;
  far[0] = {1000, 2, 3};
  r = post_params(s.port, "/v1/dextr3d?model=dextr3d", {{"points", far}}, image);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("outside the image"), std::string::npos) << r.body;
  EXPECT_EQ(
      post_params(s.port, "/v1/deepgrow?model=dextr3d", {{"foreground", points}}, image).status,
      400);
}

}  // namespace
}  // namespace barton
