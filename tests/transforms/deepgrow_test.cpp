// The interactive-model transforms (DeepGrow click simulation and guidance) against their Python
// twins of MONAI 1.4's definitions (tests/golden/monai_twin/deepgrow.py), plus the pure functions
// they are built from. MONAI draws clicks with numpy's generator; the twin takes the flat index
// Barton drew and checks it is a candidate, recomputes the click (distance and all) and returns
// the sampling map, which Barton's frequencies are then checked against.
#include <map>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "transforms/deepgrow/functional.h"
#include "transforms/twin.h"

namespace barton::transforms {
namespace {

using nlohmann::json;
using test::expect_same;
using test::item;
using test::make_transform;
using test::run_twin;

struct Both {
  Sample ours;
  std::vector<test::TwinSample> ref;
  json values;  // the twin's non-image outputs
};

Both both(const std::string& name,
          const std::string& args,
          const Sample& in,
          const std::string& params = "{}",
          uint64_t seed = 0) {
  const auto t = make_transform(name, args);
  Both b{test::apply(*t, in, seed), {}, {}};
  std::vector<json> values;
  b.ref = run_twin(name, args, params, in, &values);
  EXPECT_EQ(b.ref.size(), 1u);
  if (!values.empty()) b.values = values[0];
  return b;
}

json ours_value(const Sample& s, const std::string& key) {
  return test::value_json(s.get(key));
}

/// A [1, D, H, W] label with two blobs in slice 2 and one box in slices 4-6; anisotropic affine.
Sample label_case() {
  auto l = at::zeros({1, 8, 12, 10}, at::kFloat);
  l.index_put_({0, 2, at::indexing::Slice(1, 4), at::indexing::Slice(1, 5)}, 1.0);
  l.index_put_({0, 2, at::indexing::Slice(7, 11), at::indexing::Slice(5, 9)}, 1.0);
  l.index_put_({0, at::indexing::Slice(4, 7), at::indexing::Slice(2, 9), at::indexing::Slice(3, 8)},
               1.0);
  Affine a = identity_affine();
  a[0] = 1.5;
  a[5] = -0.8;
  a[10] = 2.5;
  a[3] = -10;
  Sample s;
  s.set("label", item(l, a));
  auto img = at::arange(l.numel(), at::kFloat).reshape(l.sizes()).remainder(37.0) - 11.0;
  s.set("image", item(img, a));
  return s;
}

int64_t flat_of(const std::vector<int64_t>& coords, const std::vector<int64_t>& shape) {
  int64_t f = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + coords[d];
  return f;
}

TEST(DeepgrowFunctional, ChessboardDistanceMatchesHandValues) {
  // 5x5 with a 3x3 block in the middle: centre 2, ring 1; border is not background.
  auto r = at::zeros({5, 5}, at::kFloat);
  r.index_put_({at::indexing::Slice(1, 4), at::indexing::Slice(1, 4)}, 1.0);
  const auto d = deepgrow::chessboard_distance(r);
  EXPECT_EQ(d[2][2].item<int>(), 2);
  EXPECT_EQ(d[1][1].item<int>(), 1);
  EXPECT_EQ(d[0][0].item<int>(), 0);
  // A block in the corner: the border does not count as background.
  auto c = at::zeros({4, 4}, at::kFloat);
  c.index_put_({at::indexing::Slice(0, 2), at::indexing::Slice(0, 2)}, 1.0);
  EXPECT_EQ(deepgrow::chessboard_distance(c)[0][0].item<int>(), 2);
  // No background at all: -1 everywhere (scipy), and MONAI's normalisation of the equal
  // weights exp(-1) - 1 draws uniformly; an empty region is refused.
  const auto full = at::ones({3, 3}, at::kFloat);
  EXPECT_EQ(deepgrow::chessboard_distance(full).min().item<int>(), -1);
  const auto p = deepgrow::click_probability(full, deepgrow::chessboard_distance(full));
  EXPECT_TRUE(at::allclose(p, at::full({3, 3}, 1.0 / 9, at::kDouble)));
  EXPECT_THROW(deepgrow::click_probability(at::zeros({3, 3}), at::zeros({3, 3}, at::kInt)), Error);
}

TEST(DeepgrowFunctional, ComponentsAreNumberedInRasterOrderWithDiagonalContact) {
  auto m = at::zeros({1, 6, 6}, at::kFloat);
  m.index_put_({0, 4, 0}, 1.0);  // first in raster order among row 4, but row 0 comes first
  m.index_put_({0, 0, 3}, 1.0);
  m.index_put_({0, 1, 4}, 1.0);  // diagonal to (0, 3): same component
  m.index_put_({0, 5, 5}, 1.0);
  const auto [lab, n] = deepgrow::label_components(m);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(lab[0][0][3].item<int>(), 1);
  EXPECT_EQ(lab[0][1][4].item<int>(), 1);
  EXPECT_EQ(lab[0][4][0].item<int>(), 2);
  EXPECT_EQ(lab[0][5][5].item<int>(), 3);
}

TEST(DeepgrowTwin, FindAllValidSlices) {
  const auto b = both("FindAllValidSlicesd", R"({"label": "label", "sids": "sids"})", label_case());
  EXPECT_EQ(ours_value(b.ours, "sids"), b.values.at("sids"));
  EXPECT_EQ(ours_value(b.ours, "sids"), json({2, 4, 5, 6}));
}

TEST(DeepgrowTwin, AddInitialSeedPointIn3DMatchesAndDrawsInDistribution) {
  const auto in = label_case();
  const std::string args = R"({"label": "label", "guidance": "guidance"})";
  const auto t = make_transform("AddInitialSeedPointd", args);
  std::map<int64_t, int> counts;
  const int draws = 600;
  json first;
  for (int i = 0; i < draws; ++i) {
    const auto out = test::apply(*t, in, 1000 + i);
    const auto g = json::parse(std::get<std::string>(out.get("guidance")));
    if (i == 0) first = g;
    const auto p = g[0][0];
    ++counts[flat_of({0, p[1], p[2], p[3]}, {1, 8, 12, 10})];
  }
  const auto p = first[0][0];
  const auto flat = flat_of({0, p[1], p[2], p[3]}, {1, 8, 12, 10});
  std::vector<json> values;
  const auto ref =
      run_twin("AddInitialSeedPointd", args,
               json({{"seeds", {flat}}, {"with_probability", true}}).dump(), in, &values);
  ASSERT_EQ(ref.size(), 1u);
  EXPECT_EQ(values[0].at("guidance"), first);
  // Frequencies of Barton's draws against MONAI's sampling map: every drawn voxel is a candidate,
  // and the most likely voxels (distance 3, the box's core) take their share within 4 sigma.
  const auto pmap = ref[0].at("probability_0").data.reshape(-1);
  double core = 0;
  int core_hits = 0;
  for (const auto& [f, c] : counts) EXPECT_GT(pmap[f].item<double>(), 0) << "flat " << f;
  const double pmax = pmap.max().item<double>();
  for (int64_t f = 0; f < pmap.numel(); ++f) {
    if (pmap[f].item<double>() < pmax * 0.999) continue;
    core += pmap[f].item<double>();
    core_hits += counts.count(f) ? counts[f] : 0;
  }
  const double sd = std::sqrt(draws * core * (1 - core));
  EXPECT_NEAR(core_hits, draws * core, 4 * sd + 1) << "core probability " << core;
}

TEST(DeepgrowTwin, AddInitialSeedPointOnASliceClicksEachRegion) {
  auto in = label_case();
  in.set("sids", std::vector<int64_t>{2, 4, 5, 6});
  in.set("sid", 2.0);
  const std::string args = R"({"label": "label", "guidance": "guidance", "connected_regions": 3})";
  const auto t = make_transform("AddInitialSeedPointd", args);
  const auto out = test::apply(*t, in, 7);
  const auto g = json::parse(std::get<std::string>(out.get("guidance")));
  ASSERT_EQ(g[0].size(), 3u);
  EXPECT_EQ(g[0][2], json({-1, -1, -1, -1}));  // two regions on slice 2: the third is empty
  json seeds = json::array();
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(g[0][k][1], 2);
    seeds.push_back(flat_of({0, g[0][k][2], g[0][k][3]}, {1, 12, 10}));
  }
  std::vector<json> values;
  run_twin("AddInitialSeedPointd", args, json({{"seeds", seeds}}).dump(), in, &values);
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0].at("guidance"), g);
}

TEST(DeepgrowTwin, AddGuidanceSignal) {
  auto in = label_case();
  in.set("guidance",
         std::string("[[[3, 5, 4, 4], [1, 2, 2, 2]], [[2, 6, 8, 6], [-1, -1, -1, -1]]]"));
  for (const auto* a : {R"({"image": "image", "guidance": "guidance"})",
                        R"({"image": "image", "guidance": "guidance", "sigma": 1.5})"}) {
    SCOPED_TRACE(a);
    const auto b = both("AddGuidanceSignald", a, in);
    expect_same(b.ours.image("image"), b.ref[0].at("image"), 1e-5);
  }
}

TEST(DeepgrowTwin, FindDiscrepancyRegions) {
  auto in = label_case();
  auto pred = in.image("label").data.clone();
  pred.index_put_({0, 5}, 0.0);
  pred.index_put_({0, 0, at::indexing::Slice(0, 3)}, 1.0);
  in.set("pred", item(pred, in.image("label").affine));
  const auto b = both("FindDiscrepancyRegionsd", R"({"label": "label", "pred": "pred"})", in);
  expect_same(b.ours.image("discrepancy"), b.ref[0].at("discrepancy"), 0);
}

TEST(DeepgrowTwin, AddRandomGuidanceClicksTheLargerDiscrepancy) {
  auto in = label_case();
  auto pred = in.image("label").data.clone();
  pred.index_put_({0, 5}, 0.0);  // misses a slice of the box: a positive click is due
  in.set("pred", item(pred, in.image("label").affine));
  const auto find =
      make_transform("FindDiscrepancyRegionsd", R"({"label": "label", "pred": "pred"})");
  in = test::apply(*find, in);
  in.set("guidance", std::string("[[[3, 5, 4, 4]], [[-1, -1, -1, -1]]]"));
  in.set("probability", 1.0);
  in.erase("pred");
  const std::string args = R"({"guidance": "guidance", "discrepancy": "discrepancy",
                               "probability": "probability"})";
  const auto t = make_transform("AddRandomGuidanced", args);
  const auto out = test::apply(*t, in, 3);
  const auto g = json::parse(std::get<std::string>(out.get("guidance")));
  ASSERT_EQ(g[0].size(), 2u);
  const auto p = g[0][1];
  EXPECT_EQ(p[1], 5);
  EXPECT_EQ(g[1][1], json({-1, -1, -1, -1}));
  std::vector<json> values;
  run_twin("AddRandomGuidanced", args,
           json({{"will_interact", true}, {"seed", flat_of({0, p[1], p[2], p[3]}, {1, 8, 12, 10})}})
               .dump(),
           in, &values);
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0].at("guidance"), g);
  // Probability 0: never a click, the guidance is unchanged.
  in.set("probability", 0.0);
  const auto none = test::apply(*t, in, 3);
  EXPECT_EQ(json::parse(std::get<std::string>(none.get("guidance"))).at(0).size(), 1u);
}

TEST(DeepgrowTwin, SpatialCropForegroundBothBranches) {
  for (const auto* a :
       {R"({"keys": ["image", "label"], "source_key": "label", "spatial_size": [8, 10, 9]})",
        R"({"keys": ["image", "label"], "source_key": "label", "spatial_size": [4, 4, 4],
            "margin": 1})"}) {
    SCOPED_TRACE(a);
    const auto b = both("SpatialCropForegroundd", a, label_case());
    for (const auto* k : {"image", "label"}) expect_same(b.ours.image(k), b.ref[0].at(k), 0);
    for (const auto* k : {"foreground_start_coord", "foreground_end_coord",
                          "foreground_original_shape", "foreground_cropped_shape"})
      EXPECT_EQ(ours_value(b.ours, k), b.values.at(k)) << k;
  }
}

TEST(DeepgrowTwin, SpatialCropGuidanceBothBranches) {
  auto in = label_case();
  in.set("guidance", std::string("[[[4, 5, 5], [5, 6, 4]], [[6, 3, 7]]]"));
  for (const auto* a : {R"({"keys": ["image", "label"], "guidance": "guidance",
                           "spatial_size": [6, 9, 9], "margin": 2})",
                        R"({"keys": ["image", "label"], "guidance": "guidance",
                           "spatial_size": [4, 4, 4], "margin": 3})"}) {
    SCOPED_TRACE(a);
    const auto b = both("SpatialCropGuidanced", a, in);
    for (const auto* k : {"image", "label"}) expect_same(b.ours.image(k), b.ref[0].at(k), 0);
    for (const auto* k : {"guidance", "foreground_start_coord", "foreground_end_coord",
                          "foreground_original_shape", "foreground_cropped_shape"})
      EXPECT_EQ(ours_value(b.ours, k), b.values.at(k)) << k;
  }
}

TEST(Deepgrow, SpatialCropGuidanceOnBartonsLayoutCentresEveryAxis) {
  // MONAI's arrays are depth first and its small-box crop starts axis 0 at 0; Barton's [C, I, J,
  // K] images say depth_first: false and get the crop centred on the clicks in every axis.
  auto in = label_case();
  in.set("guidance", std::string("[[[6, 9, 7]], []]"));
  const auto t = make_transform("SpatialCropGuidanced", R"({"keys": "image", "guidance": "guidance",
      "spatial_size": [4, 4, 4], "margin": 1, "depth_first": false})");
  const auto out = test::apply(*t, in);
  EXPECT_EQ(ours_value(out, "foreground_start_coord"), json({4, 7, 5}));
  EXPECT_EQ(ours_value(out, "guidance"), json({{{2, 2, 2}}, json::array()}));
  const auto monai = make_transform("SpatialCropGuidanced", R"({"keys": "image",
      "guidance": "guidance", "spatial_size": [4, 4, 4], "margin": 1})");
  EXPECT_EQ(ours_value(test::apply(*monai, in), "foreground_start_coord"), json({0, 7, 5}));
}

TEST(DeepgrowTwin, AddGuidanceFromPointsIn3DAnd2D) {
  auto in = label_case();
  in.set("spatial_shape", std::vector<int64_t>{24, 20, 16});  // as loaded (H, W, D)
  in.set("foreground", std::string("[[10, 9, 7], [3, 4, 7]]"));
  in.set("background", std::string("[[20, 2, 9]]"));
  for (const auto* a : {R"({"ref_image": "image", "spatial_dims": 3})",
                        R"({"ref_image": "image", "spatial_dims": 2})",
                        R"({"ref_image": "image", "dimensions": 3, "depth_first": false})"}) {
    SCOPED_TRACE(a);
    const auto b = both("AddGuidanceFromPointsd", a, in);
    EXPECT_EQ(ours_value(b.ours, "guidance"), b.values.at("guidance"));
  }
}

TEST(DeepgrowTwin, Fetch2DSlicedTakesTheClickedSliceOnEachAxis) {
  auto in = label_case();
  in.set("guidance", std::string("[[[3, 4]], [], 5]"));
  for (int axis = 0; axis < 3; ++axis) {
    SCOPED_TRACE(axis);
    const auto args = fmt::format(R"({{"keys": ["image", "label"], "axis": {}}})", axis);
    const auto b = both("Fetch2DSliced", args, in);
    // MONAI's slice keeps the volume's affine unchanged; Barton's is the slice's own (below).
    for (const auto* k : {"image", "label"}) expect_same(b.ours.image(k), b.ref[0].at(k), 0, 1e300);
    EXPECT_EQ(ours_value(b.ours, "slice_idx"), b.values.at("slice_idx"));
    // The slice keeps its place in space: voxel (a, b) of the slice is the volume's voxel with
    // the slice index put back on `axis`.
    const auto& vol = in.image("image").affine;
    const auto& sl = b.ours.image("image").affine;
    for (int r = 0; r < 3; ++r) {
      std::array<double, 3> v{};
      v[static_cast<std::size_t>(axis)] = 5;
      int other = 0;
      for (int c = 0; c < 3; ++c)
        if (c != axis) v[static_cast<std::size_t>(c)] = other++ == 0 ? 2.0 : 3.0;
      const double world =
          vol[r * 4] * v[0] + vol[r * 4 + 1] * v[1] + vol[r * 4 + 2] * v[2] + vol[r * 4 + 3];
      EXPECT_DOUBLE_EQ(sl[r * 4] * 2.0 + sl[r * 4 + 1] * 3.0 + sl[r * 4 + 3], world) << r;
    }
  }
}

TEST(Deepgrow, Fetch2DSlicedRefusesGuidanceWithoutASliceOrOutside) {
  auto in = label_case();
  const auto t = make_transform("Fetch2DSliced", R"({"keys": "image", "axis": 2})");
  in.set("guidance", std::string("[[[3, 4]], []]"));
  EXPECT_THROW(test::apply(*t, in), Error);
  in.set("guidance", std::string("[[[3, 4]], [], 10]"));  // axis 2 has 10 slices: 0..9
  try {
    test::apply(*t, in);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("slice 10 lies outside 'image'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_transform("Fetch2DSliced", R"({"keys": "image", "axis": 3})"), ConfigError);
}

TEST(Deepgrow, AddGuidanceFromPointsIn2DDropsTheSliceAxis) {
  // MONAI drops coordinate 0 of each 2-D click (its only slice axis); Barton's volumes keep depth
  // last and drop the slice axis given, here 2.
  auto in = label_case();
  in.set("spatial_shape", std::vector<int64_t>{8, 12, 10});
  in.set("foreground", std::string("[[6, 9, 7], [2, 3, 7], [1, 1, 4]]"));
  in.set("background", std::string("[[5, 2, 7]]"));
  const auto t = make_transform("AddGuidanceFromPointsd", R"({"ref_image": "image",
      "spatial_dims": 2, "axis": 2, "depth_first": false})");
  const auto out = test::apply(*t, in);
  EXPECT_EQ(ours_value(out, "guidance"), json({{{1, 1}}, json::array(), 4}));
  in.set("slice", 7.0);
  EXPECT_EQ(ours_value(test::apply(*t, in), "guidance"), json({{{6, 9}, {2, 3}}, {{5, 2}}, 7}));
}

TEST(DeepgrowTwin, ResizeGuidance) {
  auto in = label_case();
  in.set("guidance", std::string("[[[4, 5, 5], [7, 11, 9]], []]"));
  in.set("foreground_cropped_shape", std::vector<int64_t>{1, 5, 7, 13});
  const auto b = both("ResizeGuidanced", R"({"guidance": "guidance", "ref_image": "image"})", in);
  EXPECT_EQ(ours_value(b.ours, "guidance"), b.values.at("guidance"));
}

TEST(DeepgrowTwin, RestoreLabelPastesTheCropBack) {
  // A prediction on a resized crop goes back to the crop's size, into the box, and out to the
  // image as loaded (depth first).
  auto pred = at::zeros({1, 6, 6, 6}, at::kFloat);
  pred.index_put_(
      {0, at::indexing::Slice(1, 5), at::indexing::Slice(2, 4), at::indexing::Slice(0, 3)}, 1.0);
  Sample in;
  in.set("pred", item(pred));
  in.set("foreground_cropped_shape", std::vector<int64_t>{1, 4, 5, 7});
  in.set("foreground_original_shape", std::vector<int64_t>{1, 8, 12, 10});
  in.set("foreground_start_coord", std::vector<int64_t>{2, 3, 3});
  in.set("foreground_end_coord", std::vector<int64_t>{6, 8, 10});
  in.set("spatial_shape", std::vector<int64_t>{24, 20, 16});
  for (const auto* a : {R"({"keys": "pred", "ref_image": "image"})",
                        R"({"keys": "pred", "ref_image": "image", "mode": "bilinear",
                           "align_corners": false})"}) {
    SCOPED_TRACE(a);
    const auto b = both("RestoreLabeld", a, in);
    expect_same(b.ours.image("pred"), b.ref[0].at("pred"), 1e-5);
  }
}

TEST(DeepgrowTwin, BadInputsNameWhatIsWrong) {
  auto in = label_case();
  const auto t = make_transform("AddGuidanceSignald", R"({"image": "image", "guidance": "g"})");
  try {
    test::apply(*t, in);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no guidance 'g'"), std::string::npos) << e.what();
  }
  in.set("g", std::string("[[1, 2"));
  EXPECT_THROW(test::apply(*t, in), Error);
  auto empty = label_case();
  empty.image("label").data.zero_();
  const auto seed = make_transform("AddInitialSeedPointd", "{}");
  EXPECT_THROW(test::apply(*seed, empty), Error);
}

/// A [1, 12, 14, 10] diamond (|i - 6| + |j - 7| + |k - 5| <= 4): one voxel at each extreme.
Sample diamond_case() {
  auto l = at::zeros({1, 12, 14, 10}, at::kFloat);
  for (int64_t i = 0; i < 12; ++i)
    for (int64_t j = 0; j < 14; ++j)
      for (int64_t k = 0; k < 10; ++k)
        if (std::abs(i - 6) + std::abs(j - 7) + std::abs(k - 5) <= 4)
          l.index_put_({0, i, j, k}, 1.0);
  Affine a = identity_affine();
  a[0] = 0.9;
  a[5] = 1.2;
  a[10] = 2.0;
  Sample s;
  s.set("label", item(l, a));
  auto img = at::arange(l.numel(), at::kFloat).reshape(l.sizes()).remainder(23.0) - 5.0;
  s.set("image", item(img, a));
  return s;
}

TEST(DeepgrowTwin, AddExtremePointsChannelOnUniqueExtremes) {
  const auto in = diamond_case();
  for (const auto* a : {R"({"keys": "image", "label_key": "label"})",
                        R"({"keys": "image", "label_key": "label", "sigma": 1.5,
                            "rescale_min": 0, "rescale_max": 1})"}) {
    SCOPED_TRACE(a);
    const auto b = both("AddExtremePointsChanneld", a, in);
    expect_same(b.ours.image("image"), b.ref[0].at("image"), 1e-5);
    EXPECT_EQ(json::parse(std::get<std::string>(b.ours.get("extreme_points"))),
              json::parse(b.values["extreme_points"].dump()));
  }
  // The hand values: axis minimum and maximum of the diamond.
  const auto t =
      make_transform("AddExtremePointsChanneld", R"({"keys": "image", "label_key": "label"})");
  const auto out = test::apply(*t, in);
  EXPECT_EQ(json::parse(std::get<std::string>(out.get("extreme_points"))),
            json::parse("[[2,7,5],[10,7,5],[6,3,5],[6,11,5],[6,7,1],[6,7,9]]"));
}

TEST(DeepgrowTwin, AddExtremePointsChannelPicksAmongTiesAsMonai) {
  // Boxes: many voxels share each extreme. Barton's pick (its own generator) is told to the twin
  // as the position among the ties in numpy's where order; the channel must then be the twin's.
  const auto in = label_case();
  const auto& label = in.image("label").data[0];
  const auto fg = at::nonzero(label).contiguous();
  const auto args = R"({"keys": "image", "label_key": "label", "sigma": 2})";
  const auto t = make_transform("AddExtremePointsChanneld", args);
  for (uint64_t seed : {1u, 7u, 42u}) {
    SCOPED_TRACE(seed);
    const auto ours = test::apply(*t, in, seed);
    const auto points = json::parse(std::get<std::string>(ours.get("extreme_points")));
    ASSERT_EQ(points.size(), 6u);
    json choices = json::array();
    for (std::size_t n = 0; n < 6; ++n) {
      const int64_t axis = static_cast<int64_t>(n / 2);
      const auto col = fg.select(1, axis);
      const int64_t target = (n % 2 ? col.max() : col.min()).item<int64_t>();
      EXPECT_EQ(points[n][axis].get<int64_t>(), target);
      int64_t pos = 0, found = -1;
      for (int64_t r = 0; r < fg.size(0); ++r) {
        if (fg[r][axis].item<int64_t>() != target) continue;
        bool same = true;
        for (int64_t d = 0; d < 3; ++d) same = same && fg[r][d].item<int64_t>() == points[n][d];
        if (same) found = pos;
        ++pos;
      }
      ASSERT_GE(found, 0) << "point " << points[n].dump() << " is not a foreground voxel";
      choices.push_back(found);
    }
    std::vector<json> values;
    const auto ref = run_twin("AddExtremePointsChanneld", args, json({{"choices", choices}}).dump(),
                              in, &values);
    expect_same(ours.image("image"), ref.at(0).at("image"), 1e-5);
  }
  // A perturbation only adds, by less than 2 pert (MONAI's 2 * pert * rand()).
  const auto tp = make_transform("AddExtremePointsChanneld",
                                 R"({"keys": "image", "label_key": "label", "pert": 1.5})");
  const auto moved =
      json::parse(std::get<std::string>(test::apply(*tp, in, 3).get("extreme_points")));
  const auto exact =
      json::parse(std::get<std::string>(test::apply(*t, in, 3).get("extreme_points")));
  for (std::size_t n = 0; n < 6; ++n) {
    const int64_t axis = static_cast<int64_t>(n / 2);
    EXPECT_GE(moved[n][axis].get<int64_t>(), exact[n][axis].get<int64_t>());
    EXPECT_LE(moved[n][axis].get<int64_t>(), exact[n][axis].get<int64_t>() + 3);
  }
}

TEST(DeepgrowTwin, AddExtremePointsChannelFromClickedPoints) {
  auto in = diamond_case();
  in.set("guidance",
         std::string("[[[2, 7, 5], [10, 7, 5], [6, 3, 5], [6, 11, 5], [6, 7, 1], [6, 7, 9]], []]"));
  const auto a = R"({"keys": "image", "points_key": "guidance"})";
  const auto b = both("AddExtremePointsChanneld", a, in);
  expect_same(b.ours.image("image"), b.ref[0].at("image"), 1e-5);
  // The same points from the label give the same channel.
  const auto from_label = test::apply(
      *make_transform("AddExtremePointsChanneld", R"({"keys": "image", "label_key": "label"})"),
      in);
  EXPECT_TRUE(at::allclose(from_label.image("image").data, b.ours.image("image").data));
}

TEST(DeepgrowTwin, AddExtremePointsChannelRefusesBadInput) {
  EXPECT_THROW(make_transform("AddExtremePointsChanneld", R"({"keys": "image"})"), Error);
  EXPECT_THROW(make_transform("AddExtremePointsChanneld",
                              R"({"keys": "image", "label_key": "label", "sigma": 0})"),
               Error);
  auto empty = diamond_case();
  empty.image("label").data.zero_();
  const auto t =
      make_transform("AddExtremePointsChanneld", R"({"keys": "image", "label_key": "label"})");
  try {
    test::apply(*t, empty);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no foreground"), std::string::npos) << e.what();
  }
  auto two = diamond_case();
  two.set("label", item(at::zeros({2, 12, 14, 10}), identity_affine()));
  EXPECT_THROW(test::apply(*t, two), Error);
}

}  // namespace
}  // namespace barton::transforms
