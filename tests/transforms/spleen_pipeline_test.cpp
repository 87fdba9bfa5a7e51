// `barton preprocess` on the sample spleen MMAR's pipeline (Clara's spleen components and values)
// over synthetic CT, compared step by step with the MONAI twin: shapes after Spacingd and
// CropForegroundd, values and intensity range after ScaleIntensityRanged.
#include <filesystem>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "io/image.h"
#include "support/test_support.h"
#include "transforms/twin.h"

namespace barton {
namespace {

namespace fs = std::filesystem;
using test::run_command;

TEST(SpleenPipeline, PreprocessMatchesMonaiTwinStepByStep) {
  test::TempDir tmp;
  const auto mmar = tmp.file("mmar");
  fs::create_directories(mmar + "/config");
  for (const auto& f : fs::directory_iterator(test::source_dir() + "/mmars/spleen_ct_seg/config")) {
    fs::copy_file(f.path(), mmar + "/config/" + f.path().filename().string());
  }
  std::string out;
  ASSERT_EQ(
      run_command(test::barton_bin() + " data synth " + mmar + "/data --cases 3 --seed 5", &out), 0)
      << out;
  ASSERT_EQ(run_command(test::barton_bin() + " preprocess " + mmar +
                            " --deterministic-only --limit 1 --out " + tmp.file("det"),
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("(5 of 8 transforms, deterministic prefix)"), std::string::npos) << out;

  // The twin, step by step, on the same files.
  const auto img = io::read_image(mmar + "/data/imagesTr/case_0.nii.gz");
  const auto lbl = io::read_image(mmar + "/data/labelsTr/case_0.nii.gz");
  transforms::Sample s;
  s.set("image", test::item(img.data.to(at::kFloat), img.affine));
  s.set("label", test::item(lbl.data.to(at::kFloat), lbl.affine));
  auto step = [&](const std::string& name, const std::string& args) {
    const auto r = test::run_twin(name, args, "{}", s);
    ASSERT_EQ(r.size(), 1u);
    for (const auto& [key, it] : r[0]) {
      Affine a;
      std::copy(it.affine.begin(), it.affine.end(), a.begin());
      s.set(key, test::item(it.data.to(at::kFloat), a));
    }
  };
  step(
      "Spacingd",
      R"({"keys": ["image", "label"], "pixdim": [1.0, 1.0, 1.0], "mode": ["bilinear", "nearest"]})");
  // MONAI: 1.5 mm -> 1 mm on 112 voxels gives round(111 * 1.5 + 1) = 168; 4 mm on 40 gives 157.
  EXPECT_EQ(s.image("image").spatial_shape(), (std::vector<int64_t>{168, 168, 157}));
  step(
      "ScaleIntensityRanged",
      R"({"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0, "clip": true})");
  step("CropForegroundd", R"({"keys": ["image", "label"], "source_key": "image"})");

  for (const char* key : {"image", "label"}) {
    SCOPED_TRACE(key);
    const auto ours = io::read_image(tmp.file(std::string("det/case_0_") + key + ".nii.gz"));
    const auto& ref = s.image(key);
    ASSERT_EQ(ours.spatial_shape(), ref.spatial_shape());
    for (int i = 0; i < 16; ++i) EXPECT_NEAR(ours.affine[i], ref.affine[i], 1e-4) << i;
    EXPECT_LE((ours.data.to(at::kFloat) - ref.data).abs().max().item<float>(), 1e-4);
  }
  const auto image = io::read_image(tmp.file("det/case_0_image.nii.gz")).data;
  EXPECT_GE(image.min().item<float>(), 0.0f);
  EXPECT_LE(image.max().item<float>(), 1.0f);

  // The whole chain: four 96^3 patches per case, as num_samples says.
  ASSERT_EQ(run_command(
                test::barton_bin() + " preprocess " + mmar + " --limit 1 --out " + tmp.file("full"),
                &out),
            0)
      << out;
  for (int k = 0; k < 4; ++k) {
    const auto p = io::read_image(tmp.file("full/case_0_image_" + std::to_string(k) + ".nii.gz"));
    EXPECT_EQ(p.spatial_shape(), (std::vector<int64_t>{96, 96, 96}));
    const auto l = io::read_image(tmp.file("full/case_0_label_" + std::to_string(k) + ".nii.gz"));
    EXPECT_EQ(l.spatial_shape(), (std::vector<int64_t>{96, 96, 96}));
  }
}

TEST(SpleenPipeline, PreprocessNamesTheSectionProblems) {
  // The sample config in an MMAR whose environment points at a datalist that is not there.
  test::TempDir tmp;
  fs::create_directories(tmp.file("mmar/config"));
  fs::copy_file(test::source_dir() + "/mmars/spleen_ct_seg/config/config_train.json",
                tmp.file("mmar/config/config_train.json"));
  test::write_text(
      tmp.file("mmar/config/environment.json"),
      R"({"DATA_ROOT": "/no/data", "DATASET_JSON": "/no/data/dataset.json", "MMAR_CKPT_DIR": "models",
                       "MMAR_CKPT": "models/model.pt", "MMAR_EVAL_OUTPUT_PATH": "eval"})");
  std::string out;
  EXPECT_EQ(run_command(test::barton_bin() + " preprocess " + tmp.file("mmar") + " --out " +
                            tmp.file("never"),
                        &out),
            2);
  EXPECT_NE(out.find("config_train.json:/train/dataset/data_list_file_path: "), std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(tmp.file("never")));
}

}  // namespace
}  // namespace barton
