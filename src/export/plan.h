#pragma once
/// Barton's inference plan: one self-describing file for Barton's own runtime. It is a TorchScript
/// archive (LibTorch loads it without Barton's network code; Python's torch.jit.load only when no
/// layer uses Barton's operator barton::conv_transpose_phase) holding the traced inference-only
/// graph with BatchNorm folded into the convolutions
/// and optionally float16 / bfloat16 weights, plus "barton_plan.json": the network it came from,
/// its input/output specification, and config_inference.json with environment.json (pre- and
/// post-transforms, sliding-window settings), so `barton infer --model FILE` needs nothing else.

#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

namespace barton::exporter {

inline constexpr const char* kPlanRecord = "barton_plan.json";

/// Writes `graph` (consumed: its input gains the module's self) with `meta` atomically to `path`.
void write_plan(const std::string& path,
                std::shared_ptr<torch::jit::Graph> graph,
                const nlohmann::ordered_json& meta);

struct Plan {
  torch::jit::Module module;
  nlohmann::ordered_json meta;
};

/// Loads a plan. Throws IoError when the file is not a TorchScript archive or has no plan record.
Plan load_plan(const std::string& path, const torch::Device& device = torch::kCPU);

/// True when `path` is a TorchScript archive (a plan or a TorchScript model such as a MONAI
/// bundle's model.ts); false for state-dict checkpoints and anything else.
bool is_torchscript(const std::string& path);
/// True when `path` is a TorchScript archive with a Barton plan record.
bool is_plan(const std::string& path);

}  // namespace barton::exporter
