// DeepEdit's transforms against their Python twins of MONAI 1.4's definitions
// (tests/golden/monai_twin/deepedit.py). Label names are chosen in alphabetical order: the twin's
// request passes through an unordered JSON object, and the order of the names is the order of the
// guidance channels.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "transforms/deepedit/functional.h"
#include "transforms/twin.h"

namespace barton::transforms {
namespace {

using nlohmann::json;
using test::expect_same;
using test::item;
using test::make_transform;
using test::run_twin;

const char* kNames = R"({"background": 0, "liver": 3, "spleen": 6, "zkidney": 9})";

/// A [1, 12, 10, 6] label (H, W, D): spleen (6) a box in slices 1-3, liver (3) two boxes in
/// slices 2-4, no kidney (9); an image beside it.
Sample raw_case() {
  using at::indexing::Slice;
  auto l = at::zeros({1, 12, 10, 6}, at::kFloat);
  l.index_put_({0, Slice(2, 6), Slice(1, 5), Slice(1, 4)}, 6.0);
  l.index_put_({0, Slice(6, 11), Slice(1, 5), Slice(2, 5)}, 3.0);
  l.index_put_({0, Slice(7, 10), Slice(7, 9), Slice(3, 5)}, 3.0);
  Affine a = identity_affine();
  a[0] = 0.8;
  a[5] = 0.8;
  a[10] = 2.5;
  Sample s;
  s.set("label", item(l, a));
  auto img = at::arange(l.numel(), at::kFloat).reshape(l.sizes()).remainder(29.0) - 7.0;
  s.set("image", item(img, a));
  return s;
}

/// The twin's output images, the sample's values passed along.
std::vector<test::TwinSample> twin(const std::string& name,
                                   const std::string& args,
                                   const Sample& in,
                                   const std::string& params = "{}") {
  std::vector<json> values;
  return run_twin(name, args, params, in, &values);
}

json value(const Sample& s, const std::string& key) {
  return test::value_json(s.get(key));
}

Sample normalized() {
  const auto t = make_transform("NormalizeLabelsInDatasetd",
                                std::string(R"({"keys": "label", "label_names": )") + kNames + "}");
  return test::apply(*t, raw_case());
}

TEST(DeepEditTwin, NormalizeLabelsInDataset) {
  const auto args = std::string(R"({"keys": "label", "label_names": )") + kNames + "}";
  const auto ours = test::apply(*make_transform("NormalizeLabelsInDatasetd", args), raw_case());
  std::vector<json> values;
  const auto ref = run_twin("NormalizeLabelsInDatasetd", args, "{}", raw_case(), &values);
  expect_same(ours.image("label"), ref.at(0).at("label"), 0);
  EXPECT_EQ(value(ours, "label_names"), values.at(0).at("label_names"));
  // MONAI's enumerate(start=1) counts "background" first: liver 2, spleen 3, zkidney 4.
  EXPECT_EQ(value(ours, "label_names"),
            json::parse(R"({"background": 0, "liver": 2, "spleen": 3, "zkidney": 4})"));
}

TEST(DeepEditTwin, FindAllValidSlicesMissingLabels) {
  const auto in = normalized();
  const auto args = R"({"keys": "label"})";
  const auto ours = test::apply(*make_transform("FindAllValidSlicesMissingLabelsd", args), in);
  std::vector<json> values;
  run_twin("FindAllValidSlicesMissingLabelsd", args, "{}", in, &values);
  EXPECT_EQ(value(ours, "sids"), values.at(0).at("sids"));
  EXPECT_EQ(value(ours, "sids")["spleen"], json::parse("[1, 2, 3]"));
  EXPECT_EQ(value(ours, "sids")["zkidney"], json(std::vector<int>(10, -1)));
}

TEST(DeepEditTwin, AddInitialSeedPointMissingLabelsClicksEachRegionOfASlice) {
  auto in = test::apply(*make_transform("FindAllValidSlicesMissingLabelsd", R"({"keys": "label"})"),
                        normalized());
  const auto args = R"({"keys": "label", "connected_regions": 3})";
  const auto t = make_transform("AddInitialSeedPointMissingLabelsd", args);
  for (uint64_t seed : {0u, 3u, 11u}) {
    SCOPED_TRACE(seed);
    const auto ours = test::apply(*t, in, seed);
    const auto g = value(ours, "guidance");
    // Tell the twin the slice and the flat index ([1, H, W]) of every click Barton drew.
    json sids = json::object(), seeds = json::object();
    for (const auto& [name, points] : g.items()) {
      int64_t sid = -1;
      json flats = json::array();
      for (const auto& p : points) {
        if (p[3].get<int64_t>() < 0) continue;
        sid = p[3].get<int64_t>();
        flats.push_back(p[1].get<int64_t>() * 10 + p[2].get<int64_t>());
      }
      sids[name] = sid;
      seeds[name] = flats;
    }
    EXPECT_EQ(g["zkidney"], json::parse("[[-1, -1, -1, -1]]")) << "no kidney anywhere";
    EXPECT_EQ(g["liver"].size(), 3u) << "connected_regions entries";
    std::vector<json> values;
    run_twin("AddInitialSeedPointMissingLabelsd", args,
             json({{"sids", sids}, {"seeds", seeds}}).dump(), in, &values);
    EXPECT_EQ(g, values.at(0).at("guidance"));
  }
}

TEST(DeepEditTwin, AddGuidanceSignalDeepEdit) {
  auto in = normalized();
  in.set("guidance",
         std::string(R"({"background": [[0, 1, 1, 5]], "liver": [[2, 8, 3, 3], [1, 8, 7, 4]],
                                     "spleen": [[-1, -1, -1, -1]], "zkidney": []})"));
  for (const auto* a : {R"({"keys": "image", "guidance": "guidance"})",
                        R"({"keys": "image", "guidance": "guidance", "sigma": 1.5})"}) {
    SCOPED_TRACE(a);
    const auto ours = test::apply(*make_transform("AddGuidanceSignalDeepEditd", a), in);
    const auto ref = twin("AddGuidanceSignalDeepEditd", a, in);
    ASSERT_EQ(ours.image("image").data.size(0), 5);
    expect_same(ours.image("image"), ref.at(0).at("image"), 1e-5);
  }
}

TEST(DeepEditTwin, DiscardAddGuidanceAppendsOrZeroes) {
  const auto in = normalized();
  const auto a =
      std::string(R"({"keys": "image", "label_names": )") + kNames + R"(, "probability": 1.0})";
  const auto t = make_transform("DiscardAddGuidanced", a);
  const auto once = test::apply(*t, in);
  expect_same(once.image("image"), twin("DiscardAddGuidanced", a, in).at(0).at("image"), 0);
  ASSERT_EQ(once.image("image").data.size(0), 5);
  auto signalled = once;
  signalled.image("image").data = signalled.image("image").data + 1.0;
  const auto twice = test::apply(*t, signalled);
  expect_same(twice.image("image"), twin("DiscardAddGuidanced", a, signalled).at(0).at("image"), 0);
  EXPECT_EQ(twice.image("image").data.slice(0, 1).abs().sum().item<double>(), 0.0);
}

/// A prediction that misses part of the spleen and calls part of the liver spleen.
Sample with_prediction() {
  using at::indexing::Slice;
  auto in = normalized();
  auto pred = in.image("label").data.clone();
  pred.index_put_({0, Slice(2, 4), Slice(1, 5), Slice(1, 4)}, 0.0);   // spleen missed: 24 voxels
  pred.index_put_({0, Slice(6, 11), Slice(1, 5), Slice(2, 5)}, 3.0);  // liver box called spleen: 60
  pred.index_put_({0, Slice(0, 6), Slice(5, 10), Slice(0, 3)}, 3.0);  // background called spleen
  in.set("pred", item(pred, in.image("label").affine));
  return in;
}

TEST(DeepEditTwin, FindDiscrepancyRegionsDeepEdit) {
  const auto in = with_prediction();
  const auto a = R"({"keys": "label", "pred": "pred", "discrepancy": "discrepancy"})";
  const auto ours = test::apply(*make_transform("FindDiscrepancyRegionsDeepEditd", a), in);
  const auto ref = twin("FindDiscrepancyRegionsDeepEditd", a, in);
  ASSERT_EQ(ours.image("discrepancy").data.size(0), 8);
  expect_same(ours.image("discrepancy"), ref.at(0).at("discrepancy"), 0);
}

TEST(DeepEditTwin, AddRandomGuidanceDeepEditWithScriptedDraws) {
  auto in = test::apply(
      *make_transform("FindDiscrepancyRegionsDeepEditd", R"({"keys": "label", "pred": "pred"})"),
      with_prediction());
  in.set("guidance", std::string(R"({"background": [[-1, -1, -1, -1]], "liver": [[1, 8, 3, 3]],
                                     "spleen": [[1, 3, 2, 2]], "zkidney": [[-1, -1, -1, -1]]})"));
  in.set("probability", 1.0);
  const auto names = deepedit::dict_value(in, "label_names", "test");
  const auto guidance = deepedit::dict_value(in, "guidance", "test");
  for (const auto& [budget, picks] : std::vector<std::pair<int, std::vector<std::size_t>>>{
           {10, {2, 2, 0, 1, 3}}, {1, {1}}, {3, {3, 0, 2}}}) {
    SCOPED_TRACE(budget);
    std::size_t next = 0;
    deepedit::Draws d;
    d.interact = [](double) { return true; };
    d.flat = [](const at::Tensor& p) { return p.flatten().argmax().item<int64_t>(); };
    d.num_clicks = [b = budget] { return static_cast<int64_t>(b); };
    d.pick = [&](std::size_t) { return picks.at(next++); };
    const auto ours = deepedit::add_random_guidance(guidance, in.image("discrepancy").data, names,
                                                    in.image("label").data, 1.0, d);
    std::vector<json> values;
    run_twin(
        "AddRandomGuidanceDeepEditd", R"({"keys": "NA"})",
        json(
            {{"will_interact", true}, {"flat", "argmax"}, {"num_clicks", budget}, {"picks", picks}})
            .dump(),
        in, &values);
    EXPECT_EQ(json::parse(ours.dump()), values.at(0).at("guidance"));
    if (budget == 10) {
      // The missed spleen got a positive click; the liver called spleen a positive click for liver
      // and one from spleen's overshoot; the background called spleen a positive click for
      // background and one from spleen's overshoot.
      EXPECT_EQ(ours["spleen"].size(), 2u) << ours.dump();
      EXPECT_EQ(ours["liver"].size(), 3u) << ours.dump();
      EXPECT_EQ(ours["background"].size(), 2u) << ours.dump();
    }
  }
  // Through the transform with Barton's own draws: every click lies where it may.
  const auto t = make_transform("AddRandomGuidanceDeepEditd", R"({"keys": "NA"})");
  const auto out = value(test::apply(*t, in, 5), "guidance");
  for (const auto& p : out["spleen"])
    EXPECT_TRUE(p[0].get<int>() == 1 ||
                in.image("discrepancy")
                        .data[4][p[1].get<int64_t>()][p[2].get<int64_t>()][p[3].get<int64_t>()]
                        .item<float>() > 0)
        << p.dump();
}

TEST(DeepEditTwin, BadInputsNameWhatIsWrong) {
  EXPECT_THROW(make_transform("NormalizeLabelsInDatasetd", R"({"keys": "label"})"), Error);
  EXPECT_THROW(make_transform("NormalizeLabelsInDatasetd",
                              R"({"keys": "label", "label_names": {"a": "x"}})"),
               Error);
  const auto t = make_transform("FindAllValidSlicesMissingLabelsd", R"({"keys": "label"})");
  try {
    test::apply(*t, raw_case());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label_names"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace barton::transforms
