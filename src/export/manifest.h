#pragma once
/// Provenance for exported models: manifest.json records where an export came from (MMAR, config
/// and checkpoint hashes, training metrics, versions, tensor interface) and the SHA-256 and size
/// of every file beside it; verify() re-hashes the folder and reports what changed.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace barton::exporter {

inline constexpr const char* kManifestName = "manifest.json";

/// Hex SHA-256 of a file's bytes (streamed). Throws IoError.
std::string sha256_file(const std::filesystem::path& path);

/// Adds "files": [{path, bytes, sha256}] for every regular file under `dir` (except the manifest
/// itself, sorted by path) to `meta` and writes `dir/manifest.json` atomically.
void write_manifest(const std::filesystem::path& dir, nlohmann::ordered_json meta);

struct VerifyReport {
  std::vector<std::string> ok, modified, missing, unlisted;
  bool passed() const { return modified.empty() && missing.empty() && unlisted.empty(); }
};

/// Checks every file listed in `dir/manifest.json` (size and SHA-256) and looks for files the
/// manifest does not list. Throws IoError when the manifest is missing or unreadable.
VerifyReport verify(const std::filesystem::path& dir);

}  // namespace barton::exporter
