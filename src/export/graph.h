#pragma once
/// A network as an inference-only graph: LibTorch's tracer records one forward pass of a Barton
/// network (eval mode, no autograd) as a TorchScript IR graph whose weights are constants. The
/// graph is what the exporters consume: the ONNX writer (onnx.h) translates it node by node and the
/// inference plan (plan.h) stores it after the rewrites below.

#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/jit/ir/ir.h>

#include "nets/network.h"

namespace barton::exporter {

/// Traces `net.forward(example)` in eval mode without gradients. The network's stride-2
/// transposed convolutions are recorded as ConvTranspose (not as Barton's phase decomposition),
/// dropout is removed, and the network's training mode and requires_grad flags are restored
/// afterwards. Throws Error when the forward fails (for example a wrong input shape).
std::shared_ptr<torch::jit::Graph> trace_network(nets::Network& net, const torch::Tensor& example);

/// Folds every eval-mode BatchNorm that directly follows a convolution (plain or transposed, one
/// group, sole user of the convolution's output) into the convolution's weight and bias. Returns
/// the number of BatchNorms folded.
int fold_batchnorm(torch::jit::Graph& graph);

/// Converts the graph's floating-point weights to `dtype` (kHalf or kBFloat16): the input is cast
/// to `dtype` on entry and the output back to float on exit.
void cast_weights(torch::jit::Graph& graph, c10::ScalarType dtype);

/// Counts of each node kind ("aten::_convolution" -> 23), for reports and tests.
std::vector<std::pair<std::string, int>> node_histogram(const torch::jit::Graph& graph);

}  // namespace barton::exporter
