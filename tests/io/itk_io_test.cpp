// MetaImage and NRRD through ITK: reading the ITK example data, round trips keeping geometry.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/errors.h"
#include "io/image.h"
#include "support/test_support.h"

namespace barton::io {
namespace {

const std::string kItk = "/usr/share/doc/insighttoolkit5-examples/examples/Data/";

TEST(ItkRead, ReadsA2DMetaImage) {
  const auto img = read_image(kItk + "BrainProtonDensitySliceBorder20DirectionPlus30.mhd");
  EXPECT_EQ(img.spatial_dims(), 2);
  EXPECT_EQ(img.channels(), 1);
  EXPECT_GT(img.data.max().item<double>(), 0);
  // Rotated by 30 degrees in-plane: the affine is not diagonal.
  EXPECT_GT(std::abs(img.affine[1]), 0.1);
}

TEST(ItkRead, ReadsNrrdDetachedHeader) {
  const auto img = read_image(kItk + "BrainProtonDensitySliceBorder20.nhdr");
  EXPECT_EQ(img.spatial_dims(), 2);
  const auto mhd = read_image(kItk + "BrainProtonDensitySliceBorder20.mhd");
  EXPECT_TRUE(at::equal(img.data, mhd.data));
}

TEST(ItkRoundTrip, ObliqueThreeDimensionalImageKeepsGeometryInEveryFormat) {
  test::TempDir tmp;
  const auto a = read_image("/usr/lib/python3/dist-packages/nibabel/tests/data/example4d.nii.gz");
  for (const char* ext : {".mha", ".nrrd", ".mhd", ".nii.gz"}) {
    SCOPED_TRACE(ext);
    const auto out = tmp.file(std::string("x") + ext);
    write_image(a, out);
    const auto b = read_image(out);
    EXPECT_EQ(b.data.sizes(), a.data.sizes());
    EXPECT_EQ(b.data.scalar_type(), a.data.scalar_type());
    EXPECT_TRUE(at::equal(a.data, b.data));
    for (int i = 0; i < 16; ++i) EXPECT_NEAR(a.affine[i], b.affine[i], 1e-4) << i;
  }
}

TEST(ItkRoundTrip, NiftiToMetaImageAndBackKeepsLpsConversionRight) {
  test::TempDir tmp;
  const auto a = read_image(
      "/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz");
  write_image(a, tmp.file("k.mha"));
  const auto b = read_image(tmp.file("k.mha"));
  EXPECT_EQ(orientation_code(b.affine), orientation_code(a.affine));
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(a.affine[i], b.affine[i], 1e-4) << i;
}

TEST(ItkErrors, UnknownExtensionIsRefusedOnWrite) {
  Image img;
  img.data = at::zeros({1, 2, 2, 2});
  test::expect_error_containing([&] { write_image(img, "/tmp/x.png"); }, "unknown output format");
}

}  // namespace
}  // namespace barton::io
