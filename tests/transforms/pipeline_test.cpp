// The pipeline machinery: chains, caches, loaders, determinism, and errors that name the file and
// the transform.
#include <filesystem>
#include <set>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/config.h"
#include "core/errors.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/synth.h"
#include "io/image.h"
#include "mmar/registries.h"
#include "support/test_support.h"
#include "transforms/twin.h"

namespace barton::data {
namespace {

using transforms::Compose;
using transforms::Transform;

std::shared_ptr<const Compose> chain(const std::string& list_json) {
  const auto list = ConfigNode::parse(list_json, "chain.json");
  std::vector<std::shared_ptr<const Transform>> steps;
  std::vector<std::string> where;
  for (std::size_t i = 0; i < list.size(); ++i) {
    steps.push_back(builtin_registries().transforms.create(list.at(i)));
    where.push_back(list.at(i).pointer());
  }
  auto c = std::make_shared<Compose>(std::move(steps), std::move(where));
  c->set_fingerprint(list.dump());
  return c;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SynthOptions o;
    o.size = {40, 36, 14};
    dataset_json = write_synthetic_dataset(tmp.path(), 5, o);
    items = load_datalist(dataset_json, "training");
  }
  test::TempDir tmp;
  std::string dataset_json;
  std::vector<DataItem> items;
};

const char* kSpleenChain = R"([
  {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
  {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
  {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [2.0, 2.0, 3.0], "mode": ["bilinear", "nearest"]}},
  {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0, "clip": true}},
  {"name": "CropForegroundd", "args": {"keys": ["image", "label"], "source_key": "image"}},
  {"name": "RandCropByPosNegLabeld", "args": {"keys": ["image", "label"], "label_key": "label", "spatial_size": [16, 16, 8],
      "pos": 1, "neg": 1, "num_samples": 2, "image_key": "image", "image_threshold": 0}},
  {"name": "RandShiftIntensityd", "args": {"keys": "image", "offsets": 0.1, "prob": 0.5}},
  {"name": "ToTensord", "args": {"keys": ["image", "label"]}}
])";

TEST_F(PipelineTest, CacheDatasetCachesTheDeterministicPrefixOnly) {
  auto c = chain(kSpleenChain);
  EXPECT_EQ(c->first_random(), 5u);
  CacheDataset cached(items, c, 0, {});
  Dataset plain(items, c, 0);
  EXPECT_EQ(cached.cached_count(), items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto a = cached.get(i, 3), b = plain.get(i, 3);
    ASSERT_EQ(a.size(), 2u);  // num_samples
    for (std::size_t k = 0; k < 2; ++k) {
      EXPECT_TRUE(at::equal(a[k].image("image").data, b[k].image("image").data));
      EXPECT_EQ(a[k].image("image").spatial_shape(), (std::vector<int64_t>{16, 16, 8}));
    }
  }
  // Different epochs draw different patches; the same epoch draws the same.
  EXPECT_FALSE(
      at::equal(cached.get(0, 1)[0].image("image").data, cached.get(0, 2)[0].image("image").data));
  EXPECT_TRUE(
      at::equal(cached.get(0, 1)[0].image("image").data, cached.get(0, 1)[0].image("image").data));
  // The patch sampler gets the cached case without a deep copy; its patches own their storage, so
  // writing into them leaves the cache as it was.
  for (auto& patch : cached.get(0, 1)) {
    patch.image("image").data.add_(100);
    patch.image("label").data.add_(1);
  }
  const auto again = cached.get(0, 1), fresh = plain.get(0, 1);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_TRUE(at::equal(again[k].image("image").data, fresh[k].image("image").data));
    EXPECT_TRUE(at::equal(again[k].image("label").data, fresh[k].image("label").data));
  }
}

TEST_F(PipelineTest, CacheRateAndCacheNumLimitTheCache) {
  CacheOptions o;
  o.cache_rate = 0.5;
  o.num_workers = 2;
  CacheDataset half(items, chain(kSpleenChain), 0, o);
  EXPECT_EQ(half.cached_count(), 2u);
  o.cache_rate = 1.0;
  o.cache_num = 1;
  CacheDataset one(items, chain(kSpleenChain), 0, o);
  EXPECT_EQ(one.cached_count(), 1u);
  EXPECT_EQ(one.get(3, 0).size(), 2u);  // uncached items are computed on access
}

TEST_F(PipelineTest, LoaderFlattensNumSamplesAndIsIndependentOfWorkerCount) {
  auto ds = std::make_shared<CacheDataset>(items, chain(kSpleenChain), 42, CacheOptions{});
  LoaderOptions o;
  o.batch_size = 2;
  o.shuffle = true;
  o.seed = 3;
  DataLoader serial(ds, o);
  o.num_workers = 2;
  DataLoader threaded(ds, o);
  for (uint64_t epoch = 0; epoch < 2; ++epoch) {
    serial.start_epoch(epoch);
    threaded.start_epoch(epoch);
    std::size_t batches = 0;
    while (auto a = serial.next()) {
      auto b = threaded.next();
      ASSERT_TRUE(b.has_value());
      EXPECT_TRUE(at::equal(a->tensors.at("image"), b->tensors.at("image")));
      EXPECT_EQ(a->tensors.at("image").size(0), static_cast<int64_t>(a->size()));
      ++batches;
    }
    EXPECT_FALSE(threaded.next().has_value());
    EXPECT_EQ(batches, 2u);  // 4 training items, batch 2 (x 2 samples each)
  }
}

TEST_F(PipelineTest, SmartCacheReplacesPartOfTheWindowEachEpoch) {
  SmartCacheOptions o;
  o.cache_num = 2;
  o.replace_rate = 0.5;
  SmartCacheDataset ds(items, chain(kSpleenChain), 0, o);
  ds.start_epoch(0);
  const auto w0 = ds.window();
  ds.start_epoch(1);
  const auto w1 = ds.window();
  ASSERT_EQ(w0.size(), 2u);
  ASSERT_EQ(w1.size(), 2u);
  EXPECT_EQ(w1[0], w0[1]);  // the oldest entry left, one new one came in
  EXPECT_NE(w1[1], w0[0]);
  EXPECT_EQ(ds.get(w1[1], 1).size(), 2u);
}

TEST_F(PipelineTest, PersistentCacheIsReusedAndNeverStale) {
  const auto dir = tmp.file("cache");
  auto c1 = chain(kSpleenChain);
  PersistentDataset a(items, c1, 0, dir);
  const auto first = a.get(0, 0);
  const auto path = a.cache_path(0);
  ASSERT_TRUE(std::filesystem::exists(path));
  const auto again = PersistentDataset(items, c1, 0, dir).get(0, 0);
  EXPECT_TRUE(at::equal(first[0].image("image").data, again[0].image("image").data));
  // A changed chain gets another key.
  std::string changed = kSpleenChain;
  changed.replace(changed.find("-57"), 3, "-99");
  PersistentDataset b(items, chain(changed), 0, dir);
  EXPECT_NE(b.cache_path(0), path);
  EXPECT_FALSE(at::equal(b.get(0, 0)[0].image("image").data, first[0].image("image").data));
}

TEST_F(PipelineTest, FailingSampleNamesItsFileAndTheTransform) {
  auto c = chain(R"([{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                     {"name": "CenterSpatialCropd", "args": {"keys": "imgae", "roi_size": [4, 4, 4]}}])");
  Dataset ds(items, c, 0);
  test::expect_error_containing([&] { ds.get(0, 0); },
                                "applying transform 'CenterSpatialCropd' (/1) to ");
  test::expect_error_containing([&] { ds.get(0, 0); },
                                "sample has no key 'imgae'; did you mean 'image'?");
  // A corrupt image names the file.
  test::write_text(tmp.file("bad.nii.gz"), "not gzip");
  std::vector<DataItem> bad = {items[0]};
  bad[0].files["image"] = tmp.file("bad.nii.gz");
  Dataset broken(bad, chain(R"([{"name": "LoadImaged", "args": {"keys": ["image"]}}])"), 0);
  test::expect_error_containing([&] { broken.get(0, 0); }, tmp.file("bad.nii.gz"));
}

TEST_F(PipelineTest, CollateRefusesMismatchedShapesNamingBothFiles) {
  auto c = chain(R"([{"name": "LoadImaged", "args": {"keys": ["image"]}}])");
  SynthOptions o;
  o.size = {20, 20, 10};
  write_synthetic_dataset(tmp.file("other"), 2, o);
  auto mixed = items;
  mixed[1] = load_datalist(tmp.file("other/dataset.json"), "training")[0];
  auto ds = std::make_shared<Dataset>(mixed, c, 0);
  LoaderOptions lo;
  lo.batch_size = 2;
  DataLoader loader(ds, lo);
  loader.start_epoch(0);
  test::expect_error_containing([&] { loader.next(); }, "cannot batch 'image': ");
}

TEST(Registry, EveryAvailableTransformIsRegisteredWithItsSpec) {
  const auto& r = builtin_registries().transforms;
  int available = 0;
  for (const auto& name : r.names()) available += r.available(name);
  EXPECT_GE(available, 40);
  for (const char* n : {"LoadImaged", "Spacingd", "RandCropByPosNegLabeld", "Invertd",
                        "ScaleIntensityRangeD", "RandFlipD"}) {
    EXPECT_TRUE(r.available(n)) << n;
  }
  test::expect_error_containing(
      [&] {
        r.create(ConfigNode::parse(
            R"({"name": "Spacingd", "args": {"keys": "image", "pixdim": [1, 1, 1], "mode": "cubic"}})",
            "c.json"));
      },
      "c.json:/args/mode: must be bilinear, nearest or bicubic, got 'cubic'");
}

}  // namespace
}  // namespace barton::data

namespace barton::data {
namespace {

TEST(RandomSpatial, ElasticWithoutDeformationIsTheIdentity) {
  const auto s = test::ct_case({17, 15, 9});
  const auto t = test::make_transform(
      "Rand3DElasticd",
      R"({"keys": "image", "sigma_range": [2, 3], "magnitude_range": [0, 0], "prob": 1.0})");
  const auto out = test::apply(*t, s, 3);
  EXPECT_LE((out.image("image").data - s.image("image").data).abs().max().item<float>(), 1e-3);
  const auto moved = test::apply(
      *test::make_transform(
          "Rand3DElasticd",
          R"({"keys": "image", "sigma_range": [2, 3], "magnitude_range": [3, 4], "prob": 1.0})"),
      s, 3);
  EXPECT_GT((moved.image("image").data - s.image("image").data).abs().max().item<float>(), 10.0f);
}

TEST(RandomSpatial, RandomTransformsReproducePerSeedAndKeepKeysAligned) {
  const auto s = test::ct_case({17, 15, 9});
  for (const char* spec :
       {R"({"keys": ["image", "label"], "prob": 1.0, "spatial_axis": [0, 1]})"}) {
    const auto t = test::make_transform("RandFlipd", spec);
    const auto a = test::apply(*t, s, 1);
    EXPECT_TRUE(at::equal(a.image("image").data, s.image("image").data.flip({1, 2})));
    EXPECT_TRUE(at::equal(a.image("label").data, s.image("label").data.flip({1, 2})));
  }
  const auto rot = test::make_transform("RandRotate90d",
                                        R"({"keys": ["image", "label"], "prob": 1.0, "max_k": 3})");
  const auto r1 = test::apply(*rot, s, 5), r2 = test::apply(*rot, s, 5);
  EXPECT_TRUE(at::equal(r1.image("image").data, r2.image("image").data));
  // Label and image moved together: the label still marks the organ's HU.
  const auto organ = r1.image("label").data > 0;
  EXPECT_GT(r1.image("image").data.masked_select(organ).mean().item<float>(), 60.0f);
}

// RandCropByPosNegLabeld draws the k-th voxel of a class map; the same seed gives the same patches
// as indexing FgBgToIndicesd's lists (MONAI's way) and as a one-hot label (the general path).
TEST(RandomCrops, PosNegDrawsTheSameCentresFromTheMapTheListsAndOneHotLabels) {
  auto s = test::ct_case({30, 26, 11});
  const char* crop =
      R"({"keys": ["image", "label"], "label_key": "label", "spatial_size": [8, 8, 4], "pos": 1, "neg": 2,
      "num_samples": 6, "image_key": "image", "image_threshold": 0.1)";
  const auto by_map = test::make_transform("RandCropByPosNegLabeld", std::string(crop) + "}");
  const auto by_list = test::make_transform(
      "RandCropByPosNegLabeld",
      std::string(crop) +
          R"(, "fg_indices_key": "label_fg_indices", "bg_indices_key": "label_bg_indices"})");
  auto with_lists = s.deep_copy();
  transforms::Rng unused(0);
  test::make_transform("FgBgToIndicesd",
                       R"({"keys": "label", "image_key": "image", "image_threshold": 0.1})")
      ->apply(with_lists, unused);
  auto one_hot = s.deep_copy();
  auto& l = one_hot.image("label").data;
  l = at::cat({1 - l, l}, 0);
  transforms::Rng r1(5), r2(5), r3(5);
  const auto a = by_map->apply_multi(s.deep_copy(), r1);
  const auto b = by_list->apply_multi(with_lists, r2);
  const auto c = by_map->apply_multi(one_hot, r3);
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  ASSERT_EQ(c.size(), 6u);
  std::set<std::vector<double>> corners;
  for (std::size_t k = 0; k < a.size(); ++k) {
    EXPECT_TRUE(at::equal(a[k].image("image").data, b[k].image("image").data)) << k;
    EXPECT_TRUE(at::equal(a[k].image("image").data, c[k].image("image").data)) << k;
    EXPECT_EQ(a[k].image("image").affine, b[k].image("image").affine) << k;
    corners.insert(
        std::vector<double>(a[k].image("image").affine.begin(), a[k].image("image").affine.end()));
  }
  EXPECT_GT(corners.size(), 1u);  // the draws differ from one another
}

// A cached case keeps its foreground/background sets (built in the cache fill by prepare_cached):
// draws from shallow copies of it give the patches a fresh build gives, the patches carry no
// cache of their own, and a label changed in place is not drawn from stale sets.
TEST(RandomCrops, PosNegSetsKeptWithACachedCaseAreRebuiltWhenTheLabelChanges) {
  const auto s = test::ct_case({30, 26, 11});
  const auto t = test::make_transform("RandCropByPosNegLabeld",
                                      R"({"keys": ["image", "label"], "label_key": "label",
      "spatial_size": [8, 8, 4], "pos": 1, "neg": 1, "num_samples": 5, "image_key": "image", "image_threshold": 0.1})");
  auto cached = s.deep_copy();
  cached.attach_derived_cache();
  t->prepare_cached(cached);
  auto same = [&](const std::vector<transforms::Sample>& a,
                  const std::vector<transforms::Sample>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t k = 0; k < a.size(); ++k) {
      if (!at::equal(a[k].image("image").data, b[k].image("image").data) ||
          a[k].image("image").affine != b[k].image("image").affine)
        return false;
    }
    return true;
  };
  for (uint64_t seed : {5u, 6u, 7u}) {
    transforms::Rng r1(seed), r2(seed);
    const auto from_cache = t->apply_multi(cached, r1);  // a shallow copy, as CacheDataset hands it
    const auto fresh = t->apply_multi(s.deep_copy(), r2);
    EXPECT_TRUE(same(from_cache, fresh)) << seed;
    for (const auto& p : from_cache) EXPECT_EQ(p.derived(), nullptr);
  }
  // Foreground and background swapped in place: the kept sets no longer describe the label.
  auto& label = cached.image("label").data;
  label.mul_(-1).add_(1);
  transforms::Rng r1(5), r2(5), r3(5);
  const auto after = t->apply_multi(cached, r1);
  const auto rebuilt = t->apply_multi(cached.deep_copy(), r2);
  const auto before = t->apply_multi(s.deep_copy(), r3);
  EXPECT_TRUE(same(after, rebuilt));
  EXPECT_FALSE(same(after, before));
  // A cached case without its label is left to the first draw, which names the missing key.
  auto unlabelled = s.deep_copy();
  unlabelled.erase("label");
  unlabelled.attach_derived_cache();
  EXPECT_NO_THROW(t->prepare_cached(unlabelled));
  transforms::Rng r4(5);
  test::expect_error_containing([&] { t->apply_multi(unlabelled, r4); }, "label");
}

TEST(RandomCrops, LabelClassesCentreOnTheChosenClass) {
  auto s = test::ct_case({30, 26, 11});
  const auto t = test::make_transform("RandCropByLabelClassesd",
                                      R"({"keys": ["image", "label"], "label_key": "label",
      "spatial_size": [8, 8, 4], "num_classes": 2, "ratios": [0, 1], "num_samples": 3})");
  transforms::Rng rng(2);
  const auto outs = t->apply_multi(s.deep_copy(), rng);
  ASSERT_EQ(outs.size(), 3u);
  for (const auto& o : outs) {
    EXPECT_EQ(o.image("label").spatial_shape(), (std::vector<int64_t>{8, 8, 4}));
    EXPECT_EQ(o.image("label").data[0][4][4][2].item<float>(),
              1.0f);  // ratios [0, 1]: always on the organ
  }
}

TEST(SaveImage, WritesWhereMonaiWouldWithTheAffine) {
  test::TempDir tmp;
  auto s = test::ct_case({12, 11, 5});
  s.image("label").filename = "/data/case_7.nii.gz";
  BuildContext ctx;
  ctx.mmar_root = tmp.path();
  const auto spec = ConfigNode::parse(
      R"({"name": "SaveImaged", "args": {"keys": "label", "output_dir": "eval", "output_postfix": "seg", "print_log": false}})",
      "c.json");
  const auto t = builtin_registries().transforms.create(spec, ctx);
  test::apply(*t, s);
  const auto back = io::read_image(tmp.file("eval/case_7/case_7_seg.nii.gz"));
  EXPECT_TRUE(at::equal(back.data, s.image("label").data));
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(back.affine[i], s.image("label").affine[i], 1e-5);
}

}  // namespace
}  // namespace barton::data
