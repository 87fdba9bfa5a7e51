#include "metrics/metrics.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace barton::metrics {
namespace {

at::Tensor cube(std::vector<int64_t> shape, std::vector<int64_t> lo, std::vector<int64_t> hi) {
  auto m = at::zeros(shape, at::kBool);
  m.slice(0, lo[0], hi[0]).slice(1, lo[1], hi[1]).slice(2, lo[2], hi[2]).fill_(true);
  return m;
}

// [1, 2, *S] one-hot from a foreground mask.
at::Tensor onehot(const at::Tensor& fg) {
  return at::stack({fg.logical_not(), fg}).unsqueeze(0);
}

TEST(Metrics, EuclideanDistanceTransformMatchesBruteForceWithAnisotropicSpacing) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto sites = at::rand({9, 7, 5}, g) > 0.93;
  const std::vector<double> sp = {0.7, 1.3, 2.5};
  const auto d = distance_to(sites, sp);
  const auto idx = sites.nonzero();
  for (int64_t i = 0; i < 9; ++i)
    for (int64_t j = 0; j < 7; ++j)
      for (int64_t k = 0; k < 5; ++k) {
        double best = INFINITY;
        for (int64_t s = 0; s < idx.size(0); ++s) {
          const double di = (idx[s][0].item<int64_t>() - i) * sp[0],
                       dj = (idx[s][1].item<int64_t>() - j) * sp[1],
                       dk = (idx[s][2].item<int64_t>() - k) * sp[2];
          best = std::min(best, std::sqrt(di * di + dj * dj + dk * dk));
        }
        ASSERT_NEAR(d[i][j][k].item<double>(), best, 1e-9) << i << "," << j << "," << k;
      }
}

TEST(Metrics, ShiftedCubesGiveKnownValues) {
  const auto a = cube({20, 20, 20}, {4, 4, 4}, {12, 12, 12});  // 8^3
  const auto b = cube({20, 20, 20}, {6, 4, 4}, {14, 12, 12});  // shifted by 2 voxels along i
  const auto p = onehot(a), y = onehot(b);
  EXPECT_NEAR(dice(p, y, false)[0][0].item<double>(), 2.0 * 6 * 64 / (512 + 512), 1e-12);
  EXPECT_NEAR(hausdorff(p, y)[0][0].item<double>(), 2.0, 1e-12);
  EXPECT_NEAR(hausdorff(p, y, false, std::nullopt, false, {1.5, 1, 1})[0][0].item<double>(), 3.0,
              1e-12);
  EXPECT_NEAR(surface_dice(p, y, {2.0})[0][0].item<double>(), 1.0, 1e-12);
  EXPECT_LT(surface_dice(p, y, {1.0})[0][0].item<double>(), 1.0);
  const auto counts = confusion_counts(p, y, false);
  EXPECT_EQ(counts[0][0][0].item<double>(), 6 * 64);  // tp
  EXPECT_EQ(counts[0][0][1].item<double>(), 2 * 64);  // fp
  EXPECT_EQ(counts[0][0][3].item<double>(), 2 * 64);  // fn
  EXPECT_NEAR(confusion_metric(counts, "sensitivity")[0][0].item<double>(), 0.75, 1e-12);
}

TEST(Metrics, EmptyMasksFollowMonai) {
  const auto empty = at::zeros({10, 10, 10}, at::kBool);
  const auto full = cube({10, 10, 10}, {2, 2, 2}, {5, 5, 5});
  EXPECT_TRUE(std::isnan(dice(onehot(empty), onehot(empty), false, true)[0][0].item<double>()));
  EXPECT_EQ(dice(onehot(empty), onehot(empty), false, false)[0][0].item<double>(), 1.0);
  EXPECT_EQ(dice(onehot(full), onehot(empty), false, false)[0][0].item<double>(), 0.0);
  EXPECT_TRUE(std::isinf(hausdorff(onehot(empty), onehot(full))[0][0].item<double>()));
  EXPECT_TRUE(std::isnan(hausdorff(onehot(empty), onehot(empty))[0][0].item<double>()));
  EXPECT_TRUE(std::isnan(surface_dice(onehot(empty), onehot(empty), {1.0})[0][0].item<double>()));
  EXPECT_EQ(surface_dice(onehot(full), onehot(empty), {1.0})[0][0].item<double>(), 0.0);
  // Reductions ignore NaN.
  auto f = at::tensor({1.0, NAN, 3.0}, at::kDouble).view({3, 1});
  EXPECT_DOUBLE_EQ(reduce(f, "mean").item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(reduce(at::full({2, 1}, NAN, at::kDouble), "mean").item<double>(),
                   0.0);  // as MONAI
}

TEST(Metrics, CommandWritesOneRowPerCase) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(
      test::run_command(
          test::barton_bin() + " data synth " + tmp.file("d") + " --cases 2 --size 40,40,12", &out),
      0)
      << out;
  ASSERT_EQ(test::run_command(test::barton_bin() + " metrics --pred " + tmp.file("d/labelsTr") +
                                  " --label " + tmp.file("d/labelsTr") +
                                  " --metrics dice,hd95,asd,nsd:1 --csv " + tmp.file("m.csv"),
                              &out),
            0)
      << out;
  std::string csv;
  test::run_command("cat " + tmp.file("m.csv"), &csv, false);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "case,dice,hd95,asd,nsd:1");
  EXPECT_NE(csv.find("case_0,1,0,0,1\n"), std::string::npos) << csv;
  EXPECT_EQ(test::run_command(test::barton_bin() + " metrics --pred " +
                                  tmp.file("d/labelsTr/case_0.nii.gz") + " --label " +
                                  tmp.file("d/imagesTr/case_0.nii.gz") + " --metrics dice,volume",
                              &out),
            1);
  EXPECT_NE(out.find("unknown metric 'volume'"), std::string::npos) << out;
  // Two datalist columns.
  test::write_text(
      tmp.file("d/pairs.json"),
      R"({"validation": [{"pred": "labelsTr/case_0.nii.gz", "label": "labelsTr/case_1.nii.gz"}]})");
  ASSERT_EQ(test::run_command(test::barton_bin() + " metrics --datalist " +
                                  tmp.file("d/pairs.json") + " --metrics dice",
                              &out),
            0)
      << out;
  EXPECT_NE(out.find("case_1"), std::string::npos) << out;
  test::write_text(
      tmp.file("d/bad.json"),
      R"({"validation": [{"prediction": "labelsTr/case_0.nii.gz", "label": "labelsTr/case_1.nii.gz"}]})");
  EXPECT_EQ(
      test::run_command(test::barton_bin() + " metrics --datalist " + tmp.file("d/bad.json"), &out),
      2);
  EXPECT_NE(out.find("bad.json:/validation/0: case has no field 'pred'"), std::string::npos) << out;
}

}  // namespace
}  // namespace barton::metrics
