#pragma once
/// The little PNG the annotation server needs (AIAA's 2-D fixpolygon): a file's width and height
/// from its header, and an 8-bit grayscale writer. Images in general go through read_image.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace barton::io {

/// (width, height) from a PNG's IHDR chunk; throws IoError(name) when `bytes` is not a PNG.
std::pair<int, int> png_size(const std::string& name, std::string_view bytes);

/// An 8-bit grayscale PNG of `height` rows of `width` pixels (row-major, `pixels` has
/// width * height bytes).
std::string encode_png_gray8(const uint8_t* pixels, int width, int height);

}  // namespace barton::io
