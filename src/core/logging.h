#pragma once
/// Logging: spdlog behind a tiny facade so most code includes no spdlog header.

#include <string>

namespace barton::log {

enum class Level { kDebug, kInfo, kWarn, kError };

/// Sets the minimum level printed (default: info). Thread-safe.
void set_level(Level level);
void info(const std::string& message);
void warn(const std::string& message);
void error(const std::string& message);
void debug(const std::string& message);

}  // namespace barton::log
