#include "core/errors.h"

namespace barton {

ConfigError::ConfigError(std::string source, std::string pointer, std::string message)
    : Error(pointer.empty() ? source + ": " + message : source + ":" + pointer + ": " + message),
      source_(std::move(source)),
      pointer_(std::move(pointer)),
      message_(std::move(message)) {}

IoError::IoError(const std::string& path, const std::string& message)
    : Error(path + ": " + message), path_(path) {}

}  // namespace barton
