#pragma once
/// Route matching for HttpServer: exact segments and "{param}" segments, trailing slash optional.

#include <string>
#include <vector>

#include "serve/http.h"

namespace barton::serve {

/// Routes by method and path. Thread-safety: add() before concurrent dispatch().
class Router {
 public:
  void add(const std::string& method, const std::string& pattern, Handler handler);
  /// Answers `request` (its captures filled in): 404 when no path matches, 405 when the path
  /// matches under another method. A handler that throws gives 500 with the message.
  Response dispatch(Request request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{}" = capture
    Handler handler;
  };
  std::vector<Route> routes_;
};

/// Path segments of "/a/b/" = {"a", "b"} (empty segments dropped).
std::vector<std::string> path_segments(const std::string& path);

}  // namespace barton::serve
