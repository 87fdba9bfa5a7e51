#include "io/png.h"

#include <memory>
#include <vector>

#include <libdeflate.h>

#include "core/errors.h"

namespace barton::io {

namespace {

constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

uint32_t be32(std::string_view b, std::size_t at) {
  return (uint32_t{static_cast<unsigned char>(b[at])} << 24) |
         (uint32_t{static_cast<unsigned char>(b[at + 1])} << 16) |
         (uint32_t{static_cast<unsigned char>(b[at + 2])} << 8) |
         uint32_t{static_cast<unsigned char>(b[at + 3])};
}

void put32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((v >> s) & 0xFF);
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put32(out, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  out += body;
  put32(out, libdeflate_crc32(0, body.data(), body.size()));
}

}  // namespace

std::pair<int, int> png_size(const std::string& name, std::string_view bytes) {
  if (bytes.size() < 33 ||
      bytes.compare(0, 8, std::string_view(reinterpret_cast<const char*>(kSignature), 8)) != 0 ||
      bytes.compare(12, 4, "IHDR") != 0)
    throw IoError(name, "not a PNG file (no PNG signature and IHDR chunk)");
  const uint32_t w = be32(bytes, 16), h = be32(bytes, 20);
  if (w == 0 || h == 0 || w > 65535 || h > 65535)
    throw IoError(
        name, "PNG size " + std::to_string(w) + "x" + std::to_string(h) + " is outside 1..65535");
  return {static_cast<int>(w), static_cast<int>(h)};
}

std::string encode_png_gray8(const uint8_t* pixels, int width, int height) {
  std::string raw;  // each row: filter byte 0, then the pixels
  raw.reserve(static_cast<std::size_t>(height) * (static_cast<std::size_t>(width) + 1));
  for (int y = 0; y < height; ++y) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(pixels) + static_cast<std::size_t>(y) * width,
               static_cast<std::size_t>(width));
  }
  std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)> c(
      libdeflate_alloc_compressor(6), &libdeflate_free_compressor);
  if (!c) throw Error("out of memory compressing a PNG");
  std::string z(libdeflate_zlib_compress_bound(c.get(), raw.size()), '\0');
  z.resize(libdeflate_zlib_compress(c.get(), raw.data(), raw.size(), z.data(), z.size()));
  std::string out(reinterpret_cast<const char*>(kSignature), 8);
  std::string ihdr;
  put32(ihdr, static_cast<uint32_t>(width));
  put32(ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x00\x00\x00\x00",
                      5);  // 8 bits, grayscale, deflate, no filter, no interlace
  chunk(out, "IHDR", ihdr);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", "");
  return out;
}

}  // namespace barton::io
