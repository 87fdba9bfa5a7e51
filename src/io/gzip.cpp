#include <cstring>
#include <memory>

#include <libdeflate.h>

#include "core/errors.h"
#include "io/internal/formats.h"

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
  constexpr std::size_t kBlock = std::size_t{1} << 18;
  std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)> c(
      libdeflate_alloc_compressor(level), &libdeflate_free_compressor);
  if (!c) throw Error("gzip: cannot allocate compressor");
  std::string out, zero_member;
  std::string buffer(libdeflate_gzip_compress_bound(c.get(), std::max(kBlock, head.size())), '\0');
  const auto member = [&](std::string_view piece, std::string& to) {
    const auto n =
        libdeflate_gzip_compress(c.get(), piece.data(), piece.size(), buffer.data(), buffer.size());
    if (n == 0) throw Error("gzip: compression failed");
    to.append(buffer.data(), n);
  };
  static const std::string zeros(kBlock, '\0');
  member(head, out);
  for (std::size_t at = 0; at < body.size(); at += kBlock) {
    const auto piece = body.substr(at, kBlock);
    if (piece.size() == kBlock && std::memcmp(piece.data(), zeros.data(), kBlock) == 0) {
      if (zero_member.empty()) member(zeros, zero_member);
      out += zero_member;
    } else {
      member(piece, out);
    }
  }
  return out;
}

}  // namespace barton::io::internal
