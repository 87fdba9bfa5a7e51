#include "data/synth.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "data/datalist.h"
#include "io/image.h"
#include "support/test_support.h"

namespace barton::data {
namespace {

TEST(Synth, CtLikeIntensitiesLabelAndGeometry) {
  SynthOptions o;
  o.size = {64, 64, 24};
  o.seed = 3;
  const auto c = synthesize_case(o);
  EXPECT_EQ(c.image.data.sizes(), (at::IntArrayRef{1, 64, 64, 24}));
  EXPECT_EQ(c.image.data.scalar_type(), at::kShort);
  EXPECT_EQ(c.label.data.scalar_type(), at::kByte);
  EXPECT_EQ(io::orientation_code(c.image.affine), "LPS");  // non-RAS on purpose
  const auto sp = io::voxel_spacing(c.image.affine);
  EXPECT_DOUBLE_EQ(sp[0], 1.5);
  EXPECT_DOUBLE_EQ(sp[2], 4.0);
  const auto hu = c.image.data.to(at::kFloat);
  EXPECT_LE(hu.min().item<float>(), -990);  // air
  EXPECT_GE(hu.max().item<float>(), 500);   // bone
  const auto organ = c.label.data.to(at::kBool);
  const int64_t n_organ = organ.sum().item<int64_t>();
  EXPECT_GT(n_organ, 200);
  const double organ_mean = hu.masked_select(organ).mean().item<double>();
  EXPECT_NEAR(organ_mean, 110, 20);  // enhanced spleen-like HU
  // The distractor has organ-like HU but no label: plenty of voxels in 80..140 HU are unlabelled.
  const auto lookalike = (hu > 80) & (hu < 140) & organ.logical_not();
  EXPECT_GT(lookalike.sum().item<int64_t>(), n_organ);
}

TEST(Synth, DeterministicPerSeedAndDifferentAcrossSeeds) {
  SynthOptions o;
  o.size = {32, 32, 12};
  const auto a = synthesize_case(o), b = synthesize_case(o);
  EXPECT_TRUE(at::equal(a.image.data, b.image.data));
  o.seed = 1;
  const auto c = synthesize_case(o);
  EXPECT_FALSE(at::equal(a.image.data, c.image.data));
}

TEST(Synth, WritesADecathlonDataset) {
  test::TempDir tmp;
  SynthOptions o;
  o.size = {32, 32, 12};
  const auto path = write_synthetic_dataset(tmp.path(), 5, o);
  const auto train = load_datalist(path, "training");
  const auto val = load_datalist(path, "validation");
  EXPECT_EQ(train.size(), 4u);
  EXPECT_EQ(val.size(), 1u);
  const auto test_list = load_datalist(path, "test");
  ASSERT_EQ(test_list.size(), 1u);
  EXPECT_EQ(test_list[0].files.count("label"), 0u);
  EXPECT_EQ(test_list[0].files.at("image"), val[0].files.at("image"));
  const auto img = io::read_image(train[0].files.at("image"));
  const auto lbl = io::read_image(train[0].files.at("label"));
  EXPECT_EQ(img.spatial_shape(), lbl.spatial_shape());
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(img.affine[i], lbl.affine[i], 1e-6);
}

TEST(BrainSample, LabelsTheRealMrisWithTheirMasks) {
  test::TempDir tmp;
  const auto path = write_brain_sample(tmp.path());
  const auto train = load_datalist(path, "training");
  const auto val = load_datalist(path, "validation");
  ASSERT_EQ(train.size(), 1u);
  ASSERT_EQ(val.size(), 1u);
  const auto img = io::read_image(train[0].files.at("image"));
  const auto mask = io::read_image(train[0].files.at("label"));
  EXPECT_EQ(img.spatial_shape(), (std::vector<int64_t>{181, 217, 181}));
  EXPECT_EQ(mask.spatial_shape(), img.spatial_shape());
  const double frac = mask.data.to(at::kFloat).mean().item<double>();
  EXPECT_GT(frac, 0.1);  // a brain fills a good part of the head image
  EXPECT_LT(frac, 0.5);
}

}  // namespace
}  // namespace barton::data
