#pragma once
/// Triton Inference Server model repository entries for an exported ONNX model:
/// <repo>/<name>/config.pbtxt and <repo>/<name>/1/model.onnx (onnxruntime backend).

#include <string>

#include "export/onnx.h"

namespace barton::exporter {

/// config.pbtxt text. With `max_batch_size` > 0 the batch axis is Triton's (dims exclude it) and
/// dynamic batching is on; 0 keeps the batch axis in dims.
std::string triton_config(const std::string& name, const OnnxSignature& sig, int max_batch_size);

}  // namespace barton::exporter
