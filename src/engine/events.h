#pragma once
/// TensorBoard event files written without TensorFlow: TFRecord framing (length, masked CRC-32C of
/// the length, payload, masked CRC-32C of the payload) around hand-encoded `tensorflow.Event`
/// protocol buffers (wall_time = 1, step = 2, file_version = 3, summary = 5; Summary.Value: tag =
/// 1, simple_value = 2, image = 4; Summary.Image: height = 1, width = 2, colorspace = 3,
/// encoded_image_string = 4). Images are PNG.

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <ATen/core/Tensor.h>

namespace barton::engine {

/// CRC-32C (Castagnoli) and TFRecord's masked form.
uint32_t crc32c(std::string_view bytes);
uint32_t masked_crc32c(std::string_view bytes);

/// PNG (8-bit grey, RGB or RGBA, no interlace) of `pixels` laid out row by row.
std::string encode_png(const uint8_t* pixels, int width, int height, int channels);

/// Appends events to `<log_dir>/events.out.tfevents.<seconds>.<host>.<pid>.<n>`.
/// Thread-safety: all methods may be called from several threads.
class EventWriter {
 public:
  explicit EventWriter(const std::string& log_dir);
  ~EventWriter();
  void scalar(const std::string& tag, double value, int64_t step);
  /// `image`: uint8 [H, W] (grey) or [H, W, 3] (RGB).
  void image(const std::string& tag, const at::Tensor& image, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

  /// One writer per log folder for the whole process (trainer and evaluator share it).
  static std::shared_ptr<EventWriter> for_dir(const std::string& log_dir);

 private:
  void write_event(const std::string& payload);
  std::string path_;
  std::ofstream out_;
  std::mutex mutex_;
};

}  // namespace barton::engine
