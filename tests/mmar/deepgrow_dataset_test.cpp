// `barton data deepgrow` (MONAI's deepgrow create_dataset, Clara's prepare_dataset.sh): the slices
// written are the volume's labelled slices after RAS + resampling, in place in space, one label
// per region, and the datalist lists them by volume.
#include "mmar/deepgrow_dataset.h"

#include <filesystem>
#include <set>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/errors.h"
#include "data/synth.h"
#include "io/image.h"
#include "mmar/registries.h"
#include "support/test_support.h"
#include "transforms/transform.h"

namespace barton {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// The volume as the preparation sees it: RAS, 1 mm in-plane, depth kept (the same registered
/// transforms, run here on their own).
std::pair<transforms::ImageItem, transforms::ImageItem> reference(const std::string& image,
                                                                  const std::string& label) {
  const auto steps = ConfigNode::parse(R"([
      {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
      {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
      {"name": "Orientationd", "args": {"keys": ["image", "label"], "axcodes": "RAS"}},
      {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [1.0, 1.0, 0.0],
                                    "mode": ["bilinear", "nearest"]}}])",
                                       "test");
  transforms::Sample s;
  s.set("image", image);
  s.set("label", label);
  transforms::Rng rng(0);
  for (std::size_t i = 0; i < steps.size(); ++i)
    builtin_registries().transforms.create(steps.at(i))->apply(s, rng);
  return {s.image("image"), s.image("label")};
}

struct Prepared {
  test::TempDir dir;
  std::string data() const { return dir.file("data"); }
  std::string out() const { return dir.file("slices"); }
};

TEST(DeepgrowDataset, TwoDSlicesAreTheVolumesLabelledSlicesInPlace) {
  Prepared p;
  data::SynthOptions so;
  so.size = {36, 32, 12};
  so.spacing = {2.0, 2.0, 5.0};
  so.seed = 3;
  data::write_synthetic_dataset(p.data(), 3, so);
  mmar::DeepgrowDatasetOptions o;
  o.dataset_json = p.data() + "/dataset.json";
  o.datalist_key = "training,validation";
  o.output = p.out();
  const auto r = mmar::prepare_deepgrow_dataset(o);
  EXPECT_EQ(r.volumes, 3);
  const auto doc = json::parse(read_file(r.datalist));
  ASSERT_TRUE(doc.contains("training") && doc.contains("validation")) << doc.dump();
  EXPECT_EQ(doc["dimensions"], 2);

  // Volume 0 is the datalist's first training case: its labelled slices, each written as is.
  const auto [vol, lab] =
      reference(p.data() + "/imagesTr/case_0.nii.gz", p.data() + "/labelsTr/case_0.nii.gz");
  const auto depth = vol.data.size(3);
  int labelled = 0;
  for (int64_t k = 0; k < depth; ++k) {
    const auto lk = lab.data[0].select(2, k);
    const auto stem = fmt::format("vol_idx_0000_slice_{:03d}", k);
    const bool written = fs::exists(p.out() + "/images/" + stem + ".nii.gz");
    EXPECT_EQ(written, lk.sum().item<double>() > 0) << k;
    if (!written) continue;
    ++labelled;
    const auto img = io::read_image(p.out() + "/images/" + stem + ".nii.gz");
    const auto l = io::read_image(p.out() + "/labels/" + stem + "_region_01.nii.gz");
    ASSERT_EQ(img.data.dim(), 3) << "a 2-D image";
    EXPECT_TRUE(at::allclose(img.data[0].to(at::kFloat), vol.data[0].select(2, k).to(at::kFloat)));
    EXPECT_TRUE(at::equal(l.data[0].to(at::kFloat), lk.to(at::kFloat)));
    // Voxel (p, q) of the slice is the world point of the volume's voxel (p, q, k).
    for (int row = 0; row < 3; ++row) {
      const double want = vol.affine[row * 4] * 3 + vol.affine[row * 4 + 1] * 4 +
                          vol.affine[row * 4 + 2] * static_cast<double>(k) +
                          vol.affine[row * 4 + 3];
      const double got =
          img.affine[row * 4] * 3 + img.affine[row * 4 + 1] * 4 + img.affine[row * 4 + 3];
      EXPECT_NEAR(got, want, 1e-4) << row;
    }
  }
  EXPECT_GT(labelled, 0);
  // Every entry names an existing slice and label, region 1 (the synthetic organ's value).
  int entries = 0;
  for (const auto* key : {"training", "validation"}) {
    for (const auto& e : doc[key]) {
      EXPECT_TRUE(fs::exists(p.out() + "/" + e["image"].get<std::string>()));
      EXPECT_TRUE(fs::exists(p.out() + "/" + e["label"].get<std::string>()));
      EXPECT_EQ(e["region"], 1);
      ++entries;
    }
  }
  EXPECT_EQ(entries, r.labels);
  EXPECT_EQ(r.images, r.labels) << "one organ per slice";
}

TEST(DeepgrowDataset, SplitIsByVolumeAndThreeDWritesVolumes) {
  Prepared p;
  data::SynthOptions so;
  so.size = {24, 24, 8};
  so.spacing = {2.0, 2.0, 5.0};
  data::write_synthetic_dataset(p.data(), 5, so);
  mmar::DeepgrowDatasetOptions o;
  o.dataset_json = p.data() + "/dataset.json";
  o.output = p.out();
  o.split = 0.5;
  auto r = mmar::prepare_deepgrow_dataset(o);
  auto doc = json::parse(read_file(r.datalist));
  ASSERT_TRUE(doc.contains("validation")) << doc.dump();
  std::set<std::string> train_vols, val_vols;
  for (const auto& e : doc["training"])
    train_vols.insert(e["image"].get<std::string>().substr(7, 12));
  for (const auto& e : doc["validation"])
    val_vols.insert(e["image"].get<std::string>().substr(7, 12));
  for (const auto& v : val_vols) EXPECT_EQ(train_vols.count(v), 0u) << v << " is in both";
  EXPECT_FALSE(train_vols.empty());

  o.dimensions = 3;
  o.split = 1;
  o.limit = 2;
  o.output = p.dir.file("volumes");
  r = mmar::prepare_deepgrow_dataset(o);
  EXPECT_EQ(r.volumes, 2);
  EXPECT_EQ(r.images, 2);
  doc = json::parse(read_file(r.datalist));
  ASSERT_EQ(doc["training"].size(), 2u);
  const auto v =
      io::read_image(p.dir.file("volumes/") + doc["training"][0]["image"].get<std::string>());
  EXPECT_EQ(v.data.dim(), 4);
  EXPECT_NEAR(v.affine[0], 1.0, 1e-6) << "1 mm, RAS";
}

TEST(DeepgrowDataset, BadInputNamesWhatIsWrong) {
  Prepared p;
  fs::create_directories(p.data());
  write_file_atomic(p.data() + "/dataset.json", R"({"training": [{"image": "a.nii.gz"}]})");
  write_file_atomic(p.data() + "/a.nii.gz", "not an image");
  mmar::DeepgrowDatasetOptions o;
  o.dataset_json = p.data() + "/dataset.json";
  o.output = p.out();
  try {
    mmar::prepare_deepgrow_dataset(o);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/training/0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"label\""), std::string::npos) << e.what();
  }
  o.dimensions = 4;
  EXPECT_THROW(mmar::prepare_deepgrow_dataset(o), Error);
  o.dimensions = 2;
  o.split = 0;
  EXPECT_THROW(mmar::prepare_deepgrow_dataset(o), Error);
  o.split = 0.5;  // a split divides one key's volumes
  o.datalist_key = "training,validation";
  try {
    mmar::prepare_deepgrow_dataset(o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--split divides one datalist key"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(p.out() + "/dataset.json")) << "nothing written";
}

}  // namespace
}  // namespace barton
