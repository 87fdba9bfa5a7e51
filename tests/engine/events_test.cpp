// TensorBoard event files: written by engine::EventWriter, read back by the tests' own reader.
#include "engine/events.h"

#include <filesystem>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "engine/event_reader.h"
#include "support/test_support.h"

namespace barton::engine {
namespace {

namespace fs = std::filesystem;

TEST(EventsTest, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // RFC 3720 check value
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), test::reader_crc32c("123456789"));
}

TEST(EventsTest, ScalarsAndImagesParseBack) {
  test::TempDir tmp;
  std::string path;
  {
    EventWriter w(tmp.path() + "/logs");
    path = w.path();
    w.scalar("train_loss", 0.75, 1);
    w.scalar("train_loss", 0.5, 2);
    w.scalar("val_mean_dice", 0.8125, 1);
    auto img = at::arange(12, at::kByte).reshape({3, 4}) * 20;
    w.image("slice", img, 7);
  }
  EXPECT_EQ(fs::path(path).parent_path().filename(), "logs");
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
  const auto ev = test::read_events(path);
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].file_version, "brain.Event:2");
  EXPECT_EQ(ev[1].tag, "train_loss");
  EXPECT_TRUE(ev[1].has_scalar);
  EXPECT_FLOAT_EQ(ev[1].scalar, 0.75f);
  EXPECT_EQ(ev[1].step, 1);
  EXPECT_FLOAT_EQ(ev[2].scalar, 0.5f);
  EXPECT_EQ(ev[2].step, 2);
  EXPECT_EQ(ev[3].tag, "val_mean_dice");
  EXPECT_FLOAT_EQ(ev[3].scalar, 0.8125f);
  ASSERT_TRUE(ev[4].has_image);
  EXPECT_EQ(ev[4].step, 7);
  EXPECT_EQ(ev[4].height, 3);
  EXPECT_EQ(ev[4].width, 4);
  EXPECT_EQ(ev[4].colorspace, 1);
  EXPECT_GT(ev[4].wall_time, 1.7e9);
  // The PNG decodes (Python's zlib) to the pixels written.
  const auto png = tmp.file("slice.png");
  test::write_text(png, ev[4].png);
  std::string out;
  const std::string py =
      "import sys,zlib,struct\n"
      "b=open(sys.argv[1],'rb').read()\n"
      "assert b[:8]==b'\\x89PNG\\r\\n\\x1a\\n'\n"
      "p=8;idat=b''\n"
      "while p<len(b):\n"
      " n=struct.unpack('>I',b[p:p+4])[0];t=b[p+4:p+8];d=b[p+8:p+8+n];c=struct.unpack('>I',b[p+8+n:"
      "p+12+n])[0]\n"
      " assert zlib.crc32(t+d)==c,'chunk crc'\n"
      " if t==b'IHDR': w,h=struct.unpack('>II',d[:8])\n"
      " if t==b'IDAT': idat+=d\n"
      " p+=12+n\n"
      "raw=zlib.decompress(idat)\n"
      "rows=[raw[i*(w+1)+1:(i+1)*(w+1)] for i in range(h)]\n"
      "print(w,h,' '.join(str(x) for r in rows for x in r))\n";
  test::write_text(tmp.file("png.py"), py);
  ASSERT_EQ(test::run_command("/usr/bin/python3 " + tmp.file("png.py") + " " + png, &out), 0)
      << out;
  EXPECT_EQ(out, "4 3 0 20 40 60 80 100 120 140 160 180 200 220\n");
}

TEST(EventsTest, ACorruptRecordIsDetectedByTheReader) {
  test::TempDir tmp;
  std::string path;
  {
    EventWriter w(tmp.path());
    path = w.path();
    w.scalar("x", 1.0, 1);
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() - 6] ^= 0x01;
  test::write_text(path, bytes);
  EXPECT_THROW(test::read_events(path), std::runtime_error);
}

TEST(EventsTest, OneWriterPerFolder) {
  test::TempDir tmp;
  auto a = EventWriter::for_dir(tmp.path());
  auto b = EventWriter::for_dir(tmp.path() + "/.");
  EXPECT_EQ(a.get(), b.get());
}

}  // namespace
}  // namespace barton::engine
