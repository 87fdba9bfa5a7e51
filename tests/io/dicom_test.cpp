// DICOM series: grouping, sorting along the normal, rescale, geometry checked against pydicom,
// and the refusals for inconsistent series (pydicom's test files, Debian python3-pydicom).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/errors.h"
#include "io/image.h"
#include "io/io_test_util.h"

namespace barton::io {
namespace {

const std::string kDir = "/usr/lib/python3/dist-packages/pydicom/data/test_files/dicomdirtests/";

TEST(DicomSeries, FiveSliceCtMatchesPydicomGeometryAndHounsfieldUnits) {
  const auto path = kDir + "98892001/CT5N";
  const auto img = read_image(path);
  EXPECT_EQ(img.meta.at("slices"), "5");
  EXPECT_EQ(img.data.scalar_type(), at::kShort);  // HU after slope 1 / intercept -1024
  EXPECT_NEAR(voxel_spacing(img.affine)[2], 2.5, 1e-6);
  EXPECT_EQ(orientation_code(img.affine), "LPS");
  test::expect_matches_reference(img, test::python_reference("dicom", path), 1e-4, 0.0);
}

TEST(DicomSeries, ListsSeriesLargestFirst) {
  const auto series = list_dicom_series(kDir + "98892003/MR2");
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(series[0].files.size(), 3u);
  EXPECT_EQ(series[2].files.size(), 1u);
}

TEST(DicomSeries, ChoosesASeriesByUid) {
  const auto series = list_dicom_series(kDir + "98892003/MR2");
  const auto single = series.back();
  const auto img = read_image(kDir + "98892003/MR2", {single.uid});
  EXPECT_EQ(img.meta.at("series_uid"), single.uid);
  EXPECT_EQ(img.spatial_shape(), (std::vector<int64_t>{16, 16, 1}));
  test::expect_matches_reference(
      img, test::python_reference("dicom", kDir + "98892003/MR2", single.uid), 1e-4, 0.0);
}

TEST(DicomSeries, UnknownUidListsTheSeriesFound) {
  test::expect_error_containing([] { read_image(kDir + "98892003/MR2", {"1.2.3"}); },
                                "no series with UID '1.2.3' (found: ");
}

TEST(DicomSeries, RefusesRotatingOrientation) {
  test::expect_error_containing([] { read_image(kDir + "98892003/MR700"); },
                                "inconsistent orientation in series");
}

TEST(DicomSeries, RefusesTheDistractorSeriesWithTwoOrientations) {
  test::expect_error_containing([] { read_image(kDir + "98892001/CT2N"); },
                                "inconsistent orientation in series");
}

TEST(DicomSeries, RefusesMissingSlices) {
  test::expect_error_containing([] { read_image(kDir + "77654033/CT2"); },
                                "inconsistent slice spacing in series");
}

TEST(DicomSeries, EmptyFolderIsAnError) {
  test::TempDir tmp;
  test::expect_error_containing([&] { read_image(tmp.path()); }, "no DICOM series found");
}

}  // namespace
}  // namespace barton::io
