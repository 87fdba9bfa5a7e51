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

/// Replaces aten::_convolution nodes by aten::conv{2,3}d / conv_transpose{2,3}d (what LibTorch's
/// graph optimiser expects; its own rewrite of transposed _convolution misreads their
/// dimensionality in LibTorch 1.13). For the plan; the ONNX writer reads either. Returns the count.
int canonicalize_convolutions(torch::jit::Graph& graph);

/// For each stride-2 kernel-3 transposed convolution, times LibTorch's kernel against Barton's
/// phase decomposition (nets::conv_transpose_phase, the op barton::conv_transpose_phase that
/// plan.cpp registers) on the traced input shape, and keeps the faster. Returns how many nodes
/// now use the phase decomposition; `report` receives one line per node.
int choose_convtranspose_kernels(torch::jit::Graph& graph,
                                 std::vector<std::string>* report = nullptr);

/// Replaces each 3D convolution with at most 4 input or output channels (one group, no dilation)
/// by barton::slab_conv3d (nets::slab_conv3d, which plan.cpp registers): at inference the plan then
/// runs them slab by slab as the eager network does. Returns the count.
int use_slab_convolutions(torch::jit::Graph& graph);

/// Converts the graph's floating-point weights to `dtype` (kHalf or kBFloat16): the input is cast
/// to `dtype` on entry and the output back to float on exit.
void cast_weights(torch::jit::Graph& graph, c10::ScalarType dtype);

/// A constant int list input: a list constant, a prim::ListConstruct of int constants (which
/// torch::jit::toIValue does not fold), or a single int. nullopt when not constant.
c10::optional<std::vector<int64_t>> const_ints(const torch::jit::Value* v);

/// The graph's top-level nodes of one kind, in order (safe to rewrite while iterating the result).
std::vector<torch::jit::Node*> nodes_of_kind(torch::jit::Graph& graph, c10::Symbol kind);

/// The graph's tensor-valued prim::Constant nodes (its weights), in order.
std::vector<torch::jit::Node*> tensor_constants(torch::jit::Graph& graph);

/// Counts of each node kind ("aten::_convolution" -> 23), for reports and tests.
std::vector<std::pair<std::string, int>> node_histogram(const torch::jit::Graph& graph);

}  // namespace barton::exporter
