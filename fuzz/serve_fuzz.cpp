// Every HTTP route of `barton serve` (AIAA v1 and MONAI Label), through the real server on
// loopback: the input is the bytes one client sends on one connection (request line, headers,
// bodies, pipelined requests, anything). The server is started once per process over the tiny
// MMAR of the engine tests and the repository's DeepGrow 3D sample (so that clicks, sessions with
// clicks and /infer/ of an interactive model reach a model that answers), each trained here for
// one epoch, with a datastore of the tiny MMAR's images.
//
// A finding is a crash or sanitizer report in any server thread, a reply that is not HTTP, a 500
// (a handler let an unexpected exception out: hostile input must get a 4xx), or a server that no
// longer answers GET /info/ afterwards.
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "core/logging.h"
#include "fuzz/fuzz_util.h"
#include "serve/server.h"
#include "tests/support/trained_mmars.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

struct Server {
  Server() {
    barton::log::set_level(barton::log::Level::kError);  // no log line per request
    const auto scratch = barton::fuzz::scratch_dir().string();
    const auto mmar = barton::test::train_tiny_mmar(scratch + "/tiny");
    barton::serve::ServerOptions o;
    o.models = {mmar, barton::test::train_deepgrow3d_mmar(scratch + "/deepgrow_3d",
                                                          BARTON_FUZZ_SOURCE_DIR)};
    o.sets = barton::test::deepgrow3d_serve_sets("deepgrow_3d");
    o.datastore = mmar + "/data/imagesTr";
    o.http.port = 0;
    o.http.threads = 4;
    o.http.max_body_bytes = std::size_t{4} << 20;
    o.http.read_timeout_s = 2;  // an incomplete request costs 2 s, not 60
    o.queue_capacity = 4;
    o.device = "cpu";
    o.barton_exe = "/bin/false";  // /train/ starts a child: never this fuzzer itself
    o.session_max_expiry_s = 600;
    o.work_dir = (barton::fuzz::scratch_dir() / "work").string();
    server = std::make_unique<barton::serve::AnnotationServer>(o);
    port = server->start();
  }
  std::unique_ptr<barton::serve::AnnotationServer> server;
  int port = 0;
};

/// Sends `bytes` on one connection and returns what the server answers: everything until it
/// closes the connection, or until 300 ms pass without a byte once the answer has started (the
/// server keeps a connection open for the next request). The sending side is not shut down:
/// cpp-httplib drops the response of a half-closed connection. A request the input leaves
/// incomplete ends at the server's read timeout (2 s here).
std::string exchange(int port, std::string_view bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "serve fuzz: the server no longer accepts connections\n");
    std::abort();
  }
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413, 400) and close before reading everything
    sent += static_cast<std::size_t>(n);
  }
  std::string reply;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int wait_ms = reply.empty() ? 30000 : 300;
    if (::poll(&p, 1, wait_ms) <= 0) break;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

[[noreturn]] void finding(const char* what, const std::string& reply, std::size_t at) {
  std::fprintf(stderr, "serve fuzz: %s at byte %zu of the reply:\n%s\n", what, at,
               reply.substr(at, 600).c_str());
  std::abort();
}

/// Walks the responses in `reply` (pipelined requests give several, each with Content-Length):
/// each must start with an HTTP/1.x status line whose status is below 500, or 503 (queue full).
void check_replies(const std::string& reply) {
  std::size_t at = 0;
  while (at < reply.size()) {
    if (reply.compare(at, 7, "HTTP/1.") != 0 || reply.size() < at + 12) {
      finding("a reply that is not HTTP", reply, at);
    }
    const int status = std::atoi(reply.substr(at + 9, 3).c_str());
    if (status < 100 || status > 599 || (status >= 500 && status != 503)) {
      finding("a 5xx status", reply, at);
    }
    const auto head_end = reply.find("\r\n\r\n", at);
    if (head_end == std::string::npos) finding("a reply without the end of its headers", reply, at);
    std::string head = reply.substr(at, head_end - at);
    for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto cl = head.find("\r\ncontent-length:");
    if (cl == std::string::npos && status != 204 && status != 304 && status >= 200) {
      finding("a reply without Content-Length", reply, at);
    }
    const auto length =
        cl == std::string::npos ? 0 : std::strtoull(head.c_str() + cl + 17, nullptr, 10);
    at = head_end + 4 + length;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Server server;
  static unsigned runs = 0;
  check_replies(exchange(server.port, barton::fuzz::as_view(data, size)));
  // BARTON_FUZZ_SERVE_CHECK_EVERY=1 checks after every input (to find the one that hurts).
  static const unsigned every = [] {
    const char* e = std::getenv("BARTON_FUZZ_SERVE_CHECK_EVERY");
    return e && std::atoi(e) > 0 ? static_cast<unsigned>(std::atoi(e)) : 64u;
  }();
  if (++runs % every == 0) {
    const char* kInfo = "GET /info/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    auto info = exchange(server.port, kInfo);
    if (info.rfind("HTTP/1.1 200", 0) != 0) {
      // Once more after a pause, to tell a server that is busy from one that is gone.
      const int first_errno = errno;
      ::sleep(2);
      const auto again = exchange(server.port, kInfo);
      std::fprintf(stderr,
                   "serve fuzz: GET /info/ failed after %u inputs (%zu bytes, errno %d: %s); "
                   "2 s later: %s\n",
                   runs, info.size(), first_errno, std::strerror(first_errno),
                   again.substr(0, 200).c_str());
      std::abort();
    }
  }
  return 0;
}
