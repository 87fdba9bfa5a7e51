#pragma once
/// multipart/form-data as the annotation clients write and read it (docs/serve.md, transport):
/// a tolerant reader (quoted or unquoted boundaries, including the Python clients' `$`; preamble
/// and epilogue skipped; parts with or without Content-Type) and a writer whose replies the
/// Python `cgi` reader and Poco's MultipartReader both accept (no preamble, CRLF line ends).

#include <optional>
#include <string>
#include <vector>

namespace barton::serve {

/// One part of a multipart body. Ownership: values.
struct Part {
  std::string name;           ///< Content-Disposition name="...".
  std::string filename;       ///< Content-Disposition filename="..." ("" for a field).
  bool has_filename = false;  ///< True when a filename parameter was present, even empty.
  std::string content_type;   ///< The part's Content-Type ("" when absent).
  std::string data;           ///< The part's bytes.
  /// A file part: a non-empty filename (`cgi` treats filename="" as a field).
  bool is_file() const { return !filename.empty(); }
};

/// The boundary of a `multipart/...; boundary=...` Content-Type (quotes removed), or nullopt
/// when the type is not multipart or names no boundary.
std::optional<std::string> multipart_boundary(const std::string& content_type);

/// Splits `body` at `boundary`. Throws barton::Error ("multipart body: ...") when no
/// `--boundary` line is found or a part's headers do not end. Thread-safe (pure).
std::vector<Part> parse_multipart(const std::string& body, const std::string& boundary);

/// The first part named `name` (nullptr when absent).
const Part* find_part(const std::vector<Part>& parts, const std::string& name);

/// A multipart reply body. `content_type` is what goes in the reply's header.
struct MultipartBody {
  std::string content_type;
  std::string body;
};

/// Writes `parts` as multipart/form-data with a fresh random boundary that occurs in none of the
/// parts: the first line is the first boundary (no preamble), parts end with CRLF, and the body
/// ends with the closing boundary and CRLF.
MultipartBody write_multipart(const std::vector<Part>& parts);

}  // namespace barton::serve
