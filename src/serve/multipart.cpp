#include "serve/multipart.h"

#include <algorithm>
#include <cctype>
#include <random>

#include "core/errors.h"
#include "core/strings.h"

namespace barton::serve {

namespace {

/// The value of parameter `key` in a header such as `form-data; name="a"; filename="b"`, quoted
/// or not; nullopt when absent. Parameter names compare case-insensitively.
std::optional<std::string> header_param(const std::string& header, const std::string& key) {
  std::size_t i = header.find(';');
  while (i != std::string::npos) {
    ++i;
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
    const auto eq = header.find('=', i);
    if (eq == std::string::npos) return std::nullopt;
    const auto name = to_lower(trim(header.substr(i, eq - i)));
    std::size_t j = eq + 1;
    std::string value;
    if (j < header.size() && header[j] == '"') {
      ++j;
      while (j < header.size() && header[j] != '"') {
        if (header[j] == '\\' && j + 1 < header.size()) ++j;
        value += header[j++];
      }
      i = header.find(';', j);
    } else {
      const auto end = header.find(';', j);
      value = trim(header.substr(j, end == std::string::npos ? std::string::npos : end - j));
      i = end;
    }
    if (name == key) return value;
  }
  return std::nullopt;
}

/// Fills a part's fields from its header block (lines separated by CRLF or LF).
void read_part_headers(const std::string& block, Part& part) {
  std::size_t pos = 0;
  while (pos < block.size()) {
    auto end = block.find('\n', pos);
    if (end == std::string::npos) end = block.size();
    const auto line = trim(block.substr(pos, end - pos));
    pos = end + 1;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto key = to_lower(trim(line.substr(0, colon)));
    const auto value = trim(line.substr(colon + 1));
    if (key == "content-disposition") {
      part.name = header_param(value, "name").value_or("");
      if (auto f = header_param(value, "filename")) {
        part.has_filename = true;
        part.filename = *f;
      }
    } else if (key == "content-type") {
      part.content_type = value;
    }
  }
}

}  // namespace

std::optional<std::string> multipart_boundary(const std::string& content_type) {
  if (to_lower(trim(content_type)).rfind("multipart/", 0) != 0) return std::nullopt;
  auto b = header_param(content_type, "boundary");
  if (!b || b->empty()) return std::nullopt;
  return b;
}

std::vector<Part> parse_multipart(const std::string& body, const std::string& boundary) {
  if (boundary.empty()) throw Error("multipart body: the boundary is empty");
  const std::string delim = "--" + boundary;
  // The first delimiter starts the body or a line (anything before it is preamble).
  std::size_t pos = 0;
  if (body.compare(0, delim.size(), delim) != 0) {
    pos = body.find("\n" + delim);
    if (pos == std::string::npos)
      throw Error("multipart body: no line starts with the boundary '" + delim + "'");
    pos += 1;
  }
  std::vector<Part> parts;
  for (;;) {
    pos += delim.size();
    if (body.compare(pos, 2, "--") == 0) break;  // closing delimiter; the rest is epilogue
    const auto line_end = body.find('\n', pos);
    if (line_end == std::string::npos)
      throw Error("multipart body: the body ends after a boundary without a closing '--'");
    pos = line_end + 1;
    std::size_t header_end = body.find("\r\n\r\n", pos);
    std::size_t data_start = header_end == std::string::npos ? 0 : header_end + 4;
    const auto lf = body.find("\n\n", pos);
    if (lf != std::string::npos && (header_end == std::string::npos || lf < header_end)) {
      header_end = lf;
      data_start = lf + 2;
    }
    if (header_end == std::string::npos)
      throw Error("multipart body: part " + std::to_string(parts.size() + 1) +
                  "'s headers do not end with a blank line");
    Part part;
    read_part_headers(body.substr(pos, header_end - pos), part);
    auto next = body.find("\r\n" + delim, data_start);
    std::size_t data_end = next;
    if (next == std::string::npos) {
      next = body.find("\n" + delim, data_start);
      data_end = next;
    } else {
      next += 1;  // at the '\n'
    }
    if (next == std::string::npos)
      throw Error("multipart body: part " + std::to_string(parts.size() + 1) + " ('" + part.name +
                  "') is not followed by a boundary (truncated body?)");
    part.data = body.substr(data_start, data_end - data_start);
    parts.push_back(std::move(part));
    pos = next + 1;  // at the delimiter
  }
  return parts;
}

const Part* find_part(const std::vector<Part>& parts, const std::string& name) {
  for (const auto& p : parts)
    if (p.name == name) return &p;
  return nullptr;
}

MultipartBody write_multipart(const std::vector<Part>& parts) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string boundary;
  for (;;) {
    boundary = "barton-" + std::to_string(rng());
    bool clash = false;
    for (const auto& p : parts) clash = clash || p.data.find(boundary) != std::string::npos;
    if (!clash) break;
  }
  std::string body;
  std::size_t size = 0;
  for (const auto& p : parts) size += p.data.size() + 200;
  body.reserve(size);
  for (const auto& p : parts) {
    body += "--" + boundary + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + p.name + "\"";
    if (!p.filename.empty()) body += "; filename=\"" + p.filename + "\"";
    body += "\r\n";
    if (!p.content_type.empty()) body += "Content-Type: " + p.content_type + "\r\n";
    body += "\r\n";
    body += p.data;
    body += "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  return {"multipart/form-data; boundary=" + boundary, std::move(body)};
}

}  // namespace barton::serve
