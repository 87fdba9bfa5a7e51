#pragma once
/// Atomic file writes (docs/architecture.md): temp file in the same folder, flush, fsync, rename.
/// A killed process never leaves a truncated file behind; the previous version stays intact.

#include <filesystem>
#include <string_view>

namespace barton {

/// Writes `bytes` to `path` atomically, creating parent folders. Throws IoError.
/// Thread-safe for distinct paths.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

/// Reads a whole file. Throws IoError naming the path when it is missing or unreadable.
std::string read_file(const std::filesystem::path& path);

}  // namespace barton
