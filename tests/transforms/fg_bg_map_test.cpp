// FgBgMap against MONAI's map_binary_to_indices written directly in ATen (nonzero of the
// foreground and background masks), on both of fg_bg_map's paths: the row-by-row one (one-channel
// float label and image, cropped views included) and the general one (several channels, other
// dtypes, no image).
#include "transforms/croppad/fg_bg_map.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/errors.h"

namespace barton::transforms {
namespace {

// MONAI's definition: foreground where any label channel past the first (or the one channel) is
// non-zero; background the rest, where some image channel exceeds the threshold when an image is
// given.
std::pair<at::Tensor, at::Tensor> reference(const at::Tensor& label,
                                            const at::Tensor* image,
                                            double threshold) {
  const auto lab = label.size(0) > 1 ? label.slice(0, 1) : label;
  const auto fg = (lab != 0).any(0).reshape(-1);
  auto bg = fg.logical_not();
  if (image != nullptr) bg = bg & (*image > threshold).any(0).reshape(-1);
  return {at::nonzero(fg).reshape(-1), at::nonzero(bg).reshape(-1)};
}

void expect_matches(const at::Tensor& label, const at::Tensor* image, double threshold) {
  const auto [fg, bg] = reference(label, image, threshold);
  const auto m = fg_bg_map(label, image, threshold);
  ASSERT_EQ(m.count[FgBgMap::kForeground], fg.numel());
  ASSERT_EQ(m.count[FgBgMap::kBackground], bg.numel());
  EXPECT_TRUE(at::equal(m.indices(FgBgMap::kForeground), fg));
  EXPECT_TRUE(at::equal(m.indices(FgBgMap::kBackground), bg));
  // kth is the k-th entry of the list, for every k (both sets, across block boundaries).
  const auto* f = fg.data_ptr<int64_t>();
  for (int64_t k = 0; k < fg.numel(); ++k) ASSERT_EQ(m.kth(FgBgMap::kForeground, k), f[k]) << k;
  const auto* b = bg.data_ptr<int64_t>();
  for (int64_t k = 0; k < bg.numel(); ++k) ASSERT_EQ(m.kth(FgBgMap::kBackground, k), b[k]) << k;
  // fg_bg_indices is the same lists.
  const auto [fi, bi] = fg_bg_indices(label, image, threshold);
  EXPECT_TRUE(at::equal(fi, fg));
  EXPECT_TRUE(at::equal(bi, bg));
}

TEST(FgBgMap, OneChannelFloatLabelAndImageRowByRow) {
  at::manual_seed(3);
  // 37 x 41 x 29 voxels: neither the rows nor the total are multiples of 64 or of a block.
  const auto label = (at::rand({1, 37, 41, 29}) > 0.8).to(at::kFloat);
  const auto image = at::randn({1, 37, 41, 29});
  expect_matches(label, nullptr, 0.0);
  expect_matches(label, &image, 0.0);
  expect_matches(label, &image, 1.5);
}

TEST(FgBgMap, CroppedViewsAreReadThroughTheirStrides) {
  at::manual_seed(4);
  const auto label = (at::rand({1, 70, 80, 90}) > 0.5).to(at::kFloat);
  const auto image = at::randn({1, 70, 80, 90});
  const auto lv = label.slice(1, 5, 60).slice(2, 3, 77).slice(3, 10, 81);
  const auto iv = image.slice(1, 5, 60).slice(2, 3, 77).slice(3, 10, 81);
  ASSERT_FALSE(lv.is_contiguous());
  expect_matches(lv, &iv, 0.2);
}

TEST(FgBgMap, SeveralChannelsAndIntegerLabelsTakeTheGeneralPath) {
  at::manual_seed(5);
  // One-hot style label: channel 0 (background) is ignored, as MONAI does.
  const auto label = at::randint(0, 2, {3, 20, 21, 22}, at::kInt);
  const auto image = at::randn({2, 20, 21, 22});
  expect_matches(label, nullptr, 0.0);
  expect_matches(label, &image, 0.5);
  const auto bytes = (at::rand({1, 33, 17, 9}) > 0.3).to(at::kByte);
  expect_matches(bytes, nullptr, 0.0);
}

TEST(FgBgMap, EmptySetsAndTheEndsOfAList) {
  const auto empty = at::zeros({1, 10, 10, 10});
  const auto m = fg_bg_map(empty, nullptr, 0.0);
  EXPECT_EQ(m.count[FgBgMap::kForeground], 0);
  EXPECT_EQ(m.count[FgBgMap::kBackground], 1000);
  EXPECT_EQ(m.indices(FgBgMap::kForeground).numel(), 0);
  EXPECT_THROW(m.kth(FgBgMap::kForeground, 0), InternalError);
  EXPECT_EQ(m.kth(FgBgMap::kBackground, 0), 0);
  EXPECT_EQ(m.kth(FgBgMap::kBackground, 999), 999);
  EXPECT_THROW(m.kth(FgBgMap::kBackground, 1000), InternalError);
  EXPECT_THROW(m.kth(FgBgMap::kBackground, -1), InternalError);
  // An image below the threshold everywhere leaves no valid background.
  const auto dark = at::full({1, 10, 10, 10}, -5.0f);
  EXPECT_EQ(fg_bg_map(empty, &dark, 0.0).count[FgBgMap::kBackground], 0);
}

TEST(FgBgMap, FromClassesPacksOneVoxelPerBit) {
  // Classes across word and block boundaries: 0 neither, 1 foreground, 2 background.
  std::vector<uint8_t> cls(64 * 64 * 2 + 7, 0);
  std::vector<int64_t> fg, bg;
  for (std::size_t i = 0; i < cls.size(); ++i) {
    cls[i] = static_cast<uint8_t>((i * 7 + i / 13) % 3);
    if (cls[i] == 1) fg.push_back(static_cast<int64_t>(i));
    if (cls[i] == 2) bg.push_back(static_cast<int64_t>(i));
  }
  const auto m = FgBgMap::from_classes(cls.data(), static_cast<int64_t>(cls.size()));
  ASSERT_EQ(m.count[0], static_cast<int64_t>(fg.size()));
  ASSERT_EQ(m.count[1], static_cast<int64_t>(bg.size()));
  for (std::size_t k = 0; k < fg.size(); ++k) ASSERT_EQ(m.kth(0, static_cast<int64_t>(k)), fg[k]);
  for (std::size_t k = 0; k < bg.size(); ++k) ASSERT_EQ(m.kth(1, static_cast<int64_t>(k)), bg[k]);
}

}  // namespace
}  // namespace barton::transforms
