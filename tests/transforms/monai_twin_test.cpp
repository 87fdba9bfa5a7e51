// Every transform against its Python twin of MONAI's definition (tests/golden/monai_twin), on
// anisotropic, non-RAS, odd-sized 3D images and on 2D images.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "core/errors.h"
#include "transforms/croppad/functional.h"
#include "transforms/intensity/functional.h"
#include "transforms/spatial/functional.h"
#include "transforms/twin.h"

namespace barton::transforms {
namespace {

using test::ct_case;
using test::expect_same;
using test::item;
using test::make_transform;
using test::run_twin;

constexpr double kTol = 1e-4;

// Applies `name` with `args` in Barton and in the twin; compares every image key of the output.
void check(const std::string& name,
           const std::string& args,
           const Sample& in,
           double tol = kTol,
           const std::string& params = "{}",
           bool check_dtype = true) {
  SCOPED_TRACE(name + " " + args);
  const auto t = make_transform(name, args);
  const auto ours = test::apply(*t, in);
  const auto ref = run_twin(name, args, params, in);
  ASSERT_EQ(ref.size(), 1u);
  for (const auto& [key, r] : ref[0]) {
    SCOPED_TRACE("key " + key);
    ASSERT_TRUE(ours.is_image(key));
    expect_same(ours.image(key), r, tol, 1e-5, check_dtype);
  }
}

at::Tensor rand_tensor(at::IntArrayRef size, uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::rand(size, g, at::TensorOptions().dtype(at::kFloat));
}

Affine oblique_2d() {
  Affine a = identity_affine();
  a[0] = 0.7;
  a[1] = 0.1;
  a[4] = -0.05;
  a[5] = -1.3;
  a[3] = 4;
  a[7] = 20;
  return a;
}

Sample two_d(std::vector<int64_t> size = {23, 18}, int64_t channels = 1) {
  Sample s;
  s.set("image", item(rand_tensor({channels, size[0], size[1]}, 5) * 100 - 20, oblique_2d()));
  return s;
}

// ---------------------------------------------------------------- intensity

TEST(TwinIntensity, ScaleIntensityRangeOnHounsfieldUnits) {
  auto s = ct_case();
  s.image("image").data = s.image("image").data.to(at::kShort);  // int16 in: float32 out
  check(
      "ScaleIntensityRanged",
      R"({"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0, "clip": true})",
      s);
  check("ScaleIntensityRanged", R"({"keys": "image", "a_min": 10, "a_max": 10, "b_min": 2.0})",
        ct_case());
  check("ScaleIntensityRanged", R"({"keys": ["image"], "a_min": 200, "a_max": -100})", ct_case());
}

TEST(TwinIntensity, NormalizeScaleThresholdAndPercentiles) {
  auto s = two_d({21, 17}, 2);
  s.image("image").data.index_put_({0, at::indexing::Slice(0, 5)}, 0.0);
  check("NormalizeIntensityd", R"({"keys": "image"})", s);
  check("NormalizeIntensityd", R"({"keys": "image", "nonzero": true, "channel_wise": true})", s);
  check(
      "NormalizeIntensityd",
      R"({"keys": "image", "subtrahend": [1.0, 2.0], "divisor": [3.0, 0.0], "channel_wise": true})",
      s);
  check("ScaleIntensityd", R"({"keys": "image"})", s);
  check("ScaleIntensityd", R"({"keys": "image", "minv": -1.0, "maxv": 2.0, "channel_wise": true})",
        s);
  check("ScaleIntensityd", R"({"keys": "image", "minv": null, "maxv": null, "factor": 0.5})", s);
  check("ThresholdIntensityd", R"({"keys": "image", "threshold": 30, "above": false, "cval": -7})",
        s);
  check(
      "ScaleIntensityRangePercentilesd",
      R"({"keys": "image", "lower": 5, "upper": 95, "b_min": 0, "b_max": 1, "clip": true, "relative": true})",
      s);
  check(
      "ScaleIntensityRangePercentilesd",
      R"({"keys": "image", "lower": 10, "upper": 90, "b_min": -1, "b_max": 1, "channel_wise": true})",
      s);
  check("ClipIntensityPercentilesd", R"({"keys": "image", "lower": 2.5, "upper": 97.5})", s);
  check("ClipIntensityPercentilesd",
        R"({"keys": "image", "lower": null, "upper": 80, "channel_wise": true})", s);
}

TEST(TwinIntensity, GaussianSmoothContrastAndHistogramWithExplicitDraws) {
  const auto s = ct_case({19, 16, 9});
  const auto& img = s.image("image").data;
  {
    const auto ref =
        run_twin("GaussianSmoothd", R"({"keys": "image", "sigma": [0.7, 1.3, 2.1]})", "{}", s);
    expect_same(item(intensity::gaussian_smooth(img, {0.7, 1.3, 2.1}), s.image("image").affine),
                ref[0].at("image"));
  }
  {
    auto pos = (img - img.min()) / 100.0;
    Sample p;
    p.set("image", item(pos, s.image("image").affine));
    const auto ref = run_twin("AdjustContrastd",
                              R"({"keys": "image", "gamma": 1.7, "retain_stats": true})", "{}", p);
    expect_same(item(intensity::adjust_contrast(pos, 1.7, false, true), s.image("image").affine),
                ref[0].at("image"), 1e-4);
    const auto ref2 = run_twin("AdjustContrastd",
                               R"({"keys": "image", "gamma": 0.6, "invert_image": true})", "{}", p);
    expect_same(item(intensity::adjust_contrast(pos, 0.6, true, false), s.image("image").affine),
                ref2[0].at("image"), 1e-4);
  }
  {
    const std::vector<double> floating = {0.0, 0.3, 0.35, 0.8, 1.0};
    const auto ref = run_twin("RandHistogramShiftd", R"({"keys": "image", "prob": 1.0})",
                              R"({"floating_control_points": [0.0, 0.3, 0.35, 0.8, 1.0]})", s);
    const double lo = img.min().item<double>(), hi = img.max().item<double>();
    std::vector<double> xp, fp;
    for (std::size_t i = 0; i < floating.size(); ++i) {
      xp.push_back(i / 4.0 * (hi - lo) + lo);
      fp.push_back(floating[i] * (hi - lo) + lo);
    }
    expect_same(item(intensity::interp(img, xp, fp), s.image("image").affine), ref[0].at("image"),
                1e-4);
  }
}

TEST(TwinIntensity, RandomIntensityTransformsStayInTheirRangesAndReproduce) {
  const auto s = ct_case({19, 16, 9});
  const auto t =
      make_transform("RandShiftIntensityd", R"({"keys": "image", "offsets": 10, "prob": 1.0})");
  const auto a = test::apply(*t, s, 7), b = test::apply(*t, s, 7), c = test::apply(*t, s, 8);
  const auto d1 = (a.image("image").data - s.image("image").data);
  EXPECT_NEAR(d1.max().item<double>(), d1.min().item<double>(), 1e-3);  // one offset for the image
  EXPECT_LE(std::abs(d1.max().item<double>()), 10.0);
  EXPECT_TRUE(at::equal(a.image("image").data, b.image("image").data));
  EXPECT_FALSE(at::equal(a.image("image").data, c.image("image").data));
  // A tensor no one else holds (as test::apply's deep copy) is shifted in place; a shared one is
  // left alone and shifted into a new tensor, to the same values.
  auto own = s.deep_copy();
  const void* storage = own.image("image").data.data_ptr();
  transforms::Rng r1(7), r2(7);
  t->apply(own, r1);
  EXPECT_EQ(own.image("image").data.data_ptr(), storage);
  const auto original = s.image("image").data.clone();
  auto shared = s;  // shares the tensors
  t->apply(shared, r2);
  EXPECT_NE(shared.image("image").data.data_ptr(), s.image("image").data.data_ptr());
  EXPECT_TRUE(at::equal(s.image("image").data, original));
  EXPECT_TRUE(at::equal(shared.image("image").data, own.image("image").data));
  EXPECT_TRUE(at::equal(own.image("image").data, a.image("image").data));
  const auto never =
      make_transform("RandScaleIntensityd", R"({"keys": "image", "factors": 0.5, "prob": 0.0})");
  EXPECT_TRUE(at::equal(test::apply(*never, s).image("image").data, s.image("image").data));
}

// ---------------------------------------------------------------- spatial

TEST(TwinSpatial, OrientationReordersAndFlipsWithTheAffine) {
  const auto s = ct_case();
  check("Orientationd", R"({"keys": ["image", "label"], "axcodes": "RAS"})", s, 0);
  check("Orientationd", R"({"keys": ["image", "label"], "axcodes": "PLI"})", s, 0);
  check("Orientationd", R"({"keys": "image", "axcodes": "LA"})", two_d(), 0);
}

TEST(TwinSpatial, SpacingMatchesShapeAffineAndValues) {
  const auto s = ct_case({30, 26, 11});
  check(
      "Spacingd",
      R"({"keys": ["image", "label"], "pixdim": [1.0, 1.0, 1.0], "mode": ["bilinear", "nearest"]})",
      s, 1e-4);
  check("Spacingd",
        R"({"keys": ["image", "label"], "pixdim": [2.5, 1.5, 3.0], "mode": ["bilinear", "nearest"],
                        "padding_mode": "zeros"})",
        s, 1e-4);
  check("Spacingd",
        R"({"keys": "image", "pixdim": [2.0], "diagonal": true, "align_corners": true})", s, 1e-4);
  check("Spacingd", R"({"keys": "image", "pixdim": [1.6, 1.6, -1]})", s,
        1e-4);  // nothing to do: float32, same affine
  check("Spacingd", R"({"keys": "image", "pixdim": [0.5, 2.0], "mode": "bilinear"})", two_d(),
        1e-4);
}

TEST(TwinSpatial, ResizeModes) {
  const auto s = ct_case({17, 15, 9});
  check(
      "Resized",
      R"({"keys": ["image", "label"], "spatial_size": [24, 11, -1], "mode": ["area", "nearest"]})",
      s);
  check(
      "Resized",
      R"({"keys": "image", "spatial_size": [9, 20, 13], "mode": "trilinear", "align_corners": true})",
      s);
  check("Resized",
        R"({"keys": "image", "spatial_size": 30, "size_mode": "longest", "mode": "bilinear"})", s);
  check("Resized", R"({"keys": "image", "spatial_size": [40, 7], "mode": "nearest-exact"})",
        two_d());
}

TEST(TwinCropPad, PadsAndCrops) {
  const auto s = ct_case({17, 15, 9});
  check("SpatialPadd", R"({"keys": ["image", "label"], "spatial_size": [20, 20, 12]})", s, 0);
  check("SpatialPadd",
        R"({"keys": "image", "spatial_size": [22, 10, 14], "method": "end", "mode": "edge"})", s,
        0);
  check("SpatialPadd", R"({"keys": "image", "spatial_size": [27, 19], "mode": "reflect"})", two_d(),
        0);
  check("DivisiblePadd", R"({"keys": ["image", "label"], "k": 16})", s, 0);
  check("DivisiblePadd", R"({"keys": "image", "k": [4, 0, 5], "method": "end"})", s, 0);
  check("CenterSpatialCropd", R"({"keys": ["image", "label"], "roi_size": [10, 8, -1]})", s, 0);
  check("CenterSpatialCropd", R"({"keys": "image", "roi_size": [6, 40]})", two_d(), 0);
}

TEST(TwinCropPad, CropForegroundMarginsDivisibilityAndBorders) {
  auto s = ct_case({30, 26, 11});
  check("CropForegroundd", R"({"keys": ["image", "label"], "source_key": "label"})", s, 0);
  check(
      "CropForegroundd",
      R"({"keys": ["image", "label"], "source_key": "label", "margin": [3, 1, 40], "k_divisible": [8, 5, 1]})",
      s, 0);
  check("CropForegroundd",
        R"({"keys": ["image", "label"], "source_key": "image", "select_fn": -500, "margin": 2})", s,
        0);
  check(
      "CropForegroundd",
      R"({"keys": "image", "source_key": "image", "select_fn": 50, "margin": 4, "allow_smaller": false})",
      two_d(), 0);
  // The box coordinates MONAI stores.
  const auto t = make_transform("CropForegroundd",
                                R"({"keys": "image", "source_key": "label", "k_divisible": 7})");
  const auto out = test::apply(*t, s);
  const auto& start = std::get<std::vector<int64_t>>(out.get("foreground_start_coord"));
  const auto& end = std::get<std::vector<int64_t>>(out.get("foreground_end_coord"));
  for (std::size_t d = 0; d < 3; ++d) EXPECT_EQ((end[d] - start[d]) % 7, 0);
}

TEST(TwinSpatial, FlipsRotationsZoomAndAffineWithExplicitParameters) {
  const auto s = ct_case({17, 15, 9});
  const auto& img = s.image("image");
  const spatial::Spatial in{img.data, img.affine};
  {
    const auto ref = run_twin("Flipd", R"({"keys": "image", "spatial_axis": [0, 2]})", "{}", s);
    const auto out = spatial::flip(in, {0, 2});
    expect_same(item(out.data, out.affine), ref[0].at("image"), 0);
  }
  for (int k : {1, 2, 3}) {
    const auto ref = run_twin(
        "Rotate90d",
        R"({"keys": "image", "k": )" + std::to_string(k) + R"(, "spatial_axes": [0, 2]})", "{}", s);
    const auto out = spatial::rotate90(in, k, 0, 2);
    expect_same(item(out.data, out.affine), ref[0].at("image"), 0);
  }
  {
    const auto ref = run_twin(
        "Rotated",
        R"({"keys": "image", "angle": [0.3, -0.2, 0.5], "keep_size": false, "padding_mode": "zeros"})",
        "{}", s);
    const auto out = spatial::rotate(in, {0.3, -0.2, 0.5}, false, "bilinear", "zeros", false);
    expect_same(item(out.data, out.affine), ref[0].at("image"), 1e-3);
  }
  {
    const auto ref = run_twin("Zoomd", R"({"keys": "image", "zoom": [1.3, 0.8, 1.1]})", "{}", s);
    const auto out = spatial::zoom(in, {1.3, 0.8, 1.1}, "area", "edge", std::nullopt, true);
    expect_same(item(out.data, out.affine), ref[0].at("image"), 1e-4);
  }
  {
    const auto ref = run_twin(
        "RandAffined",
        R"({"keys": "image", "prob": 1.0, "spatial_size": [12, 14, 9], "padding_mode": "zeros"})",
        R"({"rotate": [0.2, 0.0, -0.1], "translate": [2.0, -1.0, 0.5], "scale": [1.1, 0.9, 1.0]})",
        s);
    Affine m = matmul(matmul(spatial::create_rotate(3, {0.2, 0.0, -0.1}),
                             spatial::create_translate(3, {2.0, -1.0, 0.5})),
                      spatial::create_scale(3, {1.1, 0.9, 1.0}));
    const auto out =
        spatial::affine_grid_resample(in, m, {12, 14, 9}, "bilinear", "zeros", false, at::kDouble);
    expect_same(item(out.data, out.affine), ref[0].at("image"), 1e-4);
  }
}

TEST(TwinCropPad, RandCropByPosNegLabelCropsWhereMonaiWould) {
  const auto s = ct_case({30, 26, 11});
  const auto t =
      make_transform("RandCropByPosNegLabeld", R"({"keys": ["image", "label"], "label_key": "label",
      "spatial_size": [12, 10, 6], "pos": 1, "neg": 1, "num_samples": 4, "image_key": "image", "image_threshold": 0})");
  Rng rng(11);
  const auto outs = t->apply_multi(s.deep_copy(), rng);
  ASSERT_EQ(outs.size(), 4u);
  // Compare each crop with the twin cropping at the same (corrected) centre.
  for (const auto& o : outs) {
    const auto& img = o.image("image");
    const Affine shift = matmul(inverse(s.image("image").affine), img.affine);
    std::vector<int64_t> center = {std::lround(shift[3]) + 6, std::lround(shift[7]) + 5,
                                   std::lround(shift[11]) + 3};
    const auto ref =
        run_twin("RandCropByPosNegLabeld", R"({"keys": ["image", "label"], "label_key": "label",
        "spatial_size": [12, 10, 6], "num_samples": 1, "image_key": "image"})",
                 "{\"centers\": [[" + std::to_string(center[0]) + ", " + std::to_string(center[1]) +
                     ", " + std::to_string(center[2]) + "]]}",
                 s);
    expect_same(img, ref[0].at("image"), 0);
    expect_same(o.image("label"), ref[0].at("label"), 0);
  }
}

TEST(TwinCropPad, CropCentreCorrectionFollowsMonai) {
  // Valid centres: [size // 2, S - size + size // 2] for odd and even sizes.
  EXPECT_EQ(croppad::correct_crop_center({0, 9, 5}, {5, 4, 10}, {10, 10, 10}),
            (std::vector<int64_t>{2, 8, 5}));
  EXPECT_EQ(croppad::correct_crop_center({9, 0, 0}, {5, 4, 10}, {10, 10, 10}),
            (std::vector<int64_t>{7, 2, 5}));
}

// ---------------------------------------------------------------- post

TEST(TwinPost, ActivationsDiscretisationAndComponents) {
  Sample s;
  s.set("pred", item(rand_tensor({3, 12, 11, 7}, 3) * 4 - 2));
  check("Activationsd", R"({"keys": "pred", "softmax": true})", s);
  check("Activationsd", R"({"keys": "pred", "sigmoid": true})", s);
  check("AsDiscreted", R"({"keys": "pred", "argmax": true, "to_onehot": 3})", s, 0);
  check("AsDiscreted", R"({"keys": "pred", "threshold": 0.5})", s, 0);
  Sample label;
  label.set("label",
            item(at::randint(0, 2, {1, 9, 8, 5}, at::make_generator<at::CPUGeneratorImpl>(4),
                             at::TensorOptions().dtype(at::kFloat))));
  // Clara 4.x spellings: to_onehot=true + n_classes, threshold_values + logit_thresh.
  check("AsDiscreted", R"({"keys": "label", "to_onehot": true, "n_classes": 2})", label, 0);
  Sample probs;
  probs.set("pred", item(rand_tensor({1, 9, 8, 5}, 9)));
  check("AsDiscreted", R"({"keys": "pred", "threshold_values": true, "logit_thresh": 0.3})", probs,
        0);
  // Three blobs of different sizes, one with a hole.
  auto seg = at::zeros({1, 20, 20, 8});
  seg.index_put_(
      {0, at::indexing::Slice(1, 8), at::indexing::Slice(1, 8), at::indexing::Slice(1, 7)}, 1.0);
  seg.index_put_({0, 4, 4, 3}, 0.0);  // a hole
  seg.index_put_(
      {0, at::indexing::Slice(12, 15), at::indexing::Slice(12, 15), at::indexing::Slice(2, 5)},
      1.0);
  seg.index_put_(
      {0, at::indexing::Slice(12, 19), at::indexing::Slice(2, 4), at::indexing::Slice(0, 2)}, 2.0);
  seg.index_put_({0, 17, 17, 7}, 2.0);
  Sample labels;
  labels.set("seg", item(seg));
  check("KeepLargestConnectedComponentd", R"({"keys": "seg"})", labels, 0);
  check("KeepLargestConnectedComponentd",
        R"({"keys": "seg", "applied_labels": [1, 2], "independent": false, "connectivity": 1})",
        labels, 0);
  check("KeepLargestConnectedComponentd",
        R"({"keys": "seg", "applied_labels": 1, "num_components": 2})", labels, 0);
  check("FillHolesd", R"({"keys": "seg"})", labels, 0);
  check("FillHolesd", R"({"keys": "seg", "applied_labels": [1], "connectivity": 1})", labels, 0);
}

TEST(TwinUtility, CastsConcatCopiesAndIndices) {
  auto s = ct_case({12, 11, 5});
  check("CastToTyped", R"({"keys": ["image", "label"], "dtype": ["int16", "uint8"]})", s, 0);
  check("ConcatItemsd", R"({"keys": ["image", "label"], "name": "both"})", s, 0);
  check("CopyItemsd", R"({"keys": ["image"], "times": 2, "names": ["a", "b"]})", s, 0);
  const auto t = make_transform(
      "FgBgToIndicesd", R"({"keys": "label", "image_key": "image", "image_threshold": -500})");
  const auto out = test::apply(*t, s);
  const auto& fg = std::get<std::vector<int64_t>>(out.get("label_fg_indices"));
  const auto& bg = std::get<std::vector<int64_t>>(out.get("label_bg_indices"));
  const auto label = s.image("label").data.reshape(-1);
  const auto image = s.image("image").data.reshape(-1);
  for (auto i : fg) ASSERT_GT(label[i].item<float>(), 0);
  for (auto i : bg) ASSERT_TRUE(label[i].item<float>() == 0 && image[i].item<float>() > -500);
  EXPECT_EQ(static_cast<int64_t>(fg.size()), (label > 0).sum().item<int64_t>());
  EXPECT_EQ(static_cast<int64_t>(bg.size()), ((label == 0) & (image > -500)).sum().item<int64_t>());
}

TEST(TwinUtility, DeleteItemsdByNameAndByRegex) {
  auto s = ct_case({10, 9, 5});
  s.set("label_copy", s.image("label"));
  // MONAI: use_re searches (re.search) every key; a plain key deletes that key only.
  auto out =
      test::apply(*make_transform("DeleteItemsd", R"({"keys": ["abel"], "use_re": true})"), s);
  EXPECT_TRUE(out.has("image"));
  EXPECT_FALSE(out.has("label"));
  EXPECT_FALSE(out.has("label_copy"));
  out = test::apply(*make_transform("DeleteItemsd", R"({"keys": "label"})"), s);
  EXPECT_TRUE(out.has("label_copy"));
  EXPECT_FALSE(out.has("label"));
  // What Barton cannot do is refused when the transform is built, at the argument.
  try {
    make_transform("DeleteItemsd", R"({"keys": "image_meta_dict.affine"})");
    FAIL() << "a nested key was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("nested"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_transform("DeleteItemsd", R"({"keys": "(", "use_re": true})"), ConfigError);
}

// ---------------------------------------------------------------- inversion

TEST(TwinInvert, InvertdPutsAPredictionBackOnTheOriginalGrid) {
  const auto s = ct_case({30, 26, 11});
  const std::vector<std::pair<std::string, std::string>> chain = {
      {"Orientationd", R"({"keys": ["image"], "axcodes": "RAS"})"},
      {"Spacingd", R"({"keys": ["image"], "pixdim": [1.2, 1.2, 2.5], "mode": "bilinear"})"},
      {"CropForegroundd",
       R"({"keys": ["image"], "source_key": "image", "select_fn": -500, "margin": 1})"},
  };
  Sample cur = s.deep_copy();
  std::string chain_json = "[";
  for (const auto& [n, a] : chain) {
    cur = test::apply(*make_transform(n, a), cur);
    chain_json += std::string(chain_json.size() > 1 ? "," : "") + "[\"" + n + "\", " + a + ", {}]";
  }
  chain_json += "]";
  // The "prediction" is the transformed image itself.
  auto pred = cur.image("image");
  pred.applied.clear();
  cur.set("pred", pred);
  const auto inv = make_transform(
      "Invertd", R"({"keys": "pred", "transform": "@pre_transforms", "orig_keys": "image",
                                                "nearest_interp": false})");
  const auto ours = test::apply(*inv, cur);
  Sample twin_in;
  twin_in.set("image", s.image("image"));
  twin_in.set("pred", item(cur.image("image").data, cur.image("image").affine));
  const auto ref =
      run_twin("Invertd", R"({"keys": ["pred"], "orig_keys": "image", "nearest_interp": false})",
               "{\"chain\": " + chain_json + ", \"orig_key\": \"image\"}", twin_in);
  expect_same(ours.image("pred"), ref[0].at("pred"), 2e-3, 1e-4, false);
  // And the result lies on the original grid.
  EXPECT_EQ(ours.image("pred").spatial_shape(), s.image("image").spatial_shape());
}

}  // namespace
}  // namespace barton::transforms

namespace barton::transforms {
namespace {

TEST(TwinCropPad, RandSpatialCropAndSamplesCropWhereMonaiWould) {
  const auto s = ct_case({23, 19, 11});
  for (const char* name : {"RandSpatialCropd", "RandSpatialCropSamplesd"}) {
    SCOPED_TRACE(name);
    const std::string args =
        std::string(R"({"keys": ["image", "label"], "roi_size": [9, 7, 5])") +
        (std::string(name) == "RandSpatialCropSamplesd" ? R"(, "num_samples": 3})" : "}");
    const auto t = make_transform(name, args);
    Rng rng(7);
    const auto outs = t->apply_multi(s.deep_copy(), rng);
    ASSERT_EQ(outs.size(), std::string(name) == "RandSpatialCropSamplesd" ? 3u : 1u);
    for (const auto& o : outs) {
      const Affine shift = matmul(inverse(s.image("image").affine), o.image("image").affine);
      const std::string start = "[" + std::to_string(std::lround(shift[3])) + ", " +
                                std::to_string(std::lround(shift[7])) + ", " +
                                std::to_string(std::lround(shift[11])) + "]";
      const auto ref =
          run_twin("RandSpatialCropd", R"({"keys": ["image", "label"], "roi_size": [9, 7, 5]})",
                   "{\"start\": " + start + "}", s);
      expect_same(o.image("image"), ref[0].at("image"), 0);
      expect_same(o.image("label"), ref[0].at("label"), 0);
    }
  }
}

TEST(TwinIntensity, RandGaussianNoiseAddsTheSameFieldToEveryKeyWithTheRightSpread) {
  Sample s;
  s.set("a", item(at::zeros({1, 40, 40, 20})));
  s.set("b", item(at::ones({1, 40, 40, 20})));
  const auto t = make_transform(
      "RandGaussianNoised",
      R"({"keys": ["a", "b"], "prob": 1.0, "mean": 0.5, "std": 0.2, "sample_std": false})");
  const auto out = test::apply(*t, s, 3);
  const auto na = out.image("a").data, nb = out.image("b").data - 1.0;
  EXPECT_LT((na - nb).abs().max().item<float>(), 1e-6);
  EXPECT_NEAR(na.mean().item<float>(), 0.5, 0.01);
  EXPECT_NEAR(na.std().item<float>(), 0.2, 0.01);
  const auto sampled =
      make_transform("RandGaussianNoised", R"({"keys": "a", "prob": 1.0, "std": 0.2})");
  EXPECT_LE(test::apply(*sampled, s, 4).image("a").data.std().item<float>(),
            0.21f);  // sigma ~ U(0, 0.2)
}

}  // namespace
}  // namespace barton::transforms
