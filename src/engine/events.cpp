#include "engine/events.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <libdeflate.h>

#include "core/errors.h"
#include <unistd.h>

namespace barton::engine {

namespace {

std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

// Protocol buffer wire format.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_tag(std::string& out, int field, int wire) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | wire);
}
void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}
void put_double(std::string& out, int field, double v) {
  put_tag(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void put_float(std::string& out, int field, float v) {
  put_tag(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
void put_int(std::string& out, int field, int64_t v) {
  put_tag(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));
}

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string event(int64_t step, const std::string& summary) {
  std::string e;
  put_double(e, 1, wall_time());
  put_int(e, 2, step);
  put_bytes(e, 5, summary);
  return e;
}

void put_be32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xFF));
}

void png_chunk(std::string& out, const char* type, std::string_view data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body.append(data);
  out.append(body);
  put_be32(out, static_cast<uint32_t>(libdeflate_crc32(0, body.data(), body.size())));
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  static const auto table = make_crc32c_table();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t c = crc32c(bytes);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string encode_png(const uint8_t* pixels, int width, int height, int channels) {
  BARTON_INTERNAL_ASSERT(channels == 1 || channels == 3 || channels == 4, "PNG of {} channels",
                         channels);
  std::string raw;
  const std::size_t row = static_cast<std::size_t>(width) * channels;
  raw.reserve((row + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');  // filter: none
    raw.append(reinterpret_cast<const char*>(pixels) + y * row, row);
  }
  auto* c = libdeflate_alloc_compressor(6);
  std::string z(libdeflate_zlib_compress_bound(c, raw.size()), '\0');
  const auto n = libdeflate_zlib_compress(c, raw.data(), raw.size(), z.data(), z.size());
  libdeflate_free_compressor(c);
  z.resize(n);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_be32(ihdr, static_cast<uint32_t>(width));
  put_be32(ihdr, static_cast<uint32_t>(height));
  ihdr.push_back(8);                                                             // bit depth
  ihdr.push_back(static_cast<char>(channels == 1 ? 0 : channels == 3 ? 2 : 6));  // colour type
  ihdr.append(3, '\0');  // compression, filter, interlace
  png_chunk(png, "IHDR", ihdr);
  png_chunk(png, "IDAT", z);
  png_chunk(png, "IEND", "");
  return png;
}

EventWriter::EventWriter(const std::string& log_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  if (ec) throw IoError(log_dir, "cannot create the TensorBoard log folder: " + ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  static std::atomic<int> counter{0};
  path_ = (fs::path(log_dir) / fmt::format("events.out.tfevents.{}.{}.{}.{}",
                                           static_cast<int64_t>(wall_time()), host, getpid(),
                                           counter++))
              .string();
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw IoError(path_, "cannot open the event file for writing");
  std::string first;
  put_double(first, 1, wall_time());
  put_bytes(first, 3, "brain.Event:2");
  write_event(first);
  flush();
}

EventWriter::~EventWriter() {
  flush();
}

void EventWriter::write_event(const std::string& payload) {
  // One record, one write, flushed at once: a process killed at any moment leaves the file ending
  // on a whole record (TensorBoard's reader and `--resume` append after it), never half of one.
  std::string record(8, '\0');
  const uint64_t n = payload.size();
  std::memcpy(record.data(), &n, 8);  // little-endian on every platform LibTorch supports
  const uint32_t lc = masked_crc32c(record), pc = masked_crc32c(payload);
  record.append(reinterpret_cast<const char*>(&lc), 4);
  record.append(payload);
  record.append(reinterpret_cast<const char*>(&pc), 4);
  std::lock_guard<std::mutex> lock(mutex_);
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
  out_.flush();
}

void EventWriter::scalar(const std::string& tag, double value, int64_t step) {
  std::string v;
  put_bytes(v, 1, tag);
  put_float(v, 2, static_cast<float>(value));
  std::string s;
  put_bytes(s, 1, v);
  write_event(event(step, s));
}

void EventWriter::image(const std::string& tag, const at::Tensor& image, int64_t step) {
  auto img = image.to(at::kByte).contiguous();
  BARTON_INTERNAL_ASSERT(img.dim() == 2 || (img.dim() == 3 && img.size(2) == 3),
                         "image summary needs [H, W] or [H, W, 3]");
  const int h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1));
  const int ch = img.dim() == 2 ? 1 : 3;
  std::string im;
  put_int(im, 1, h);
  put_int(im, 2, w);
  put_int(im, 3, ch);
  put_bytes(im, 4, encode_png(img.data_ptr<uint8_t>(), w, h, ch));
  std::string v;
  put_bytes(v, 1, tag);
  put_bytes(v, 4, im);
  std::string s;
  put_bytes(s, 1, v);
  write_event(event(step, s));
}

void EventWriter::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  out_.flush();
}

std::shared_ptr<EventWriter> EventWriter::for_dir(const std::string& log_dir) {
  static std::mutex m;
  static std::map<std::string, std::weak_ptr<EventWriter>> writers;
  const auto key = std::filesystem::weakly_canonical(log_dir).string();
  std::lock_guard<std::mutex> lock(m);
  if (auto w = writers[key].lock()) return w;
  auto w = std::make_shared<EventWriter>(log_dir);
  writers[key] = w;
  return w;
}

}  // namespace barton::engine
