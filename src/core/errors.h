#pragma once
/// Barton's exception hierarchy. Library code throws these; entry points (CLI, server, FL)
/// catch them and map them to exit codes or `{code, message}` replies (docs/architecture.md,
/// errors).

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace barton {

/// Any user-facing error: bad input, bad data, unsupported request.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A configuration error located by file name and RFC 6901 JSON Pointer.
/// what() is "<source>:<pointer>: <message>".
class ConfigError : public Error {
 public:
  ConfigError(std::string source, std::string pointer, std::string message);
  const std::string& source() const { return source_; }
  const std::string& pointer() const { return pointer_; }
  const std::string& message() const { return message_; }

 private:
  std::string source_;
  std::string pointer_;
  std::string message_;
};

/// A file could not be read, parsed or written. what() is "<path>: <message>".
class IoError : public Error {
 public:
  IoError(const std::string& path, const std::string& message);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Tensor or image shapes that do not fit together.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A valid request that Barton does not (yet) support.
class NotSupported : public Error {
 public:
  using Error::Error;
};

/// The operation was cancelled (signal, user request).
class Cancelled : public Error {
 public:
  using Error::Error;
};

/// A bug in Barton: an invariant did not hold. Carries file:line.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace barton

/// Throws barton::Error with a fmt-formatted message when `cond` is false (user errors).
#define BARTON_CHECK(cond, ...)                                     \
  do {                                                              \
    if (!(cond)) throw ::barton::Error(::fmt::format(__VA_ARGS__)); \
  } while (false)

/// Throws barton::InternalError with file:line when `cond` is false (bugs).
#define BARTON_INTERNAL_ASSERT(cond, ...)                                                          \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      throw ::barton::InternalError(::fmt::format("{}:{}: internal error: {}", __FILE__, __LINE__, \
                                                  ::fmt::format(__VA_ARGS__)));                    \
  } while (false)
