#include <cstring>
#include <memory>

#include <libdeflate.h>

#include "core/errors.h"
#include "io/internal/formats.h"
#include <zlib.h>

namespace barton::io::internal {

std::string gunzip(const std::string& path, std::string_view in) {
  std::unique_ptr<libdeflate_decompressor, decltype(&libdeflate_free_decompressor)> d(
      libdeflate_alloc_decompressor(), &libdeflate_free_decompressor);
  if (!d) throw IoError(path, "out of memory while inflating");
  std::string out;
  std::size_t pos = 0;
  while (pos < in.size()) {
    const auto rest = in.substr(pos);
    if (rest.size() < 18 || static_cast<unsigned char>(rest[0]) != 0x1f ||
        static_cast<unsigned char>(rest[1]) != 0x8b) {
      if (pos > 0) break;  // trailing garbage after a complete member: ignore, as gzip does
      throw IoError(path, "not a gzip stream or truncated gzip header");
    }
    // ISIZE (last 4 bytes of a member) is the size modulo 2^32; it is exact for the last member of
    // a single-member file, a hint otherwise. Grow on demand.
    uint32_t isize = 0;
    std::memcpy(&isize, in.data() + in.size() - 4, 4);
    // Deflate cannot expand more than ~1032:1, so a larger ISIZE means a damaged trailer.
    std::size_t capacity = (isize > 0 && isize <= rest.size() * 1032) ? isize : rest.size() * 4;
    while (true) {
      const std::size_t base = out.size();
      out.resize(base + capacity);
      std::size_t in_used = 0, out_made = 0;
      const auto r = libdeflate_gzip_decompress_ex(
          d.get(), rest.data(), rest.size(), out.data() + base, capacity, &in_used, &out_made);
      if (r == LIBDEFLATE_SUCCESS) {
        out.resize(base + out_made);
        pos += in_used;
        break;
      }
      out.resize(base);
      if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
        if (capacity > (std::size_t{1} << 36)) throw IoError(path, "gzip stream too large");
        capacity *= 2;
        continue;
      }
      throw IoError(path, "corrupt or truncated gzip data (libdeflate error " +
                              std::to_string(static_cast<int>(r)) + ")");
    }
  }
  return out;
}

std::string gzip(std::string_view raw, int level) {
  std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)> c(
      libdeflate_alloc_compressor(level), &libdeflate_free_compressor);
  if (!c) throw Error("gzip: cannot allocate compressor");
  std::string out(libdeflate_gzip_compress_bound(c.get(), raw.size()), '\0');
  const auto n = libdeflate_gzip_compress(c.get(), raw.data(), raw.size(), out.data(), out.size());
  if (n == 0) throw Error("gzip: compression failed");
  out.resize(n);
  return out;
}

std::string gzip_blocks(std::string_view head, std::string_view body, int level) {
  // One gzip member (some readers, NiiVue's among them, inflate only the first): a raw deflate
  // stream fully flushed after the header and after every 256 KiB block. A full flush leaves no
  // reference to earlier data and ends byte-aligned, so the bytes that encode a block of zeros
  // there are valid wherever such a block comes again: they are made once and repeated.
  constexpr std::size_t kBlock = std::size_t{1} << 18;
  static const std::string zeros(kBlock, '\0');
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw Error("gzip: cannot start the compressor");
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
  std::string buffer(1 << 16, '\0');
  const auto deflate_piece = [&](std::string_view piece, int flush, std::string& to) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
    z.avail_in = static_cast<uInt>(piece.size());
    do {
      z.next_out = reinterpret_cast<Bytef*>(buffer.data());
      z.avail_out = static_cast<uInt>(buffer.size());
      const int rc = deflate(&z, flush);
      if (rc == Z_STREAM_ERROR) {
        deflateEnd(&z);
        throw Error("gzip: compression failed");
      }
      to.append(buffer.data(), buffer.size() - z.avail_out);
    } while (z.avail_out == 0);
  };
  std::string zero_block;
  deflate_piece(head, Z_FULL_FLUSH, out);
  for (std::size_t at = 0; at < body.size(); at += kBlock) {
    const auto piece = body.substr(at, kBlock);
    if (piece.size() == kBlock && std::memcmp(piece.data(), zeros.data(), kBlock) == 0) {
      if (zero_block.empty()) deflate_piece(zeros, Z_FULL_FLUSH, zero_block);
      out += zero_block;
    } else {
      deflate_piece(piece, Z_FULL_FLUSH, out);
    }
  }
  deflate_piece({}, Z_FINISH, out);
  deflateEnd(&z);
  uint32_t crc = libdeflate_crc32(0, head.data(), head.size());
  crc = libdeflate_crc32(crc, body.data(), body.size());
  const auto size = static_cast<uint32_t>(head.size() + body.size());
  for (const uint32_t v : {crc, size})
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

}  // namespace barton::io::internal
