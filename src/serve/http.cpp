#include "serve/http.h"

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
