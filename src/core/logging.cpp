#include "core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace barton::log {

namespace {
spdlog::logger& logger() {
  static auto l = [] {
    auto lg = spdlog::stderr_color_mt("barton");
    lg->set_pattern("[%H:%M:%S] %^%l%$ %v");
    return lg;
  }();
  return *l;
}
}  // namespace

void set_level(Level level) {
  switch (level) {
    case Level::kDebug:
      logger().set_level(spdlog::level::debug);
      break;
    case Level::kInfo:
      logger().set_level(spdlog::level::info);
      break;
    case Level::kWarn:
      logger().set_level(spdlog::level::warn);
      break;
    case Level::kError:
      logger().set_level(spdlog::level::err);
      break;
  }
}
void info(const std::string& m) {
  logger().info(m);
}
void warn(const std::string& m) {
  logger().warn(m);
}
void error(const std::string& m) {
  logger().error(m);
}
void debug(const std::string& m) {
  logger().debug(m);
}

}  // namespace barton::log
