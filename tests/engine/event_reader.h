#pragma once
/// A TensorBoard event-file reader written for the tests, independent of the writer: it checks the
/// TFRecord framing and both CRCs and decodes the protobuf fields Barton writes.

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace barton::test {

struct EventRecord {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::string tag;
  bool has_scalar = false;
  float scalar = 0;
  bool has_image = false;
  int64_t height = 0, width = 0, colorspace = 0;
  std::string png;
};

inline uint32_t reader_crc32c(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}
inline uint32_t reader_masked(const std::string& s) {
  const uint32_t c = reader_crc32c(s);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

class Proto {
 public:
  explicit Proto(const std::string& b) : b_(b) {}
  bool done() const { return p_ >= b_.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
      if (p_ >= b_.size()) throw std::runtime_error("truncated varint");
      const auto c = static_cast<unsigned char>(b_[p_++]);
      v |= static_cast<uint64_t>(c & 0x7F) << s;
      if (!(c & 0x80)) return v;
    }
    throw std::runtime_error("bad varint");
  }
  std::string bytes() {
    const auto n = varint();
    if (p_ + n > b_.size()) throw std::runtime_error("truncated field");
    auto s = b_.substr(p_, n);
    p_ += n;
    return s;
  }
  template <typename T>
  T fixed() {
    T v;
    if (p_ + sizeof(T) > b_.size()) throw std::runtime_error("truncated fixed field");
    std::memcpy(&v, b_.data() + p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  void skip(int wire) {
    if (wire == 0)
      varint();
    else if (wire == 1)
      p_ += 8;
    else if (wire == 2)
      bytes();
    else if (wire == 5)
      p_ += 4;
    else
      throw std::runtime_error("unknown wire type");
  }

 private:
  const std::string& b_;
  std::size_t p_ = 0;
};

/// Every event of a file; throws on a bad CRC or a truncated record.
inline std::vector<EventRecord> read_events(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<EventRecord> out;
  while (true) {
    std::string len(8, '\0');
    if (!in.read(len.data(), 8)) break;
    uint32_t lc = 0, pc = 0;
    in.read(reinterpret_cast<char*>(&lc), 4);
    if (lc != reader_masked(len)) throw std::runtime_error("bad length CRC");
    uint64_t n = 0;
    std::memcpy(&n, len.data(), 8);
    std::string payload(n, '\0');
    in.read(payload.data(), static_cast<std::streamsize>(n));
    in.read(reinterpret_cast<char*>(&pc), 4);
    if (!in || pc != reader_masked(payload))
      throw std::runtime_error("bad payload CRC or truncated record");
    Proto ev(payload);
    std::vector<EventRecord> values;  // one record per summary value
    EventRecord base;
    std::vector<std::string> summaries;
    while (!ev.done()) {
      const auto key = ev.varint();
      const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
      if (field == 1 && wire == 1)
        base.wall_time = ev.fixed<double>();
      else if (field == 2 && wire == 0)
        base.step = static_cast<int64_t>(ev.varint());
      else if (field == 3 && wire == 2)
        base.file_version = ev.bytes();
      else if (field == 5 && wire == 2)
        summaries.push_back(ev.bytes());
      else
        ev.skip(wire);
    }
    if (summaries.empty()) out.push_back(base);
    for (const auto& s : summaries) {
      Proto sp(s);
      while (!sp.done()) {
        const auto key = sp.varint();
        if ((key >> 3) != 1) {
          sp.skip(static_cast<int>(key & 7));
          continue;
        }
        const auto vbytes = sp.bytes();
        Proto vp(vbytes);
        EventRecord r = base;
        while (!vp.done()) {
          const auto k = vp.varint();
          const int f = static_cast<int>(k >> 3), w = static_cast<int>(k & 7);
          if (f == 1 && w == 2)
            r.tag = vp.bytes();
          else if (f == 2 && w == 5) {
            r.scalar = vp.fixed<float>();
            r.has_scalar = true;
          } else if (f == 4 && w == 2) {
            const auto ib = vp.bytes();
            Proto ip(ib);
            r.has_image = true;
            while (!ip.done()) {
              const auto ik = ip.varint();
              const int iff = static_cast<int>(ik >> 3), iw = static_cast<int>(ik & 7);
              if (iff == 1)
                r.height = static_cast<int64_t>(ip.varint());
              else if (iff == 2)
                r.width = static_cast<int64_t>(ip.varint());
              else if (iff == 3)
                r.colorspace = static_cast<int64_t>(ip.varint());
              else if (iff == 4)
                r.png = ip.bytes();
              else
                ip.skip(iw);
            }
          } else
            vp.skip(w);
        }
        out.push_back(r);
      }
    }
  }
  return out;
}

}  // namespace barton::test
