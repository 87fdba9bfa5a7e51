#include "transforms/draw_log.h"

#include <cstdlib>
#include <fstream>
#include <mutex>

#include "core/errors.h"

namespace barton::transforms {

namespace {

thread_local int64_t t_epoch = -1;
thread_local int64_t t_index = -1;

const char* log_path() {
  static const char* p = [] {
    const char* v = std::getenv("BARTON_DRAW_LOG");
    return v && *v ? v : nullptr;
  }();
  return p;
}

}  // namespace

bool draw_log_enabled() {
  return log_path() != nullptr;
}

void log_draw(nlohmann::json record) {
  if (!draw_log_enabled()) return;
  static std::mutex mutex;
  static std::ofstream out;
  if (!record.contains("epoch")) record["epoch"] = t_epoch;
  if (!record.contains("index")) record["index"] = t_index;
  std::lock_guard<std::mutex> lock(mutex);
  if (!out.is_open()) {
    out.open(log_path(), std::ios::app);
    if (!out) throw IoError(log_path(), "cannot open the draw log (BARTON_DRAW_LOG) for writing");
  }
  out << record.dump() << '\n';
  out.flush();
}

DrawContext::DrawContext(uint64_t epoch, std::size_t index)
    : prev_epoch_(t_epoch), prev_index_(t_index) {
  t_epoch = static_cast<int64_t>(epoch);
  t_index = static_cast<int64_t>(index);
}

DrawContext::~DrawContext() {
  t_epoch = prev_epoch_;
  t_index = prev_index_;
}

}  // namespace barton::transforms
