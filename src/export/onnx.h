#pragma once
/// Writes a traced network graph (graph.h) as an ONNX model, node by node, with Barton's own
/// translation table (LibTorch's ONNX exporter lives in the Python library). The model is checked
/// with onnx::checker and onnx's shape inference before it is returned.
///
/// Supported nodes: convolution (plain and transposed, 2D/3D, groups, dilation), batch, instance
/// and group norm, ReLU, LeakyReLU, PReLU, ELU, SELU, GELU, sigmoid, tanh, softmax, add, sub, mul,
/// concatenation, max pooling, (bi/tri)linear and nearest upsampling by a scale factor, constant
/// padding, casts and the identity-like nodes. Anything else throws NotSupported naming the node.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/csrc/jit/ir/ir.h>

namespace barton::exporter {

struct OnnxOptions {
  /// Operator set. Default: 17 (the newest that the onnx checker on Debian 12 knows).
  int opset = 17;
  /// The batch axis is symbolic ("batch"). Default: true.
  bool dynamic_batch = true;
  /// The spatial axes are symbolic ("dim_0", "dim_1", ...) where every node allows it (a network
  /// that upsamples to a fixed size throws NotSupported). Default: false (the traced shape).
  bool dynamic_spatial = false;
  /// Weights and compute in float16 (the graph's input and output stay float32, cast on entry and
  /// exit). Default: false.
  bool half = false;
  /// Graph input and output names (Clara's Triton tensors). Default: INPUT__0 / OUTPUT__0.
  std::string input_name = "INPUT__0";
  std::string output_name = "OUTPUT__0";
  /// Model metadata. Default: empty.
  std::string graph_name = "barton";
  std::string producer_version;
  std::string doc;
};

/// The ONNX model's tensor interface, as written.
struct OnnxSignature {
  std::string input_name, output_name;
  std::vector<int64_t> input_dims, output_dims;  ///< -1 for a symbolic axis.
  std::string elem_type = "FP32";
};

/// Serialized ModelProto bytes. Throws NotSupported for an untranslatable node and Error when the
/// onnx checker or shape inference rejects the model.
std::string graph_to_onnx(const torch::jit::Graph& graph,
                          const OnnxOptions& options,
                          OnnxSignature* signature = nullptr);

/// Runs onnx::checker and shape inference on a serialized model; returns the inferred output
/// dims (-1 for symbolic). Throws Error naming `what` when the model is invalid.
std::vector<int64_t> check_onnx(const std::string& bytes, const std::string& what);

}  // namespace barton::exporter
