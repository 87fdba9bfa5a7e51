#pragma once
/// `barton export`'s engine: one network (weights loaded) to a deployment folder with any of
///   model.onnx                      ONNX (onnx.h), checked and shape-inferred
///   triton/<name>/config.pbtxt      a Triton model repository entry (triton.h) ...
///   triton/<name>/1/model.onnx      ... with its ONNX model
///   model.plan                      Barton's inference plan (plan.h)
///   manifest.json                   provenance and SHA-256 of every file (manifest.h)
/// The folder is assembled beside the destination and swapped in at the end: an export that
/// fails leaves an earlier export in place, untouched.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "export/onnx.h"
#include "nets/network.h"

namespace barton::exporter {

struct ExportOptions {
  /// Any of "onnx", "triton", "barton". Default: all three.
  std::vector<std::string> formats = {"onnx", "triton", "barton"};
  /// The traced input [B, C, *spatial]. REQUIRED.
  std::vector<int64_t> input_shape;
  /// Symbolic spatial axes in the ONNX model. Default: false.
  bool dynamic_spatial = false;
  /// Weights and compute in float16 ("fp16") or bfloat16 ("bf16"); "" keeps float32. Default: "".
  std::string precision;
  /// Triton model name. Default: "model".
  std::string name = "model";
  /// Triton max_batch_size (0: no batching). Default: 4.
  int max_batch_size = 4;
  /// The network's {"name", "args"} (recorded in the plan and the manifest). REQUIRED.
  nlohmann::ordered_json network;
  /// config_inference.json and environment.json texts for the plan ("" = none). Default: "".
  std::string inference_config, environment;
  /// Extra provenance merged into the manifest (source MMAR, hashes, metrics). Default: {}.
  nlohmann::ordered_json provenance = nlohmann::ordered_json::object();
};

struct ExportResult {
  OnnxSignature signature;
  int folded_batchnorms = 0;
  int phase_convtransposes = 0;    ///< Plan ConvTransposes that use the phase decomposition.
  std::vector<std::string> files;  ///< Relative to the output folder, manifest included.
};

/// Exports `net` to `out_dir` (created or replaced). Throws Error (NotSupported, ShapeError, ...)
/// naming what failed; on failure `out_dir` is left as it was.
ExportResult export_network(nets::Network& net,
                            const std::filesystem::path& out_dir,
                            const ExportOptions& options);

}  // namespace barton::exporter
