#pragma once
// What the random transforms drew, one JSON object a line, for replaying a run elsewhere (the MONAI
// twin loop of bench/parity replays Barton's patches to compare training step by step).
// Off unless BARTON_DRAW_LOG names a file; then every record is appended to it (thread-safe).

#include <cstdint>

#include <nlohmann/json.hpp>

namespace barton::transforms {

/// True when BARTON_DRAW_LOG is set.
bool draw_log_enabled();

/// Appends `record` with the sample being drawn for (DrawContext) as "epoch" and "index".
void log_draw(nlohmann::json record);

/// The (epoch, dataset index) whose random transforms run on this thread while it lives.
class DrawContext {
 public:
  DrawContext(uint64_t epoch, std::size_t index);
  ~DrawContext();
  DrawContext(const DrawContext&) = delete;
  DrawContext& operator=(const DrawContext&) = delete;

 private:
  int64_t prev_epoch_, prev_index_;
};

}  // namespace barton::transforms
