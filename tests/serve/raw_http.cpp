#include "serve/raw_http.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace barton::test {

RawReply raw_http(int port, const std::string& request, double timeout_s) {
  RawReply r;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    throw std::runtime_error("connect failed");
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const auto n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int(timeout_s * 1000));
  std::size_t header_end = std::string::npos, want = std::string::npos;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      r.timed_out = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) {
      r.timed_out = true;
      break;
    }
    const auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
    if (header_end == std::string::npos) {
      header_end = in.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string head = in.substr(0, header_end);
        std::transform(head.begin(), head.end(), head.begin(), ::tolower);
        const auto cl = head.find("\r\ncontent-length:");
        if (cl != std::string::npos)
          want = header_end + 4 + std::stoul(head.substr(cl + 17, head.find("\r\n", cl + 2)));
      }
    }
    if (want != std::string::npos && in.size() >= want) break;
  }
  close(fd);
  if (header_end == std::string::npos) return r;
  const std::string head = in.substr(0, header_end);
  r.body = in.substr(header_end + 4);
  std::size_t pos = head.find("\r\n");
  r.status_line = head.substr(0, pos);
  r.status = std::stoi(r.status_line.substr(9, 3));
  while (pos != std::string::npos) {
    const auto next = head.find("\r\n", pos + 2);
    const auto line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string k = line.substr(0, colon);
      std::transform(k.begin(), k.end(), k.begin(), ::tolower);
      auto v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      r.headers[k] = v;
    }
    pos = next;
  }
  return r;
}

std::string python_multipart(const std::vector<FormPart>& parts, const std::string& boundary) {
  std::string body;
  for (const auto& p : parts) {
    body += "--" + boundary + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + p.name + "\"";
    if (!p.filename.empty()) body += "; filename=\"" + p.filename + "\"";
    body += "\r\n";
    if (!p.content_type.empty()) body += "Content-Type: " + p.content_type + "\r\n";
    body += "\r\n" + p.data + "\r\n";
  }
  body += "--" + boundary + "--\r\n\r\n";
  return body;
}

std::string python_request(const std::string& method,
                           const std::string& target,
                           const std::vector<FormPart>& parts) {
  const auto body = python_multipart(parts, kPythonBoundary);
  return method + " " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n"
         "content-type: multipart/form-data; boundary=" +
         kPythonBoundary + "\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string cpp_client_request(const std::string& method,
                               const std::string& target,
                               const std::vector<FormPart>& parts) {
  const std::string boundary = "MIME_boundary_01234567deadbeef";
  const auto body = python_multipart(parts, boundary);
  return method + " " + target +
         " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: Close\r\n"
         "Content-Type: multipart/form-data; boundary=\"" +
         boundary + "\"\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string simple_request(const std::string& method, const std::string& target) {
  return method + " " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n";
}

std::string body_request(const std::string& method,
                         const std::string& target,
                         const std::string& content_type,
                         const std::string& body) {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n" +
         "content-type: " + content_type + "\r\ncontent-length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string with_header(const std::string& request, const std::string& header) {
  const auto eol = request.find("\r\n");
  return request.substr(0, eol + 2) + header + "\r\n" + request.substr(eol + 2);
}

}  // namespace barton::test
