// End-to-end: the barton binary as a user runs it (exit codes, messages, files written).
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace barton {
namespace {

using test::barton_bin;
using test::run_command;

/// The sample spleen MMAR's training config (Clara 4.x structure, written for this project).
std::string sample_train_config() {
  return test::source_dir() + "/mmars/spleen_ct_seg/config/config_train.json";
}

TEST(Cli, ConfigShowPrintsTheResolvedClaraConfig) {
  std::string out;
  const int rc = run_command(
      barton_bin() + " config show " + sample_train_config() + " --set epochs=7", &out, false);
  ASSERT_EQ(rc, 0) << out;
  const auto doc = nlohmann::json::parse(out);
  EXPECT_EQ(doc["/train/trainer/args/max_epochs"_json_pointer], 7);
}

TEST(Cli, ConfigCheckListsEveryProblemAndExitsTwo) {
  test::TempDir tmp;
  auto cfg = nlohmann::json::parse(std::ifstream(sample_train_config()));
  cfg["/train/loss/name"_json_pointer] = "DiseLoss";
  cfg["/train/dataloader/args/batch_size"_json_pointer] = "2";
  test::write_text(tmp.file("mmar/config/config_train.json"), cfg.dump(2));
  test::write_text(
      tmp.file("mmar/config/environment.json"),
      R"({"DATA_ROOT": "data", "DATASET_JSON": "data/dataset.json", "MMAR_CKPT_DIR": "models",
                       "MMAR_CKPT": "models/model.pt", "MMAR_EVAL_OUTPUT_PATH": "eval"})");
  std::string out;
  const int rc =
      run_command("cd " + tmp.path() + " && " + barton_bin() + " config check mmar", &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("mmar/config/config_train.json:/train/loss/name: unknown loss 'DiseLoss'; did "
                     "you mean 'DiceLoss'?"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("mmar/config/config_train.json:/train/dataloader/args/batch_size: expected "
                     "int, got string \"2\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("4 problems found"), std::string::npos) << out;  // + 2 missing datalists
}

TEST(Cli, ConvertsADicomSeriesToNiftiWithTheRightGeometry) {
  test::TempDir tmp;
  const std::string series =
      "/usr/lib/python3/dist-packages/pydicom/data/test_files/dicomdirtests/98892001/CT5N";
  std::string out;
  ASSERT_EQ(run_command(barton_bin() + " convert " + series + " " + tmp.file("ct.nii.gz"), &out), 0)
      << out;
  EXPECT_NE(out.find("16x16x5"), std::string::npos) << out;
  const auto from_nifti = test::python_reference("nifti", tmp.file("ct.nii.gz"));
  const auto from_dicom = test::python_reference("dicom", series);
  ASSERT_EQ(from_nifti.shape, from_dicom.shape);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(from_nifti.affine[i], from_dicom.affine[i], 1e-4) << i;
  EXPECT_EQ(from_nifti.data, from_dicom.data);
}

TEST(Cli, InfoReportsGeometry) {
  std::string out;
  ASSERT_EQ(run_command(barton_bin() + " info /usr/share/mricron/templates/ch2bet.nii.gz", &out), 0)
      << out;
  EXPECT_NE(out.find("shape:       [1, 181, 217, 181] (C, I, J, K)"), std::string::npos) << out;
  EXPECT_NE(out.find("orientation: RAS"), std::string::npos) << out;
  EXPECT_NE(out.find("spacing:     1 x 1 x 1 mm"), std::string::npos) << out;
}

TEST(Cli, ListsDicomSeriesAndTakesAThreadCount) {
  std::string out;
  const std::string dir =
      "/usr/lib/python3/dist-packages/pydicom/data/test_files/dicomdirtests/98892003/MR2";
  ASSERT_EQ(run_command(barton_bin() + " --threads 1 info " + dir + " --list-series", &out), 0)
      << out;
  EXPECT_NE(out.find("  3 slice(s)  MR"), std::string::npos) << out;
  EXPECT_NE(out.find("  1 slice(s)  MR"), std::string::npos) << out;
  EXPECT_EQ(run_command(barton_bin() + " --threads x info " + dir, &out), 2) << out;
}

TEST(Cli, DataSynthWritesADatasetThatInfoReads) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(run_command(barton_bin() + " data synth " + tmp.file("d") +
                            " --cases 2 --size 40,40,16 --seed 4",
                        &out),
            0)
      << out;
  ASSERT_TRUE(std::filesystem::exists(tmp.file("d/dataset.json")));
  ASSERT_EQ(run_command(barton_bin() + " info " + tmp.file("d/imagesTr/case_0.nii.gz"), &out), 0)
      << out;
  EXPECT_NE(out.find("orientation: LPS"), std::string::npos) << out;
  EXPECT_NE(out.find("dtype:       int16"), std::string::npos) << out;
}

TEST(Cli, ErrorsGiveExitCodesAndNoStackTraces) {
  std::string out;
  EXPECT_EQ(run_command(barton_bin() + " info /no/such.nii.gz", &out), 1);
  EXPECT_EQ(out, "error: /no/such.nii.gz: no such file\n");
  EXPECT_EQ(run_command(barton_bin() + " frobnicate", &out), 2);
  // A Clara 3.x training config (TensorFlow era keys); the real ones are in the interop suite.
  test::TempDir tmp;
  test::write_text(tmp.file("trn_base.json"),
                   R"({"epochs": 10, "use_amp": false, "train": {"loss": {"name": "Dice"},
                       "image_pipeline": {"name": "SegmentationImagePipelineWithCache"}}})");
  EXPECT_EQ(run_command(barton_bin() + " config show " + tmp.file("trn_base.json"), &out), 2);
  EXPECT_NE(out.find(tmp.file("trn_base.json") +
                     ":/train/image_pipeline: this is a Clara 3.x (TensorFlow) config"),
            std::string::npos)
      << out;
}

TEST(Cli, ListComponentsShowsArgumentsAndStatus) {
  std::string out;
  ASSERT_EQ(run_command(barton_bin() + " list-components loss", &out), 0) << out;
  EXPECT_NE(out.find("loss DiceLoss [available]"), std::string::npos) << out;
  EXPECT_NE(out.find("    smooth_nr: float = 1e-05"), std::string::npos) << out;
  ASSERT_EQ(run_command(barton_bin() + " list-components handler", &out), 0) << out;
  EXPECT_NE(out.find("handler CheckpointSaver [available]"), std::string::npos) << out;
  EXPECT_NE(out.find("handler SegmentationSaver [planned: issue #5"), std::string::npos) << out;
  EXPECT_EQ(run_command(barton_bin() + " list-components los", &out), 1);
  EXPECT_NE(out.find("did you mean 'loss'?"), std::string::npos) << out;
}

TEST(Cli, DocsComponentsMdIsCurrentAndEveryCellFilled) {
  const std::string path = test::source_dir() + "/docs/components.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream doc;
  doc << in.rdbuf();
  std::string generated;
  ASSERT_EQ(run_command(barton_bin() + " list-components --markdown", &generated, false), 0)
      << generated;
  EXPECT_TRUE(generated == doc.str()) << "docs/components.md is out of date: run `make docs`";
  // Every table row has the header's five cells (an unescaped '|' in a cell breaks the table).
  std::istringstream lines(doc.str());
  std::string line;
  int rows = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    ++rows;
    int bars = 0;
    for (std::size_t i = 0; i < line.size(); ++i)
      bars += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
    EXPECT_EQ(bars, 5) << line;
    EXPECT_EQ(line.find("|  |"), std::string::npos) << "empty cell: " << line;
  }
  EXPECT_GT(rows, 800);
}

}  // namespace
}  // namespace barton
