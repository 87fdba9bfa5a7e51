#include "serve/http.h"

#include <cctype>

#include <nlohmann/json.hpp>

namespace barton::serve {

std::string Request::query_value(const std::string& key, const std::string& fallback) const {
  const auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

std::string Request::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

namespace {
std::string form_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

std::multimap<std::string, std::string> parse_form(const std::string& body) {
  std::multimap<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    auto end = body.find('&', start);
    if (end == std::string::npos) end = body.size();
    const auto pair = body.substr(start, end - start);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      out.emplace(form_decode(pair.substr(0, eq)),
                  eq == std::string::npos ? "" : form_decode(pair.substr(eq + 1)));
    }
    start = end + 1;
  }
  return out;
}

Response Response::json(const std::string& json_text, int status) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json_text;
  return r;
}

Response Response::error(int status, const std::string& message) {
  nlohmann::json j;
  j["code"] = status;
  j["message"] = message;
  return json(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), status);
}

}  // namespace barton::serve
