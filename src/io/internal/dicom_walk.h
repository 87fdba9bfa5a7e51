#pragma once
/// A bounds-checking walk over a DICOM file's elements, run before GDCM reads the file.
///
/// Debian's GDCM is built with assertions: a truncated or malformed file aborts the whole process
/// inside GDCM (`gdcmFileMetaInformation.cxx: Assertion`), and a file cut inside its pixel data
/// is read without complaint. The walk reads every element header (file meta, data set, nested
/// sequences and items, encapsulated fragments, deflated data sets) and checks each declared
/// length against the bytes present, so such a file becomes an IoError naming the file, the
/// element and the offset. Internal to barton::io.

#include <string>
#include <string_view>
#include <vector>

namespace barton::io::internal {

/// What the walk learned about one file.
struct DicomFileSummary {
  /// False when the bytes do not start like DICOM (no "DICM" at 128 and no plausible first
  /// element): such files are not part of any series and are left alone.
  bool is_dicom = false;
  std::string series_uid;   ///< (0020,000E), trimmed.
  std::string description;  ///< (0008,103E), trimmed.
  std::string modality;     ///< (0008,0060), trimmed.
  bool has_pixel_data = false;
};

/// Walks a file's bytes; `name` is the path used in errors. Throws IoError(name) when an element
/// runs past the end of the data, a length is impossible, the nesting is deeper than 64 levels, or
/// native pixel data is shorter than Rows x Columns x Samples x Frames x BitsAllocated needs.
DicomFileSummary walk_dicom_bytes(const std::string& name, std::string_view bytes);

/// Whether a file's first 132 bytes (or fewer) start like DICOM: "DICM" at 128, or a first
/// element of group 0x0002 or 0x0008 in either byte order.
bool starts_like_dicom(std::string_view head);

/// Reads `path` and walks it.
DicomFileSummary walk_dicom_file(const std::string& path);

/// Decodes every file with GDCM (header and pixel data) in a forked child process first: GDCM
/// asserts (aborts) on damaged data in ways no walk can list in full, and an abort there must end
/// the child, not the caller. Throws IoError naming the file the child stopped on, with GDCM's
/// assertion message, or when one file takes longer than 30 s to decode. In dicom_guard.cpp.
void check_gdcm_decodes(const std::vector<std::string>& files);

}  // namespace barton::io::internal
