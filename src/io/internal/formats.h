#pragma once
/// Format adapters behind read_image / write_image. Internal to barton::io.

#include <string>

#include "io/image.h"

namespace barton::io::internal {

Image read_nifti(const std::string& path);
void write_nifti(const Image& image, const std::string& path);

Image read_itk(const std::string& path);
void write_itk(const Image& image, const std::string& path);

Image read_dicom_series(const std::string& folder, const ReadOptions& options);

/// Inflates a gzip stream (all members) with libdeflate. Throws IoError(path) on corrupt or
/// truncated data.
std::string gunzip(const std::string& path, std::string_view compressed);
/// Compresses to a single gzip member with libdeflate.
std::string gzip(std::string_view raw, int level = 6);
/// head + body as one gzip member whose deflate stream is fully flushed every 256 KiB, where a
/// block of zeros repeats bytes compressed once. For label maps, mostly background: several
/// times faster than compressing every block.
std::string gzip_blocks(std::string_view head, std::string_view body, int level);

/// Tensor dtype for a file element type name, and back.
at::ScalarType tensor_dtype_for(const std::string& file_dtype);
std::string file_dtype_for(at::ScalarType dtype);

}  // namespace barton::io::internal
