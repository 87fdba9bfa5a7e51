#pragma once
/// Networks: LibTorch modules whose parameter names match MONAI's state_dict keys, so MONAI
/// checkpoints load into Barton and Barton's into MONAI.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

namespace barton::nets {

/// A segmentation network: [B, C_in, *spatial] -> [B, C_out, *spatial] (deep supervision networks
/// in training mode return [B, heads, C_out, *spatial]). Thread-safety: one forward at a time per
/// instance in training; eval-mode forwards may run concurrently.
class Network : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  /// Registered name ("UNet").
  virtual std::string name() const = 0;
  /// Spatial dims (2 or 3).
  virtual int spatial_dims() const = 0;
};

/// Every parameter and buffer by MONAI key (named_parameters + named_buffers, recursive).
std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& m);
/// Ordered keys as PyTorch would list them (parameters and buffers per module in registration
/// order).
std::vector<std::string> state_dict_keys(const torch::nn::Module& m);

/// Copies tensors into the module by key. strict: every key must match both ways and shapes must
/// agree; errors list the missing and unexpected keys (first few) and the first shape mismatch.
/// A "module." prefix (DataParallel) is stripped. Throws Error.
void load_state_dict(torch::nn::Module& m,
                     const std::map<std::string, torch::Tensor>& state,
                     bool strict = true);

/// Parameters without duplicates (DynUNet and SegResNet register some modules twice, as MONAI
/// does); what an optimizer must receive.
std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& m);

/// Number of trainable parameters, each tensor counted once (as PyTorch's parameters() does).
int64_t count_parameters(const torch::nn::Module& m);

}  // namespace barton::nets
