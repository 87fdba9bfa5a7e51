#include "serve/router.h"

#include <exception>

namespace barton::serve {

std::vector<std::string> path_segments(const std::string& path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    if (end > pos) out.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

void Router::add(const std::string& method, const std::string& pattern, Handler handler) {
  Route r;
  r.method = method;
  for (auto& s : path_segments(pattern))
    r.segments.push_back(s.size() > 1 && s.front() == '{' && s.back() == '}' ? "{}" : s);
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

Response Router::dispatch(Request request) const {
  const auto segs = path_segments(request.path);
  bool path_matched = false;
  for (const auto& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    std::vector<std::string> captures;
    bool ok = true;
    for (std::size_t i = 0; i < segs.size() && ok; ++i) {
      if (r.segments[i] == "{}")
        captures.push_back(segs[i]);
      else
        ok = r.segments[i] == segs[i];
    }
    if (!ok) continue;
    path_matched = true;
    const bool head_as_get = request.method == "HEAD" && r.method == "GET";
    if (r.method != request.method && !head_as_get) continue;
    request.captures = std::move(captures);
    try {
      auto res = r.handler(request);
      if (head_as_get) res.body.clear();
      return res;
    } catch (const std::exception& e) {
      return Response::error(500, e.what());
    } catch (...) {
      return Response::error(500, "unknown error");
    }
  }
  if (path_matched)
    return Response::error(405, request.method + " is not allowed on " + request.path);
  return Response::error(404, "no such endpoint: " + request.method + " " + request.path);
}

}  // namespace barton::serve
