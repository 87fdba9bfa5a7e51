// DICOM series: grouping, sorting along the normal, rescale, geometry checked against pydicom,
// and the refusals for inconsistent series (pydicom's test files, Debian python3-pydicom).
#include <filesystem>
#include <fstream>
#include <set>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "io/image.h"
#include "io/internal/dicom_walk.h"
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

// ---------------------------------------------------------------- damaged files (issue #20)
// Debian's GDCM asserts and aborts the process on many of these; each must be an IoError naming
// the file instead, and a file cut inside its pixel data must not read as if it were whole.

const std::string kFiles = "/usr/lib/python3/dist-packages/pydicom/data/test_files/";

TEST(DicomDamaged, ASliceCutAtAnyByteIsAnErrorNamingThatFile) {
  test::TempDir tmp;
  const std::string src = kDir + "98892001/CT5N/";
  for (const auto& e : std::filesystem::directory_iterator(src)) {
    std::filesystem::copy_file(e.path(), tmp.file(e.path().filename().string()));
  }
  const auto whole = read_file(src + "2392");
  int refused = 0, named = 0;
  for (std::size_t n = 1; n < whole.size(); ++n) {
    std::ofstream(tmp.file("2392"), std::ios::binary | std::ios::trunc)
        .write(whole.data(), static_cast<std::streamsize>(n));
    try {
      read_image(tmp.path());
      ADD_FAILURE() << "a slice cut at byte " << n << " was read without an error";
    } catch (const IoError& e) {
      ++refused;
      // Cut inside the 128-byte preamble the file is not DICOM at all; the series then misses a
      // slice. Past it, the error names the damaged file.
      if (n < 132) continue;
      const std::string what = e.what();
      EXPECT_TRUE(what.rfind(tmp.file("2392") + ": ", 0) == 0 &&
                  what.find("truncated DICOM file") != std::string::npos)
          << "cut at " << n << ": " << what;
      ++named;
    }
  }
  EXPECT_EQ(refused, static_cast<int>(whole.size()) - 1);
  EXPECT_EQ(named, static_cast<int>(whole.size()) - 132);
  write_file_atomic(tmp.file("2392"), whole);
  EXPECT_EQ(read_image(tmp.path()).meta.at("slices"), "5");
}

TEST(DicomDamaged, CutInsidePixelDataSaysHowManyBytesRemain) {
  test::expect_error_containing([] { read_image(kFiles + "MR_truncated.dcm"); },
                                "element (7FE0,0010) at byte 1488: declares 8192 bytes but only "
                                "8130 remain: the file is truncated");
}

TEST(DicomDamaged, CutInsideANestedSequenceIsCaught) {
  test::expect_error_containing([] { read_image(kFiles + "rtplan_truncated.dcm"); },
                                "declares 976 bytes but only 711 remain");
}

TEST(DicomDamaged, RtDoseWithoutNumberOfFramesIsAnErrorNotAnAbort) {
  test::expect_error_containing([] { read_image(kFiles + "rtdose_1frame.dcm"); },
                                "RT Dose object without Number of Frames (0028,0008)");
}

TEST(DicomDamaged, PreambleOnlyFileIsTruncated) {
  test::TempDir tmp;
  write_file_atomic(tmp.file("x.dcm"), std::string(100, '\0'));
  test::expect_error_containing([&] { read_image(tmp.file("x.dcm")); },
                                "truncated DICOM file: 100 bytes of preamble");
}

TEST(DicomDamaged, DeflatedDataSetIsWalkedAndItsTruncationCaught) {
  EXPECT_NO_THROW(read_image(kFiles + "image_dfl.dcm"));
  test::TempDir tmp;
  const auto whole = read_file(kFiles + "image_dfl.dcm");
  write_file_atomic(tmp.file("cut.dcm"), std::string_view(whole).substr(0, whole.size() - 200));
  test::expect_error_containing([&] { read_image(tmp.file("cut.dcm")); }, "deflated");
}

TEST(DicomDamaged, TheWalkAcceptsEveryWholeTestFile) {
  // Files pydicom ships as damaged on purpose, or that GDCM cannot read as an image, are left out.
  // UN_sequence, priv_SQ and no_meta_group_length are header-only snippets of image objects (an
  // image SOP class, no pixel data): refused as images whose bytes end before the pixel data.
  const std::set<std::string> damaged = {"MR_truncated.dcm",      "rtplan_truncated.dcm",
                                         "rtdose_1frame.dcm",     "rtdose_expb_1frame.dcm",
                                         "rtdose_rle_1frame.dcm", "UN_sequence.dcm",
                                         "priv_SQ.dcm",           "no_meta_group_length.dcm",
                                         "SC_rgb_jpeg.dcm",       "badVR.dcm"};
  int walked = 0;
  for (const auto& e : std::filesystem::directory_iterator(kFiles)) {
    const auto name = e.path().filename().string();
    if (e.path().extension() != ".dcm" || damaged.count(name)) continue;
    SCOPED_TRACE(name);
    EXPECT_NO_THROW(internal::walk_dicom_file(e.path().string()));
    ++walked;
  }
  EXPECT_GE(walked, 58);
}

TEST(DicomDamaged, AnUnknownValueRepresentationIsRefused) {
  // Found by fuzz/dicom: an explicit VR element with the VR "JS". Where such an element ends is
  // undefined; GDCM took a length from the next element's bytes and allocated 4 GiB.
  test::TempDir tmp;
  auto bytes = read_file(kFiles + "CT_small.dcm");  // explicit VR little endian
  const auto at =
      bytes.find(std::string("\x08\x00\x60\x00"
                             "CS",
                             6));  // Modality (0008,0060)
  ASSERT_NE(at, std::string::npos);
  bytes[at + 4] = 'J';
  write_file_atomic(tmp.file("js.dcm"), bytes);
  test::expect_error_containing(
      [&] { read_image(tmp.file("js.dcm")); },
      "element (0008,0060) at byte " + std::to_string(at) + ": unknown value representation 'JS'");
}

TEST(DicomDamaged, ImplicitVrDataUnderAnExplicitTransferSyntaxIsRefused) {
  // pydicom's SC_rgb_jpeg.dcm: GDCM took about 30 s and gigabytes to read it.
  test::expect_error_containing(
      [] { read_image(kFiles + "SC_rgb_jpeg.dcm"); },
      "the data set is in implicit VR but the transfer syntax 1.2.840.10008.1.2.4.50 says "
      "explicit VR");
}

TEST(DicomDamaged, ImpossibleSamplesPerPixelIsRefused) {
  // Found by fuzz/dicom: Samples per Pixel 6 made GDCM assert (abort) in
  // PixelFormat::SetSamplesPerPixel.
  test::TempDir tmp;
  auto bytes = read_file(kFiles + "CT_small.dcm");  // explicit VR little endian
  const auto at =
      bytes.find(std::string("\x28\x00\x02\x00"
                             "US\x02\x00",
                             8));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 8] = 6;
  write_file_atomic(tmp.file("spp.dcm"), bytes);
  test::expect_error_containing([&] { read_image(tmp.file("spp.dcm")); },
                                "element (0028,0002) at byte " + std::to_string(at + 8) +
                                    ": Samples per Pixel is 6, expected 1, 3 or 4");
}

TEST(DicomDamaged, PixelModuleValuesMustBeOneUs) {
  // Found by fuzz/dicom: High Bit (0028,0102) with the VR 'TM' made GDCM assert (abort) in
  // Attribute::SetFromDataSet.
  test::TempDir tmp;
  auto bytes = read_file(kFiles + "CT_small.dcm");  // explicit VR little endian
  const auto at = bytes.find(std::string("\x28\x00\x02\x01US\x02\x00", 8));
  ASSERT_NE(at, std::string::npos);
  auto tm = bytes;
  tm[at + 4] = 'T';
  tm[at + 5] = 'M';
  write_file_atomic(tmp.file("tm.dcm"), tm);
  test::expect_error_containing([&] { read_image(tmp.file("tm.dcm")); },
                                "element (0028,0102) at byte " + std::to_string(at + 8) +
                                    ": has the value representation TM, not US");
}

TEST(DicomDamaged, TheFileMetaGroupMustFollowThePrefix) {
  // Found by fuzz/dicom: with (8002,0000) as its first element GDCM read this file for a minute.
  test::TempDir tmp;
  auto bytes = read_file(kFiles + "CT_small.dcm");
  ASSERT_EQ(bytes.substr(128, 6), std::string("DICM\x02\x00", 6));
  bytes[133] = '\x80';
  write_file_atomic(tmp.file("meta.dcm"), bytes);
  test::expect_error_containing([&] { read_image(tmp.file("meta.dcm")); },
                                "not of the file meta group (0002)");
}

TEST(DicomDamaged, AnAbortInsideGdcmEndsAChildProcessNotTheReader) {
  // Found by fuzz/dicom: Planar Configuration 2 makes GDCM assert in
  // Bitmap::SetPlanarConfiguration. GDCM first decodes every file in a forked child (io/
  // dicom_guard.cpp), so the reader gets an error naming the file and GDCM's assertion.
  test::TempDir tmp;
  auto bytes = read_file(kFiles + "SC_rgb_small_odd.dcm");  // explicit VR little endian, RGB
  const auto at = bytes.find(std::string("\x28\x00\x06\x00US\x02\x00", 8));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 8] = 2;
  write_file_atomic(tmp.file("pc.dcm"), bytes);
  test::expect_error_containing([&] { read_image(tmp.file("pc.dcm")); },
                                "damaged DICOM file: GDCM stopped while decoding it (signal 6)");
  test::expect_error_containing([&] { read_image(tmp.file("pc.dcm")); },
                                "Assertion `pc == 0 || pc == 1' failed");
}

TEST(DicomDamaged, NumberOfFramesMustBeOneWholeNumber) {
  // pydicom's badVR.dcm holds '1A'; GDCM asserts on Number of Frames it cannot read.
  test::expect_error_containing([] { read_image(kFiles + "badVR.dcm"); },
                                "Number of Frames '1A' is not a whole number");
}

TEST(DicomDamaged, AJpegFrameWhoseHeaderWarnsIsRefusedBeforeGdcmAsserts) {
  // Found by fuzz/dicom: GDCM's JPEG codec reaches assert(0) (abort) on any libjpeg warning while
  // it reads a frame header. Here the APP0 marker of a baseline JPEG frame is overwritten.
  test::TempDir tmp;
  auto bytes = read_file(kFiles + "SC_rgb_jpeg_dcmtk.dcm");
  const auto at = bytes.find("\xFF\xD8\xFF");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NO_THROW(read_image(kFiles + "SC_rgb_jpeg_dcmtk.dcm"));
  bytes[at + 2] = 0;
  bytes[at + 3] = 0;
  write_file_atomic(tmp.file("jpeg.dcm"), bytes);
  test::expect_error_containing([&] { read_image(tmp.file("jpeg.dcm")); },
                                tmp.file("jpeg.dcm") +
                                    ": damaged JPEG pixel data: frame 0: Corrupt JPEG data: 18 "
                                    "extraneous bytes before marker 0xdb");
}

TEST(DicomDamaged, NestingDeeperThanSixtyFourLevelsIsRefused) {
  // Implicit VR little endian: (0008,0016) then 70 nested undefined-length sequences.
  auto put16 = [](std::string& s, uint16_t v) { s += char(v & 0xFF), s += char(v >> 8); };
  auto put32 = [&](std::string& s, uint32_t v) { put16(s, v & 0xFFFF), put16(s, v >> 16); };
  std::string b;
  put16(b, 0x0008), put16(b, 0x0016), put32(b, 2), b += "1";
  b += '\0';
  for (int i = 0; i < 70; ++i) {
    put16(b, 0x0040), put16(b, 0xA730), put32(b, 0xFFFFFFFF);  // a sequence, undefined length
    put16(b, 0xFFFE), put16(b, 0xE000), put32(b, 0xFFFFFFFF);  // an item, undefined length
  }
  test::expect_error_containing([&] { internal::walk_dicom_bytes("deep.dcm", b); },
                                "nested deeper than 64");
}

}  // namespace
}  // namespace barton::io
