#pragma once
/// Model administration of the annotation server (Clara AIAA's /admin/model/{name}): MMARs
/// uploaded as zip archives or Barton plans, kept under the server's work folder so a restart with
/// the same --work-dir serves them again.

#include <cstdint>
#include <string>

namespace barton::serve {

/// Extracts the zip archive held in `bytes` into the new folder `dest` (which must not exist).
/// Refuses, with an Error naming the entry, names that are absolute or climb out with "..",
/// symbolic links, more than `max_bytes` uncompressed in all (declared or actually read), and
/// archives libzip cannot read. On error nothing is left at `dest`.
void extract_zip(const std::string& bytes, const std::string& dest, std::uint64_t max_bytes);

/// True when `bytes` start like a zip archive (a Barton plan and a TorchScript file are zips too).
bool looks_like_zip(const std::string& bytes);

/// The MMAR inside an extracted archive at `dir`: `dir` itself when it holds
/// config/config_inference.json, else its only sub-folder that does. Empty when there is none.
std::string find_mmar_root(const std::string& dir);

/// The names of an archive's entries (for telling an MMAR zip from a plan, which is a zip too).
bool zip_holds_mmar(const std::string& bytes);

}  // namespace barton::serve
