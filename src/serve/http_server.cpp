// The HTTP adapter: cpp-httplib is included here and nowhere else.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <thread>

#include "core/errors.h"
#include "core/strings.h"
#include "serve/http.h"
#include "serve/router.h"
#include <httplib.h>

namespace barton::serve {

namespace {

Request to_request(const httplib::Request& in) {
  Request r;
  r.method = in.method;
  r.path = in.path;
  r.version = in.version;
  r.remote = in.remote_addr;
  for (const auto& [k, v] : in.params) r.query.emplace(k, v);
  for (const auto& [k, v] : in.headers) r.headers[to_lower(k)] = v;
  r.body = in.body;
  for (const auto& [name, f] : in.files) {
    Part p;
    p.name = f.name;
    p.filename = f.filename;
    p.has_filename = !f.filename.empty();
    p.content_type = f.content_type;
    p.data = f.content;
    r.parts.push_back(std::move(p));
  }
  return r;
}

void to_response(const Response& in, const Request& req, httplib::Response& out) {
  out.status = in.status;
  for (const auto& [k, v] : in.headers) out.set_header(k, v);
  // HTTP/1.0 clients (the AIAA C++ client) and `Connection: close` ask for one request per
  // connection; httplib compares the header case-sensitively, so say it in its spelling.
  if (req.version == "HTTP/1.0" || to_lower(req.header("connection")) == "close")
    out.set_header("Connection", "close");
  out.set_content(in.body, in.content_type.c_str());
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  Router router;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  int port = 0;

  void handle(const httplib::Request& in, httplib::Response& out) {
    const auto t0 = std::chrono::steady_clock::now();
    auto req = to_request(in);
    const auto res = router.dispatch(req);
    to_response(res, req, out);
    if (options.on_done)
      options.on_done(req, res,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
};

HttpServer::HttpServer(HttpOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::route(const std::string& method, const std::string& pattern, Handler handler) {
  impl_->router.add(method, pattern, std::move(handler));
}

int HttpServer::start() {
  auto& o = impl_->options;
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty())
      throw Error("--tls-cert and --tls-key go together");
    for (const auto& f : {o.tls_cert, o.tls_key})
      if (!std::filesystem::exists(f)) throw IoError(f, "the TLS file does not exist");
    auto s = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!s->is_valid())
      throw IoError(o.tls_cert, "the TLS certificate or key could not be loaded (PEM expected)");
    impl_->server = std::move(s);
  } else {
    impl_->server = std::make_unique<httplib::Server>();
  }
  auto& s = *impl_->server;
  const int threads = std::max(1, o.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_payload_max_length(o.max_body_bytes);
  s.set_read_timeout(o.read_timeout_s, 0);
  s.set_write_timeout(60, 0);
  auto* impl = impl_.get();
  // Methods without a body are answered before httplib reads one: MONAI Label's client can send
  // a stale Content-Length on GET and DELETE with no body behind it.
  s.set_pre_routing_handler([impl](const httplib::Request& in, httplib::Response& out) {
    if (in.method != "GET" && in.method != "HEAD" && in.method != "DELETE" &&
        in.method != "OPTIONS")
      return httplib::Server::HandlerResponse::Unhandled;
    impl->handle(in, out);
    if (in.has_header("Content-Length") && in.get_header_value("Content-Length") != "0")
      out.set_header("Connection", "close");
    return httplib::Server::HandlerResponse::Handled;
  });
  auto body_handler = [impl](const httplib::Request& in, httplib::Response& out) {
    impl->handle(in, out);
  };
  s.Post(".*", body_handler);
  s.Put(".*", body_handler);
  s.Patch(".*", body_handler);
  s.set_error_handler([](const httplib::Request&, httplib::Response& out) {
    if (!out.body.empty()) return;
    const auto r = Response::error(
        out.status, out.status == 413 ? "the request is larger than --max-upload-mb allows"
                                      : "the request could not be read (HTTP " +
                                            std::to_string(out.status) + ")");
    out.set_content(r.body, r.content_type.c_str());
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& out, std::exception_ptr ep) {
        std::string msg = "unknown error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          msg = e.what();
        } catch (...) {
        }
        const auto r = Response::error(500, msg);
        out.status = 500;
        out.set_content(r.body, r.content_type.c_str());
      });
  if (o.port == 0) {
    impl_->port = s.bind_to_any_port(o.host.c_str());
    if (impl_->port <= 0) throw Error("cannot bind " + o.host + " to a free port");
  } else {
    if (!s.bind_to_port(o.host.c_str(), o.port))
      throw Error("cannot bind " + o.host + ":" + std::to_string(o.port) +
                  " (in use, or not an address of this machine)");
    impl_->port = o.port;
  }
  impl_->thread = std::thread([impl] { impl->server->listen_after_bind(); });
  // stop() before the listener runs would be lost (httplib ignores it), so wait until it does.
  for (int i = 0; i < 5000 && !s.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return impl_->port;
}

void HttpServer::wait() {
  if (impl_->thread.joinable()) impl_->thread.join();
}

void HttpServer::stop() {
  if (impl_->server) impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace barton::serve
