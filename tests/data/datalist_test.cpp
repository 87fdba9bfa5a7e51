#include "data/datalist.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "support/test_support.h"

namespace barton::data {
namespace {

class DatalistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_text(tmp.file("data/imagesTr/a.nii.gz"), "x");
    test::write_text(tmp.file("data/labelsTr/a.nii.gz"), "x");
    test::write_text(tmp.file("data/imagesTs/t.nii.gz"), "x");
    test::write_text(tmp.file("abs.nii.gz"), "x");
  }
  test::TempDir tmp;
};

TEST_F(DatalistTest, ResolvesRelativeAndAbsolutePathsAndFolds) {
  test::write_text(
      tmp.file("data/dataset.json"), R"({
    "training": [{"image": "imagesTr/a.nii.gz", "label": "labelsTr/a.nii.gz", "fold": 1},
                 {"image": ")" + tmp.file("abs.nii.gz") +
                                         R"(", "label": "labelsTr/a.nii.gz", "fold": 0}],
    "test": ["imagesTs/t.nii.gz"]})");
  const auto items = load_datalist(tmp.file("data/dataset.json"), "training");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].files.at("image"), tmp.file("data/imagesTr/a.nii.gz"));
  EXPECT_EQ(items[1].files.at("image"), tmp.file("abs.nii.gz"));
  EXPECT_EQ(*items[0].fold, 1);
  EXPECT_EQ(select_fold(items, 0, true).size(), 1u);
  EXPECT_EQ(select_fold(items, 0, false).size(), 1u);
  const auto test_items = load_datalist(tmp.file("data/dataset.json"), "test");
  EXPECT_EQ(test_items[0].files.at("image"), tmp.file("data/imagesTs/t.nii.gz"));
}

TEST_F(DatalistTest, BaseDirOverridesTheDatalistFolder) {
  test::write_text(tmp.file("lists/ds.json"), R"({"training": [{"image": "imagesTr/a.nii.gz"}]})");
  const auto items = load_datalist(tmp.file("lists/ds.json"), "training", {tmp.file("data"), true});
  EXPECT_EQ(items[0].files.at("image"), tmp.file("data/imagesTr/a.nii.gz"));
}

TEST_F(DatalistTest, MissingFileNamesDatalistAndPointer) {
  test::write_text(
      tmp.file("data/dataset.json"),
      R"({"training": [{"image": "imagesTr/a.nii.gz", "label": "labelsTr/zz.nii.gz"}]})");
  test::expect_error_containing(
      [&] { load_datalist(tmp.file("data/dataset.json"), "training"); },
      tmp.file("data/dataset.json") +
          ":/training/0/label: file not found: " + tmp.file("data/labelsTr/zz.nii.gz"));
}

TEST_F(DatalistTest, MissingAndEmptyKeys) {
  test::write_text(tmp.file("data/dataset.json"),
                   R"({"training": [], "validation": [{"image": "imagesTr/a.nii.gz"}]})");
  test::expect_error_containing([&] { load_datalist(tmp.file("data/dataset.json"), "training"); },
                                ":/training: the list 'training' is empty");
  test::expect_error_containing([&] { load_datalist(tmp.file("data/dataset.json"), "validaton"); },
                                "no list 'validaton' in datalist; did you mean 'validation'?");
}

}  // namespace
}  // namespace barton::data
