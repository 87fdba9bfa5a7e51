// NIfTI reading checked voxel by voxel against nibabel (MONAI's default reader) on the real files
// that Debian packages ship; round trips; every bad input we handle.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "io/image.h"
#include "io/io_test_util.h"

namespace barton::io {
namespace {

using test::python_reference;

const std::string kNib = "/usr/lib/python3/dist-packages/nibabel/tests/data/";
const std::string kMricron = "/usr/share/mricron/templates/";
const std::string kItk = "/usr/share/doc/insighttoolkit5-examples/examples/Data/";

void expect_like_nibabel(const std::string& path) {
  SCOPED_TRACE(path);
  const auto img = read_image(path);
  test::expect_matches_reference(img, python_reference("nifti", path));
}

TEST(NiftiRead, BigEndianInt16MatchesNibabel) {
  const auto img = read_image(kNib + "anatomical.nii");
  EXPECT_EQ(img.data.scalar_type(), at::kShort);
  EXPECT_EQ(img.file_dtype, "int16");
  EXPECT_EQ(orientation_code(img.affine), "LAS");
  expect_like_nibabel(kNib + "anatomical.nii");
}

TEST(NiftiRead, BigEndianFloat32MatchesNibabel) {
  expect_like_nibabel(kNib + "reoriented_anat_moved.nii");
}

TEST(NiftiRead, ScaledInt16BecomesFloatWithSlopeAndInterceptApplied) {
  const auto img = read_image(kNib + "functional.nii");
  EXPECT_EQ(img.data.scalar_type(), at::kFloat);
  EXPECT_TRUE(img.meta.count("scl_slope"));
  EXPECT_EQ(img.channels(),
            20);  // 4D: time points become channels, as MONAI's EnsureChannelFirst does
  expect_like_nibabel(kNib + "functional.nii");
}

TEST(NiftiRead, Nifti2MatchesNibabel) {
  const auto img = read_image(kNib + "example_nifti2.nii.gz");
  EXPECT_EQ(img.meta.at("format"), "NIfTI-2");
  expect_like_nibabel(kNib + "example_nifti2.nii.gz");
}

TEST(NiftiRead, ObliqueFourDimensionalMatchesNibabel) {
  expect_like_nibabel(kNib + "example4d.nii.gz");
}

TEST(NiftiRead, HeaderWithoutItsImageFileIsAClearError) {
  // nibabel ships analyze.hdr without its .img: a header/image pair with a missing half.
  test::expect_error_containing(
      [] { read_image(kNib + "analyze.hdr"); },
      "header/image pair is incomplete: " + kNib + "analyze.img does not exist");
}

TEST(NiftiRead, SformOnlyTemplateMatchesNibabel) {
  const auto img = read_image(kMricron + "ch2.nii.gz");
  EXPECT_EQ(img.meta.at("qform_code"), "0");
  EXPECT_EQ(img.meta.at("sform_code"), "4");
  expect_like_nibabel(kMricron + "ch2.nii.gz");
}

TEST(NiftiRead, DisagreeingQformAndSformPickTheSformAsNibabelDoes) {
  expect_like_nibabel(kItk + "KmeansTest_T1UCharRaw.nii.gz");
}

TEST(NiftiRead, HonoursVoxOffsetPastPadding) {
  expect_like_nibabel(kMricron + "inia19-t1-brain.nii.gz");
}

TEST(NiftiRoundTrip, KeepsAffineDtypeAndVoxels) {
  test::TempDir tmp;
  for (const std::string& src : {kNib + "anatomical.nii", kNib + "example4d.nii.gz",
                                 kMricron + "ch2bet.nii.gz", kNib + "functional.nii"}) {
    SCOPED_TRACE(src);
    const auto a = read_image(src);
    for (const char* ext : {".nii", ".nii.gz"}) {
      const auto out = tmp.file(std::string("rt") + ext);
      write_image(a, out);
      const auto b = read_image(out);
      EXPECT_EQ(b.data.scalar_type(), a.data.scalar_type());
      EXPECT_EQ(b.file_dtype, a.file_dtype);
      EXPECT_TRUE(at::equal(a.data, b.data));
      for (int i = 0; i < 16; ++i) EXPECT_NEAR(a.affine[i], b.affine[i], 1e-4) << i;
      // And an independent reader agrees with what we wrote.
      test::expect_matches_reference(b, python_reference("nifti", out), 1e-4);
    }
  }
}

TEST(NiftiRoundTrip, Uint16SurvivesWidenedInATensor) {
  test::TempDir tmp;
  Image img;
  img.data = at::arange(0, 60000, 1000, at::kInt).reshape({1, 3, 4, 5});
  img.file_dtype = "uint16";
  img.affine = identity_affine();
  img.affine[0] = 0.7;
  write_image(img, tmp.file("u16.nii.gz"));
  const auto back = read_image(tmp.file("u16.nii.gz"));
  EXPECT_EQ(back.file_dtype, "uint16");
  EXPECT_TRUE(at::equal(back.data, img.data));
}

TEST(NiftiErrors, TruncatedGzipNamesTheFile) {
  test::TempDir tmp;
  const auto bytes = read_file(kMricron + "ch2.nii.gz");
  write_file_atomic(tmp.file("cut.nii.gz"), std::string_view(bytes).substr(0, bytes.size() / 2));
  test::expect_error_containing([&] { read_image(tmp.file("cut.nii.gz")); },
                                tmp.file("cut.nii.gz") + ": corrupt or truncated gzip data");
}

TEST(NiftiErrors, TruncatedVoxelDataSaysHowMuchIsMissing) {
  test::TempDir tmp;
  const auto bytes = read_file(kNib + "anatomical.nii");
  write_file_atomic(tmp.file("cut.nii"), std::string_view(bytes).substr(0, 2000));
  test::expect_error_containing([&] { read_image(tmp.file("cut.nii")); },
                                "truncated: expected 67650 bytes of voxel data");
}

TEST(NiftiErrors, MissingFile) {
  test::expect_error_containing([] { read_image("/nonexistent/x.nii.gz"); },
                                "/nonexistent/x.nii.gz: no such file");
}

TEST(NiftiErrors, NotANiftiFile) {
  test::TempDir tmp;
  write_file_atomic(tmp.file("junk.nii"), std::string(400, 'x'));
  test::expect_error_containing([&] { read_image(tmp.file("junk.nii")); }, "not a NIfTI file");
}

/// A little-endian NIfTI-1 written here, with sform_code 1 and one srow value replaced.
std::string with_sform_entry(const test::TempDir& tmp, int row, int col, float value) {
  Image img;
  img.data = at::zeros({1, 4, 4, 4}, at::kFloat);
  img.affine = identity_affine();
  write_image(img, tmp.file("base.nii"));
  auto bytes = read_file(tmp.file("base.nii"));
  const int16_t code = 1;
  std::memcpy(bytes.data() + 254, &code, 2);  // sform_code
  float srow[12] = {2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0};
  srow[row * 4 + col] = value;
  std::memcpy(bytes.data() + 280, srow, sizeof(srow));  // srow_x, srow_y, srow_z
  return bytes;
}

TEST(NiftiErrors, NanOrInfiniteSformIsRefusedByInfoConvertAndEveryReader) {
  test::TempDir tmp;
  write_file_atomic(tmp.file("nan.nii"), with_sform_entry(tmp, 0, 0, std::nanf("")));
  test::expect_error_containing([&] { read_image(tmp.file("nan.nii")); },
                                tmp.file("nan.nii") +
                                    ": the sform holds a non-finite value (nan) "
                                    "at row 0, column 0");
  write_file_atomic(tmp.file("inf.nii"), with_sform_entry(tmp, 1, 3, INFINITY));
  test::expect_error_containing([&] { read_image(tmp.file("inf.nii")); },
                                "non-finite value (inf) at row 1, column 3");
  // The same bytes with a finite value read, so the refusal is about the value alone.
  write_file_atomic(tmp.file("ok.nii"), with_sform_entry(tmp, 1, 3, 5.0f));
  EXPECT_DOUBLE_EQ(read_image(tmp.file("ok.nii")).affine[7], 5.0);
}

TEST(NiftiErrors, SingularSformIsRefused) {
  test::TempDir tmp;
  write_file_atomic(tmp.file("flat.nii"), with_sform_entry(tmp, 2, 2, 0.0f));
  test::expect_error_containing([&] { read_image(tmp.file("flat.nii")); },
                                "the sform is singular (determinant 0)");
}

TEST(NiftiErrors, HeaderDimsAreCheckedBeforeLibniftiConvertsThem) {
  test::TempDir tmp;
  // A NIfTI-2 header whose dim[0] is 100671593 (found by fuzz/nifti): libnifti2 overflowed its
  // stack converting it.
  std::string n2(560, '\0');
  const int32_t n2_size = 540;
  std::memcpy(n2.data(), &n2_size, 4);
  std::memcpy(n2.data() + 4, "n+2\0\r\n\032\n", 8);
  const int64_t dim0 = 100671593;
  std::memcpy(n2.data() + 16, &dim0, 8);
  write_file_atomic(tmp.file("n2.nii"), n2);
  test::expect_error_containing(
      [&] { read_image(tmp.file("n2.nii")); },
      tmp.file("n2.nii") + ": invalid NIfTI header: dim[0] is 100671593, expected 1 to 7");
  // A big-endian NIfTI-1 header with the magic of NIfTI-2 (found by fuzz/nifti: libnifti2
  // returned a wild pointer).
  auto be = read_file(kNib + "anatomical.nii");
  be[346] = '2';
  write_file_atomic(tmp.file("magic.nii"), be);
  test::expect_error_containing([&] { read_image(tmp.file("magic.nii")); },
                                "a 348-byte header with the magic of NIfTI-2");
  be[346] = '1';
  // The same with dim[0] = 9 (the header is byte-swapped before the check).
  be[40] = 0;
  be[41] = 9;
  write_file_atomic(tmp.file("be.nii"), be);
  test::expect_error_containing([&] { read_image(tmp.file("be.nii")); },
                                "dim[0] is 9, expected 1 to 7");
  // A negative size in a used dimension, and dims whose product overflows.
  be[41] = 3;
  be[42] = static_cast<char>(0xff);
  be[43] = static_cast<char>(0xfe);
  write_file_atomic(tmp.file("neg.nii"), be);
  test::expect_error_containing([&] { read_image(tmp.file("neg.nii")); }, "dim[1] is -2");
  int64_t huge[4] = {3, int64_t{1} << 20, int64_t{1} << 20, int64_t{1} << 20};
  std::memcpy(n2.data() + 16, huge, sizeof huge);
  write_file_atomic(tmp.file("huge.nii"), n2);
  test::expect_error_containing([&] { read_image(tmp.file("huge.nii")); },
                                "dims hold more than 2^40 voxels");
}

TEST(NiftiErrors, FailedWriteLeavesThePreviousFileIntact) {
  test::TempDir tmp;
  const auto a = read_image(kNib + "anatomical.nii");
  write_image(a, tmp.file("keep.nii.gz"));
  const auto before = read_file(tmp.file("keep.nii.gz"));
  Image bad;
  bad.data = at::zeros({1, 2, 2, 2}, at::kComplexFloat);
  EXPECT_THROW(write_image(bad, tmp.file("keep.nii.gz")), Error);
  EXPECT_EQ(read_file(tmp.file("keep.nii.gz")), before);
}

TEST(Geometry, OrientationCodesFollowNibabel) {
  Affine a = identity_affine();
  EXPECT_EQ(orientation_code(a), "RAS");
  a[0] = -1;
  a[5] = -1;
  EXPECT_EQ(orientation_code(a), "LPS");
  Affine p{};  // axes permuted: i -> S, j -> R, k -> A
  p[2 * 4 + 0] = 2;
  p[0 * 4 + 1] = 1;
  p[1 * 4 + 2] = -3;
  p[15] = 1;
  EXPECT_EQ(orientation_code(p), "SRP");
  const auto sp = voxel_spacing(p);
  EXPECT_DOUBLE_EQ(sp[0], 2);
  EXPECT_DOUBLE_EQ(sp[2], 3);
  const auto id = matmul(p, inverse(p));
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(id[i], identity_affine()[i], 1e-12);
}

}  // namespace
}  // namespace barton::io
