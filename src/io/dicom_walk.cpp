#include "io/internal/dicom_walk.h"

#include <array>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include <fmt/format.h>
#include <libdeflate.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include <jpeglib.h>

namespace barton::io::internal {

namespace {

constexpr uint32_t kUndefined = 0xFFFFFFFFu;
constexpr int kMaxDepth = 64;

constexpr uint32_t tag_of(uint16_t group, uint16_t element) {
  return (static_cast<uint32_t>(group) << 16) | element;
}
constexpr uint32_t kItem = tag_of(0xFFFE, 0xE000);
constexpr uint32_t kItemEnd = tag_of(0xFFFE, 0xE00D);
constexpr uint32_t kSequenceEnd = tag_of(0xFFFE, 0xE0DD);
constexpr uint32_t kPixelData = tag_of(0x7FE0, 0x0010);

/// Pixel Data, Float Pixel Data or Double Float Pixel Data.
constexpr bool is_pixel_data(uint32_t tag) {
  return tag == kPixelData || tag == tag_of(0x7FE0, 0x0008) || tag == tag_of(0x7FE0, 0x0009);
}

/// Whether a SOP Class UID is an image storage class (CT, MR, US, CR, DX, MG, NM, PET, XA, RF,
/// SC, VL, Enhanced and Legacy objects, parametric maps, RT Image and RT Dose), whose files end
/// with pixel data. Structured reports, presentation states, RT plans and structures, waveforms
/// and encapsulated documents are not.
bool is_image_sop_class(const std::string& uid) {
  static const std::string kStorage = "1.2.840.10008.5.1.4.1.1.";
  if (uid.rfind(kStorage, 0) != 0) return false;
  const std::string rest = uid.substr(kStorage.size());
  if (rest == "481.1" || rest == "481.2") return true;
  const std::string first = rest.substr(0, rest.find('.'));
  static const std::array<std::string_view, 13> kImage = {"1",  "2",  "3",  "4",  "6",   "7",  "12",
                                                          "13", "20", "30", "77", "128", "130"};
  for (auto k : kImage) {
    if (k == first) return true;
  }
  return false;
}

bool is_vr_letter(char c) {
  return c >= 'A' && c <= 'Z';
}

/// VRs whose explicit encoding has two reserved bytes and a 32-bit length.
bool has_long_length(std::string_view vr) {
  static constexpr std::array<std::string_view, 13> kLong = {
      "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};
  for (auto v : kLong) {
    if (v == vr) return true;
  }
  return false;
}

/// VRs whose explicit encoding has a 16-bit length (PS3.5 Table 7.1-2).
bool has_short_length(std::string_view vr) {
  static constexpr std::array<std::string_view, 20> kShort = {
      "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS",
      "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL"};
  for (auto v : kShort) {
    if (v == vr) return true;
  }
  return vr == "US";
}

std::string trimmed(std::string_view v) {
  std::size_t b = 0, e = v.size();
  while (b < e && (v[b] == ' ' || v[b] == '\0')) ++b;
  while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\0')) --e;
  return std::string(v.substr(b, e - b));
}

/// Raw DEFLATE (no zlib or gzip wrapper), as the Deflated Explicit VR Little Endian transfer
/// syntax stores the data set.
std::string inflate_raw(const std::string& name, std::string_view in) {
  std::unique_ptr<libdeflate_decompressor, decltype(&libdeflate_free_decompressor)> d(
      libdeflate_alloc_decompressor(), &libdeflate_free_decompressor);
  if (!d) throw IoError(name, "out of memory while inflating a deflated DICOM data set");
  std::size_t capacity = in.size() * 4 + 1024;
  while (true) {
    std::string out(capacity, '\0');
    std::size_t made = 0;
    const auto r =
        libdeflate_deflate_decompress(d.get(), in.data(), in.size(), out.data(), capacity, &made);
    if (r == LIBDEFLATE_SUCCESS) {
      out.resize(made);
      return out;
    }
    if (r != LIBDEFLATE_INSUFFICIENT_SPACE || capacity > (std::size_t{1} << 32)) {
      throw IoError(name, "corrupt or truncated deflated DICOM data set");
    }
    capacity *= 4;
  }
}

/// One element header.
struct Header {
  uint32_t tag = 0;
  std::string_view vr;  ///< Empty for implicit VR and for items and delimiters.
  uint32_t length = 0;
  std::size_t value = 0;  ///< Offset of the value.
};

/// The walk over one encoding (byte order + explicit/implicit VR) of a byte range.
class Walker {
 public:
  Walker(const std::string& name, std::string_view bytes, DicomFileSummary& out)
      : name_(name), b_(bytes), out_(out) {}

  bool big_endian = false;
  bool explicit_vr = true;

  /// Walks elements from `pos` to `end` (or to an item delimiter when `in_undefined_item`).
  /// Returns the offset after the last element (after the delimiter when one ended the walk).
  std::size_t dataset(std::size_t pos, std::size_t end, bool in_undefined_item, int depth);

  /// Walks the file meta group (always explicit VR little endian) from `pos`; returns the
  /// transfer syntax UID (empty when absent) and sets `pos` after the group.
  std::string meta(std::size_t& pos);

  /// Guesses explicit vs implicit VR from the first element at `pos`.
  void sniff_vr(std::size_t pos) {
    explicit_vr = pos + 6 <= b_.size() && is_vr_letter(b_[pos + 4]) && is_vr_letter(b_[pos + 5]);
  }

  uint16_t u16(std::size_t at) const {
    const auto x = static_cast<uint8_t>(b_[at]), y = static_cast<uint8_t>(b_[at + 1]);
    return big_endian ? static_cast<uint16_t>((x << 8) | y) : static_cast<uint16_t>((y << 8) | x);
  }
  uint32_t u32(std::size_t at) const {
    const uint32_t lo = u16(at), hi = u16(at + 2);
    return big_endian ? (lo << 16) | hi : (hi << 16) | lo;
  }

  void check_pixel_data_length() const;

  /// Top-level encapsulated fragments that begin with a JPEG SOI marker (frame starts).
  std::vector<std::string_view> frame_starts;

  const std::string& sop_class() const { return sop_class_; }

 private:
  [[noreturn]] void fail(std::size_t at, uint32_t tag, const std::string& what) const {
    throw IoError(name_, fmt::format("malformed or truncated DICOM file: element ({:04X},{:04X}) "
                                     "at byte {}: {}",
                                     tag >> 16, tag & 0xFFFF, at, what));
  }
  Header header(std::size_t pos, std::size_t end) const;
  std::size_t sequence(const Header& h, std::size_t end, bool fragments, int depth);
  std::size_t items(std::size_t pos, std::size_t end, bool undefined, bool fragments, int depth);
  void remember(const Header& h);

  const std::string& name_;
  std::string_view b_;
  DicomFileSummary& out_;
  // Image geometry from the top-level data set, for the pixel data length check.
  uint32_t rows_ = 0, cols_ = 0, samples_ = 1, bits_ = 0, frames_ = 1;
  uint64_t pixel_bytes_ = 0;
  bool pixel_native_ = false;
  std::string photometric_, sop_class_;
  bool has_frames_ = false;
  std::string dataset_sop_class_;  ///< (0008,0016), which may differ from the meta's (0002,0002).
};

Header Walker::header(std::size_t pos, std::size_t end) const {
  if (pos + 8 > end)
    fail(pos, 0, fmt::format("only {} bytes left for an element header", end - pos));
  Header h;
  h.tag = tag_of(u16(pos), u16(pos + 2));
  if ((h.tag >> 16) == 0xFFFE || !explicit_vr) {
    h.length = u32(pos + 4);
    h.value = pos + 8;
    return h;
  }
  h.vr = b_.substr(pos + 4, 2);
  if (!is_vr_letter(h.vr[0]) || !is_vr_letter(h.vr[1])) {
    fail(pos, h.tag, "the value representation is not two capital letters");
  }
  if (has_long_length(h.vr)) {
    if (pos + 12 > end) fail(pos, h.tag, "the element header is cut short");
    h.length = u32(pos + 8);
    h.value = pos + 12;
  } else if (has_short_length(h.vr)) {
    h.length = u16(pos + 6);
    h.value = pos + 8;
  } else {
    // GDCM and the walk would disagree on where such an element ends (a fuzzed 'JS' made GDCM
    // allocate 4 GiB for a length it read from the next element's bytes).
    fail(pos, h.tag, "unknown value representation '" + std::string(h.vr) + "'");
  }
  return h;
}

void Walker::remember(const Header& h) {
  const auto v = b_.substr(h.value, h.length);
  auto us = [&]() -> uint32_t { return h.length >= 2 ? u16(h.value) : 0; };
  switch (h.tag) {
    case tag_of(0x0028, 0x0002):
    case tag_of(0x0028, 0x0010):
    case tag_of(0x0028, 0x0011):
    case tag_of(0x0028, 0x0100):
    case tag_of(0x0028, 0x0101):
    case tag_of(0x0028, 0x0102):
    case tag_of(0x0028, 0x0103):
      // GDCM reads these as one US value and asserts (aborts) on another VR (fuzz/dicom: High
      // Bit as 'TM') or another length.
      if (!h.vr.empty() && h.vr != "US")
        fail(h.value, h.tag, "has the value representation " + std::string(h.vr) + ", not US");
      if (h.length != 2)
        fail(h.value, h.tag, fmt::format("holds {} bytes, not one US value (2 bytes)", h.length));
      break;
    default:
      break;
  }
  switch (h.tag) {
    case tag_of(0x0020, 0x000E):
      out_.series_uid = trimmed(v);
      break;
    case tag_of(0x0008, 0x103E):
      out_.description = trimmed(v);
      break;
    case tag_of(0x0008, 0x0060):
      out_.modality = trimmed(v);
      break;
    case tag_of(0x0028, 0x0010):
      rows_ = us();
      break;
    case tag_of(0x0028, 0x0011):
      cols_ = us();
      break;
    case tag_of(0x0028, 0x0002):
      samples_ = us();
      // GDCM asserts (aborts) on any other count (found by fuzz/dicom: 6).
      if (samples_ != 1 && samples_ != 3 && samples_ != 4) {
        fail(h.value, h.tag, fmt::format("Samples per Pixel is {}, expected 1, 3 or 4", samples_));
      }
      break;
    case tag_of(0x0028, 0x0100):
      bits_ = us();
      break;
    case tag_of(0x0028, 0x0004):
      photometric_ = trimmed(v);
      break;
    case tag_of(0x0008, 0x0016):
      dataset_sop_class_ = trimmed(v);
      if (sop_class_.empty()) sop_class_ = dataset_sop_class_;
      break;
    case tag_of(0x0028, 0x0008): {
      const auto s = trimmed(v);
      // GDCM asserts (aborts) on an empty Number of Frames.
      if (s.empty()) fail(h.value, h.tag, "Number of Frames is present but empty");
      // GDCM asserts on a Number of Frames it cannot read as one IS value (found by fuzz/dicom).
      if (!h.vr.empty() && h.vr != "IS") {
        fail(h.value, h.tag,
             "Number of Frames has the value representation " + std::string(h.vr) + ", not IS");
      }
      uint32_t n = 0;
      for (char c : s) {
        if (c < '0' || c > '9' || n > 100000000) {
          fail(h.value, h.tag, "Number of Frames '" + s + "' is not a whole number");
        }
        n = n * 10 + static_cast<uint32_t>(c - '0');
      }
      frames_ = n > 0 ? n : 1;
      has_frames_ = true;
      break;
    }
    default:
      break;
  }
}

std::size_t Walker::dataset(std::size_t pos, std::size_t end, bool in_undefined_item, int depth) {
  if (depth > kMaxDepth) fail(pos, 0, fmt::format("sequences nested deeper than {}", kMaxDepth));
  while (pos < end) {
    const Header h = header(pos, end);
    if (h.tag == kItemEnd) {
      if (in_undefined_item) return h.value;
      fail(pos, h.tag, "an item delimiter outside an item");
    }
    if (h.tag == kItem || h.tag == kSequenceEnd) fail(pos, h.tag, "an item tag outside a sequence");
    const bool sq = h.vr == "SQ" || (h.vr.empty() && h.length == kUndefined);
    if (h.length == kUndefined) {
      if (!sq && h.vr != "UN" && h.tag != kPixelData) {
        fail(pos, h.tag, "an undefined length on a value that cannot have one");
      }
      if (h.vr == "UN" && h.tag != kPixelData) {
        // An undefined-length UN holds an implicit VR little endian sequence.
        const bool was_big = big_endian, was_explicit = explicit_vr;
        big_endian = false;
        explicit_vr = false;
        pos = sequence(h, end, false, depth);
        big_endian = was_big;
        explicit_vr = was_explicit;
        continue;
      }
      pos = sequence(h, end, h.tag == kPixelData, depth);
      if (h.tag == kPixelData && depth == 0) out_.has_pixel_data = true;
      continue;
    }
    if (h.length > end - h.value) {
      fail(pos, h.tag,
           fmt::format("declares {} bytes but only {} remain: the file is truncated", h.length,
                       end - h.value));
    }
    if (sq) {
      items(h.value, h.value + h.length, false, false, depth + 1);
    } else if (depth == 0) {
      remember(h);
      if (is_pixel_data(h.tag)) {
        out_.has_pixel_data = true;
        pixel_native_ = true;
        pixel_bytes_ = h.length;
      }
    }
    pos = h.value + h.length;
  }
  if (in_undefined_item) fail(pos, kItem, "the item never ends: the file is truncated");
  return pos;
}

std::size_t Walker::sequence(const Header& h, std::size_t end, bool fragments, int depth) {
  return items(h.value, end, true, fragments, depth + 1);
}

std::size_t Walker::items(
    std::size_t pos, std::size_t end, bool undefined, bool fragments, int depth) {
  if (depth > kMaxDepth) fail(pos, 0, fmt::format("sequences nested deeper than {}", kMaxDepth));
  while (pos < end) {
    if (pos + 8 > end) fail(pos, 0, "an item header is cut short: the file is truncated");
    const uint32_t tag = tag_of(u16(pos), u16(pos + 2));
    const uint32_t length = u32(pos + 4);
    if (tag == kSequenceEnd) {
      if (undefined) return pos + 8;
      fail(pos, tag, "a sequence delimiter in a sequence of defined length");
    }
    if (tag != kItem) fail(pos, tag, "expected an item in a sequence");
    const std::size_t value = pos + 8;
    if (length == kUndefined) {
      if (fragments) fail(pos, tag, "an encapsulated pixel data fragment of undefined length");
      pos = dataset(value, end, true, depth);
      continue;
    }
    if (length > end - value) {
      fail(pos, tag,
           fmt::format("an item declares {} bytes but only {} remain: the file is truncated",
                       length, end - value));
    }
    if (!fragments) dataset(value, value + length, false, depth);
    if (fragments && depth == 1 && length >= 2 && static_cast<uint8_t>(b_[value]) == 0xFF &&
        static_cast<uint8_t>(b_[value + 1]) == 0xD8) {
      frame_starts.push_back(b_.substr(value, length));  // a fragment that starts a JPEG frame
    }
    pos = value + length;
  }
  if (undefined) fail(pos, kSequenceEnd, "the sequence never ends: the file is truncated");
  return pos;
}

std::string Walker::meta(std::size_t& pos) {
  const bool was_big = big_endian, was_explicit = explicit_vr;
  big_endian = false;
  explicit_vr = true;
  std::string syntax;
  while (pos + 8 <= b_.size() && u16(pos) == 0x0002) {
    const Header h = header(pos, b_.size());
    if (h.length == kUndefined || h.length > b_.size() - h.value) {
      fail(pos, h.tag, "a file meta element runs past the end of the file: the file is truncated");
    }
    if (h.tag == tag_of(0x0002, 0x0010)) syntax = trimmed(b_.substr(h.value, h.length));
    if (h.tag == tag_of(0x0002, 0x0002)) sop_class_ = trimmed(b_.substr(h.value, h.length));
    pos = h.value + h.length;
  }
  big_endian = was_big;
  explicit_vr = was_explicit;
  return syntax;
}

void Walker::check_pixel_data_length() const {
  if (!out_.has_pixel_data && is_image_sop_class(sop_class_)) {
    throw IoError(name_, fmt::format("malformed or truncated DICOM file: an image (SOP class {}) "
                                     "whose {} bytes end before its Pixel Data (7FE0,0010)",
                                     sop_class_, b_.size()));
  }
  // GDCM reads an RT Dose image as multi-frame and asserts (aborts) without Number of Frames.
  // Either SOP class may be the one GDCM goes by (fuzz/dicom: meta and data set disagreed).
  constexpr std::string_view kRtDose = "1.2.840.10008.5.1.4.1.1.481.2";
  if (out_.has_pixel_data && (sop_class_ == kRtDose || dataset_sop_class_ == kRtDose) &&
      !has_frames_) {
    throw IoError(name_,
                  "RT Dose object without Number of Frames (0028,0008), which an RT Dose "
                  "image needs");
  }
  if (!pixel_native_ || rows_ == 0 || cols_ == 0 || bits_ == 0) return;
  // 4:2:2 YCbCr stores two luma samples and one pair of chroma samples per two pixels.
  const bool ybr422 = photometric_ == "YBR_FULL_422" || photometric_ == "YBR_PARTIAL_422";
  const uint64_t per_pixel = ybr422 && samples_ == 3 ? 2 : samples_;
  const uint64_t bits = uint64_t{rows_} * cols_ * per_pixel * frames_ * bits_;
  const uint64_t need = (bits + 7) / 8;
  if (pixel_bytes_ < need) {
    throw IoError(name_, fmt::format("malformed or truncated DICOM file: pixel data holds {} bytes "
                                     "but {} rows x {} columns x {} samples x {} frames x {} bits "
                                     "need {}",
                                     pixel_bytes_, rows_, cols_, samples_, frames_, bits_, need));
  }
}

/// Whether the first element at 0 looks like DICOM without a preamble (group 0x0002 or 0x0008),
/// and its byte order.
bool looks_like_bare_dicom(std::string_view b, bool& big_endian) {
  if (b.size() < 8) return false;
  const auto g0 = static_cast<uint8_t>(b[0]), g1 = static_cast<uint8_t>(b[1]);
  const uint16_t le = static_cast<uint16_t>(g0 | (g1 << 8));
  const uint16_t be = static_cast<uint16_t>((g0 << 8) | g1);
  if (le == 0x0002 || le == 0x0008) {
    big_endian = false;
    return true;
  }
  if (be == 0x0008) {
    big_endian = true;
    return true;
  }
  return false;
}

}  // namespace

bool starts_like_dicom(std::string_view head) {
  bool big = false;
  const bool only_preamble =
      !head.empty() && head.size() <= 132 && head.find_first_not_of('\0') == std::string_view::npos;
  return only_preamble || (head.size() >= 132 && head.substr(128, 4) == "DICM") ||
         looks_like_bare_dicom(head, big);
}

namespace {

struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  int warnings = 0;
  char message[JMSG_LENGTH_MAX] = {0};
};

void jpeg_error_exit(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

void jpeg_emit(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  if (e->warnings++ == 0) (*c->err->format_message)(c, e->message);
}

/// GDCM's JPEG codec (JPEGBITSCodec::GetHeaderInfo) reaches assert(0), aborting the process, when
/// reading a frame's JPEG header gives any warning (a damaged stream: "extraneous bytes before
/// marker"), when the components fit no colour space it knows, or for YCCK (found by fuzz/dicom).
/// The header is read here with libjpeg first; a header libjpeg cannot read at all is left to
/// GDCM, which handles that case (12-bit data, for one, needs GDCM's other codec).
void check_jpeg_header(const std::string& name, std::string_view frame, std::size_t index) {
  jpeg_decompress_struct cinfo{};
  JpegErrors err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_error_exit;
  err.pub.emit_message = jpeg_emit;
  std::string problem;
  if (setjmp(err.jump) == 0) {
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(frame.data()),
                 static_cast<unsigned long>(frame.size()));
    jpeg_read_header(&cinfo, TRUE);
    if (err.warnings > 0) {
      problem = err.message;
    } else if (cinfo.num_components != 1 && cinfo.num_components != 3 &&
               cinfo.num_components != 4) {
      problem = fmt::format("{} colour components", cinfo.num_components);
    } else if (cinfo.jpeg_color_space == JCS_YCCK) {
      problem = "the YCCK colour space";
    }
  }
  jpeg_destroy_decompress(&cinfo);
  if (!problem.empty()) {
    throw IoError(name, fmt::format("damaged JPEG pixel data: frame {}: {}", index, problem));
  }
}

}  // namespace

DicomFileSummary walk_dicom_bytes(const std::string& name, std::string_view bytes) {
  DicomFileSummary out;
  Walker w(name, bytes, out);
  std::size_t pos = 0;
  std::string syntax;
  if (bytes.size() >= 132 && bytes.substr(128, 4) == "DICM") {
    pos = 132;
    // PS3.10: the file meta information (group 0002) follows the prefix. GDCM spends a minute
    // guessing at a file whose first element is of another group (fuzz/dicom: (8002,0000)).
    if (bytes.size() >= 134 &&
        (static_cast<uint8_t>(bytes[132]) | static_cast<uint8_t>(bytes[133]) << 8) != 0x0002)
      throw IoError(name,
                    "malformed DICOM file: the element after the DICM prefix (byte 132) is "
                    "not of the file meta group (0002)");
    syntax = w.meta(pos);
  } else {
    bool big = false;
    if (!bytes.empty() && bytes.size() <= 132 &&
        bytes.find_first_not_of('\0') == std::string_view::npos) {
      throw IoError(name, fmt::format("truncated DICOM file: {} bytes of preamble and nothing else",
                                      bytes.size()));
    }
    if (!looks_like_bare_dicom(bytes, big)) return out;
    if (!big) syntax = w.meta(pos);
    w.big_endian = big;
  }
  out.is_dicom = true;
  if (pos >= bytes.size()) {
    throw IoError(name, fmt::format("truncated DICOM file: its {} bytes end after the file meta "
                                    "information, before the data set",
                                    bytes.size()));
  }
  if (syntax == "1.2.840.10008.1.2.1.99") {
    const std::string inflated = inflate_raw(name, bytes.substr(pos));
    DicomFileSummary inner;
    Walker d(name, inflated, inner);
    d.sniff_vr(0);
    d.dataset(0, inflated.size(), false, 0);
    d.check_pixel_data_length();
    inner.is_dicom = true;
    return inner;
  }
  if (syntax == "1.2.840.10008.1.2.2") w.big_endian = true;
  w.sniff_vr(pos);
  if (!w.explicit_vr && !syntax.empty() && syntax != "1.2.840.10008.1.2" &&
      pos + 6 <= bytes.size()) {
    // GDCM reads such files, but spends 8-30 s and gigabytes guessing (pydicom's SC_rgb_jpeg.dcm
    // and a fuzzed file); the file contradicts itself, so it is refused.
    throw IoError(name, "the data set is in implicit VR but the transfer syntax " + syntax +
                            " says explicit VR");
  }
  w.dataset(pos, bytes.size(), false, 0);
  w.check_pixel_data_length();
  // Baseline and extended JPEG (libjpeg has no lossless process to compare with).
  if (syntax == "1.2.840.10008.1.2.4.50" || syntax == "1.2.840.10008.1.2.4.51") {
    for (std::size_t i = 0; i < w.frame_starts.size(); ++i) {
      check_jpeg_header(name, w.frame_starts[i], i);
    }
  }
  return out;
}

DicomFileSummary walk_dicom_file(const std::string& path) {
  const std::string bytes = read_file(path);
  return walk_dicom_bytes(path, bytes);
}

}  // namespace barton::io::internal
