#pragma once
/// Transport-neutral HTTP requests and responses, and the server that carries them
/// (cpp-httplib behind a pimpl in http_server.cpp, the only file that includes it).

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "serve/multipart.h"

namespace barton::serve {

/// One request as the handlers see it. Ownership: values.
struct Request {
  std::string method;   ///< "GET", "PUT", ...
  std::string path;     ///< Decoded path without the query ("/v1/models").
  std::string version;  ///< "HTTP/1.1" or "HTTP/1.0".
  std::string remote;   ///< Peer address.
  /// Query parameters, decoded (`+` and `%20` both become a space); repeated keys keep all.
  std::multimap<std::string, std::string> query;
  /// Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string body;         ///< Raw body (empty for multipart requests: see parts).
  std::vector<Part> parts;  ///< multipart/form-data parts, in name order.
  /// Path parameters captured by the route ("{name}" segments), in order.
  std::vector<std::string> captures;

  /// The first value of query key `key`, or `fallback`.
  std::string query_value(const std::string& key, const std::string& fallback = "") const;
  bool has_query(const std::string& key) const { return query.count(key) > 0; }
  /// The header `name` (lower case), or "".
  std::string header(const std::string& name) const;
};

/// One reply. Bodies are always sent with Content-Length (never chunked).
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;  ///< Extra headers.

  /// A JSON reply with `status`.
  static Response json(const std::string& json_text, int status = 200);
  /// A structured error: {"code": status, "message": message}.
  static Response error(int status, const std::string& message);
};

/// Decodes an application/x-www-form-urlencoded body (`+` and %XX), keys in order.
std::multimap<std::string, std::string> parse_form(const std::string& body);

/// A route handler. Must not throw; the server answers 500 with the message if one does.
using Handler = std::function<Response(const Request&)>;

struct HttpOptions {
  std::string host = "127.0.0.1";                     ///< Address to bind. Default: 127.0.0.1.
  int port = 5000;                                    ///< 0 picks a free port. Default: 5000.
  int threads = 8;                                    ///< Connection threads. Default: 8.
  std::size_t max_body_bytes = std::size_t{1} << 30;  ///< Larger requests get 413. Default: 1 GiB.
  int read_timeout_s = 60;  ///< A client silent this long mid-request is dropped. Default: 60.
  std::string tls_cert, tls_key;  ///< PEM files; both set = HTTPS. Default: plain HTTP.
  /// Called after every request with the request, the response and the seconds it took.
  std::function<void(const Request&, const Response&, double)> on_done;
};

/// An HTTP(S) server with exact-path and "{param}" routes. Thread-safety: routes are added
/// before start(); start/stop may be called from any thread.
class HttpServer {
 public:
  explicit HttpServer(HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Adds a route. `pattern` segments "{x}" match one path segment (captured in order); a
  /// trailing "/" is optional on both sides, so "/info/" also answers "/info".
  void route(const std::string& method, const std::string& pattern, Handler handler);
  /// Binds and starts serving on background threads; returns the port. Throws Error when the
  /// address cannot be bound or the TLS files cannot be read.
  int start();
  /// Blocks until stop() is called.
  void wait();
  /// Stops accepting and finishes.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace barton::serve
