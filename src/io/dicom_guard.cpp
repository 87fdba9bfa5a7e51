// GDCM decodes each DICOM file first in a forked child process, so that an assertion inside GDCM
// (Debian builds it with assertions on: a damaged file aborts the process) ends the child, not
// Barton. See io/internal/dicom_walk.h for the checks that run before this one.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/errors.h"
#include "io/internal/dicom_walk.h"
#include <fcntl.h>
#include <gdcmImageReader.h>
#include <gdcmTrace.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace barton::io::internal {

namespace {

constexpr char kMarker = '\x01';
constexpr int kTimeoutS = 30;  ///< Per file: a legitimate frame decodes in far less.

[[noreturn]] void child(const std::vector<std::string>& files, int out) {
  ::dup2(out, STDERR_FILENO);  // GDCM's warnings and the assertion message go to the parent
  // The parent's crash handlers (a fuzzer's, a sanitizer's) must not claim this child's abort.
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, SIG_DFL);
  gdcm::Trace::WarningOff();
  gdcm::Trace::DebugOff();
  for (std::size_t i = 0; i < files.size(); ++i) {
    char marker[32];
    const int n = std::snprintf(marker, sizeof marker, "\n%c%zu\n", kMarker, i);
    if (::write(out, marker, static_cast<std::size_t>(n)) < 0) ::_exit(3);
    gdcm::ImageReader reader;
    reader.SetFileName(files[i].c_str());
    if (!reader.Read()) continue;  // not decodable: the real read reports it with its message
    const auto& image = reader.GetImage();
    const unsigned long length = image.GetBufferLength();
    if (length == 0 || length > (1ul << 32)) continue;  // the real read refuses these sizes
    std::vector<char> buffer(length);
    image.GetBuffer(buffer.data());
  }
  ::_exit(0);
}

}  // namespace

void check_gdcm_decodes(const std::vector<std::string>& files) {
  if (files.empty()) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw IoError(files.front(), "cannot create a pipe to check the DICOM decode");
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw IoError(files.front(), "cannot fork to check the DICOM decode");
  }
  if (pid == 0) {
    ::close(fds[0]);
    child(files, fds[1]);
  }
  ::close(fds[1]);
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kTimeoutS);
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[4096];
    const ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    text.append(buf, static_cast<std::size_t>(got));
    if (std::memchr(buf, kMarker, static_cast<std::size_t>(got)))  // the next file: its own time
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kTimeoutS);
    if (text.size() > (1u << 20)) text.erase(0, text.size() - 65536);  // keep the end
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // The file the child was on: the last marker line.
  std::size_t index = 0;
  std::string after;
  const auto m = text.rfind(std::string("\n") + kMarker);
  if (m != std::string::npos) {
    const auto eol = text.find('\n', m + 2);
    index = std::stoul(text.substr(m + 2, eol - m - 2));
    after = eol == std::string::npos ? "" : text.substr(eol + 1);
  }
  const auto& file = files.at(std::min(index, files.size() - 1));
  if (timed_out)
    throw IoError(file, fmt::format("GDCM did not finish decoding this DICOM file in {} s "
                                    "(damaged pixel data)",
                                    kTimeoutS));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  // The assertion message, e.g. "gdcmBitmap.cxx:123: ...: Assertion `pc == 0 || pc == 1' failed."
  std::string why;
  const auto a = after.find("Assertion");
  if (a != std::string::npos) {
    const auto start = after.rfind('\n', a);
    why = after.substr(start == std::string::npos ? 0 : start + 1);
    while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
    why = ": " + why;
  }
  throw IoError(file, fmt::format("damaged DICOM file: GDCM stopped while decoding it ({}){}",
                                  WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status))
                                                      : fmt::format("exit {}", WEXITSTATUS(status)),
                                  why));
}

}  // namespace barton::io::internal
