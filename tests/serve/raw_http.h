#pragma once
// A raw-socket HTTP client for the server tests: sends exactly the bytes a real client sends
// (NVIDIA's Python client's unquoted `$` boundary, the C++ client's HTTP/1.0 with a quoted one)
// and reports the reply as it came off the wire.

#include <map>
#include <string>
#include <vector>

namespace barton::test {

struct RawReply {
  int status = 0;
  std::string status_line;
  std::map<std::string, std::string> headers;  ///< Lower-case names.
  std::string body;
  bool timed_out = false;
  std::string header(const std::string& k) const {
    const auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

/// Sends `request` to 127.0.0.1:`port` and reads the reply (up to Content-Length, or to the
/// close); gives up after `timeout_s`.
RawReply raw_http(int port, const std::string& request, double timeout_s = 60);

/// The fixed boundary of NVIDIA's AIAA Python client (and MONAI Label's), unquoted on the wire.
inline const std::string kPythonBoundary = "----------lImIt_of_THE_fIle_eW_$";

struct FormPart {
  std::string name, filename, content_type, data;
};
/// A multipart body as the Python clients encode it (fields first, `--B--\r\n\r\n` at the end).
std::string python_multipart(const std::vector<FormPart>& parts, const std::string& boundary);

/// A whole Python-client request (HTTP/1.1, lower-case content-type and content-length).
std::string python_request(const std::string& method,
                           const std::string& target,
                           const std::vector<FormPart>& parts);
/// A whole AIAA C++-client request (HTTP/1.0, Connection: Close, quoted boundary).
std::string cpp_client_request(const std::string& method,
                               const std::string& target,
                               const std::vector<FormPart>& parts);
/// A GET / DELETE without a body.
std::string simple_request(const std::string& method, const std::string& target);
/// A request with `body` of `content_type` (JSON, a form).
std::string body_request(const std::string& method,
                         const std::string& target,
                         const std::string& content_type,
                         const std::string& body);
/// `request` with one more header line ("Authorization: bearer X") after the request line.
std::string with_header(const std::string& request, const std::string& header);

}  // namespace barton::test
