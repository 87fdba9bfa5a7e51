// Built in the ThreadSanitizer build (cmake -DBARTON_TSAN=ON; `make tsan`, in .ci/run): the data
// path's threads with every line of Barton's core, io, transforms and data instrumented. The
// loader's worker pool, CacheDataset's fill threads, SmartCache's replacement thread running while
// the loader reads the window, PersistentDataset's writers racing for one cache file, and errors
// crossing threads. ThreadSanitizer fails the test (exit code 66) on any data race it sees; the
// assertions check that threaded runs give the serial run's tensors.
//
// LibTorch is Debian's build, not instrumented: races inside ATen kernels are not seen, and the
// synchronisation of ATen's OpenMP pool is invisible to ThreadSanitizer, so ATen runs on one
// intra-op thread here (at::set_num_threads(1)): every thread in the test is one Barton started.
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "core/config.h"
#include "core/errors.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/register.h"
#include "data/synth.h"
#include "support/test_support.h"

namespace barton::data {
namespace {

using transforms::Compose;
using transforms::Transform;

const transforms::TransformRegistry& registry() {
  static const auto r = [] {
    auto reg = std::make_unique<transforms::TransformRegistry>("transform");
    transforms::register_transforms(*reg);
    register_data_transforms(*reg);
    return reg;
  }();
  return *r;
}

std::shared_ptr<const Compose> chain(const std::string& list_json) {
  const auto list = ConfigNode::parse(list_json, "chain.json");
  std::vector<std::shared_ptr<const Transform>> steps;
  std::vector<std::string> where;
  for (std::size_t i = 0; i < list.size(); ++i) {
    steps.push_back(registry().create(list.at(i)));
    where.push_back(list.at(i).pointer());
  }
  auto c = std::make_shared<Compose>(std::move(steps), std::move(where));
  c->set_fingerprint(list.dump());
  return c;
}

// A training chain of the spleen kind: a deterministic prefix that is cached, then random patch
// sampling (its foreground sets kept in the cached sample's DerivedCache, shared by the workers)
// and random spatial and intensity steps.
const char* kTrainChain = R"([
  {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
  {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
  {"name": "Orientationd", "args": {"keys": ["image", "label"], "axcodes": "RAS"}},
  {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [2.0, 2.0, 3.0], "mode": ["bilinear", "nearest"]}},
  {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0, "clip": true}},
  {"name": "CropForegroundd", "args": {"keys": ["image", "label"], "source_key": "image"}},
  {"name": "RandCropByPosNegLabeld", "args": {"keys": ["image", "label"], "label_key": "label", "spatial_size": [16, 16, 8],
      "pos": 1, "neg": 1, "num_samples": 2, "image_key": "image", "image_threshold": 0}},
  {"name": "RandFlipd", "args": {"keys": ["image", "label"], "prob": 0.5, "spatial_axis": 0}},
  {"name": "RandRotate90d", "args": {"keys": ["image", "label"], "prob": 0.5, "max_k": 3, "spatial_axes": [0, 1]}},
  {"name": "RandAffined", "args": {"keys": ["image", "label"], "prob": 0.5, "rotate_range": [0.2, 0.2, 0.2],
      "scale_range": [0.1, 0.1, 0.1], "mode": ["bilinear", "nearest"], "padding_mode": "zeros"}},
  {"name": "RandGaussianNoised", "args": {"keys": "image", "prob": 0.5, "std": 0.05}},
  {"name": "RandShiftIntensityd", "args": {"keys": "image", "offsets": 0.1, "prob": 0.5}},
  {"name": "ToTensord", "args": {"keys": ["image", "label"]}}
])";

class TsanData : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    SynthOptions o;
    o.size = {40, 36, 14};
    dataset_json = write_synthetic_dataset(tmp.path(), 10, o);
    items = load_datalist(dataset_json, "training");
    ASSERT_GE(items.size(), 6u);
  }

  // Every batch of `epochs` epochs, image and label tensors in order.
  static std::vector<at::Tensor> run(std::shared_ptr<Dataset> ds, int workers, int epochs) {
    LoaderOptions o;
    o.batch_size = 2;
    o.shuffle = true;
    o.seed = 7;
    o.num_workers = workers;
    o.prefetch = 2;
    DataLoader loader(std::move(ds), o);
    std::vector<at::Tensor> out;
    for (int e = 0; e < epochs; ++e) {
      loader.start_epoch(static_cast<uint64_t>(e));
      while (auto b = loader.next()) {
        out.push_back(b->tensors.at("image"));
        out.push_back(b->tensors.at("label"));
      }
    }
    return out;
  }

  static void expect_same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(at::equal(a[i], b[i])) << "tensor " << i << " differs";
  }

  test::TempDir tmp;
  std::string dataset_json;
  std::vector<DataItem> items;
};

TEST_F(TsanData, CacheFillThreadsAndLoaderWorkersGiveTheSerialBatches) {
  CacheOptions serial_fill;
  serial_fill.num_workers = 1;
  const auto serial =
      run(std::make_shared<CacheDataset>(items, chain(kTrainChain), 3, serial_fill), 0, 3);
  CacheOptions threaded_fill;
  threaded_fill.num_workers = 4;
  auto ds = std::make_shared<CacheDataset>(items, chain(kTrainChain), 3, threaded_fill);
  EXPECT_EQ(ds->cached_count(), items.size());
  expect_same(serial, run(ds, 4, 3));
  // No copies: the random steps read the cached tensors the workers share.
  threaded_fill.copy_cache = false;
  auto shared = std::make_shared<CacheDataset>(items, chain(kTrainChain), 3, threaded_fill);
  expect_same(serial, run(shared, 3, 3));
  // Half cached: the other half is computed by the workers on access.
  threaded_fill.copy_cache = true;
  threaded_fill.cache_rate = 0.5;
  expect_same(
      serial,
      run(std::make_shared<CacheDataset>(items, chain(kTrainChain), 3, threaded_fill), 4, 3));
}

TEST_F(TsanData, OneDatasetServesTwoLoadersAtOnce) {
  CacheOptions fill;
  fill.num_workers = 3;
  auto ds = std::make_shared<CacheDataset>(items, chain(kTrainChain), 5, fill);
  const auto serial = run(ds, 0, 2);
  std::vector<at::Tensor> a, b;
  std::thread ta([&] { a = run(ds, 2, 2); });
  std::thread tb([&] { b = run(ds, 3, 2); });
  ta.join();
  tb.join();
  expect_same(serial, a);
  expect_same(serial, b);
}

TEST_F(TsanData, SmartCacheReplacesWhileTheLoaderReadsTheWindow) {
  SmartCacheOptions o;
  o.cache_num = 4;
  o.replace_rate = 0.5;
  o.num_init_workers = 3;
  o.num_replace_workers = 2;
  o.seed = 11;
  auto threaded = std::make_shared<SmartCacheDataset>(items, chain(kTrainChain), 9, o);
  o.num_init_workers = 1;
  o.num_replace_workers = 1;
  auto serial = std::make_shared<SmartCacheDataset>(items, chain(kTrainChain), 9, o);
  const auto expected = run(serial, 0, 4);
  expect_same(expected, run(threaded, 4, 4));
  // The window moved: 4 epochs of 2 replacements each went through every item at least once.
  EXPECT_EQ(threaded->window().size(), 4u);
}

TEST_F(TsanData, PersistentCacheWritersRaceForTheSameFiles) {
  const auto dir = tmp.file("persistent");
  const auto c = chain(kTrainChain);
  const auto plain = run(std::make_shared<Dataset>(items, c, 13), 0, 1);
  // Two datasets on one folder, each read by its own loader of three workers: every cache file is
  // written by whichever gets there first, possibly both at once.
  auto first = std::make_shared<PersistentDataset>(items, c, 13, dir);
  auto second = std::make_shared<PersistentDataset>(items, c, 13, dir);
  std::vector<at::Tensor> a, b;
  std::thread ta([&] { a = run(first, 3, 1); });
  std::thread tb([&] { b = run(second, 3, 1); });
  ta.join();
  tb.join();
  expect_same(plain, a);
  expect_same(plain, b);
  // Every entry is whole: a third dataset reads them all back (an unreadable entry would be
  // recomputed with a warning; here the files are compared with what it computes).
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().extension(), ".bts") << e.path();
    ++files;
  }
  EXPECT_EQ(files, items.size());
  expect_same(plain, run(std::make_shared<PersistentDataset>(items, c, 13, dir), 4, 1));
}

TEST_F(TsanData, ErrorsCrossThreadsWithTheFileNamed) {
  auto broken = items;
  test::write_text(tmp.file("bad.nii.gz"), "not gzip");
  broken[4].files["image"] = tmp.file("bad.nii.gz");
  CacheOptions fill;
  fill.num_workers = 4;
  // The fill thread that meets the bad file stops the others; the error reaches the caller.
  test::expect_error_containing([&] { CacheDataset ds(broken, chain(kTrainChain), 1, fill); },
                                tmp.file("bad.nii.gz"));
  // Through the loader's futures: uncached, the worker that loads it fails the batch.
  auto ds = std::make_shared<Dataset>(broken, chain(kTrainChain), 1);
  test::expect_error_containing([&] { run(ds, 4, 1); }, tmp.file("bad.nii.gz"));
}

TEST_F(TsanData, LoaderStoppedWithBatchesInFlight) {
  auto ds = std::make_shared<Dataset>(items, chain(kTrainChain), 2);
  for (int round = 0; round < 3; ++round) {
    LoaderOptions o;
    o.batch_size = 1;
    o.num_workers = 4;
    o.prefetch = 3;
    DataLoader loader(ds, o);
    loader.start_epoch(0);
    ASSERT_TRUE(loader.next().has_value());  // the others are queued or being made
  }  // destroyed with work in flight: the pool stops, nothing is left running
}

}  // namespace
}  // namespace barton::data
