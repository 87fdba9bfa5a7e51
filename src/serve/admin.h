#pragma once
/// Model administration of the annotation server (Clara AIAA's /admin/model/{name}): MMARs
/// uploaded as zip archives or Barton plans, kept under the server's work folder so a restart with
/// the same --work-dir serves them again.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

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

/// True when the archive in `bytes` holds an MMAR (an entry ending config/config_inference.json);
/// a Barton plan and a TorchScript file are zips without one.
bool zip_holds_mmar(const std::string& bytes);

/// Clara 4.x's deployment form: a config_aiaa.json (pre_transforms, inference, post_transforms)
/// and a TorchScript model, written as an MMAR at `dest`: config/config_aiaa.json as given,
/// models/model.ts, and a config/config_inference.json derived from config_aiaa.json: the same
/// pre_transforms; inference.AIAA.args (or inference.args) scanning_window/roi/overlap become a
/// SlidingWindowInferer (else a SimpleInferer); post_transforms without the steps the server does
/// itself or that assume Clara's own array layout (AddChanneld and SqueezeDimd on the prediction,
/// ToNumpyd, aiaa.transforms.Restored, ExtremePointsd, BoundingBoxd, Writer), and LargestCCd as
/// KeepLargestConnectedComponentd. Throws Error naming the JSON key when config_aiaa.json lacks
/// what is needed.
void write_aiaa_mmar(const nlohmann::json& aiaa,
                     const std::string& model_bytes,
                     const std::string& dest);

}  // namespace barton::serve
