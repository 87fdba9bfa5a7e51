#pragma once
/// Helpers shared by the transform families.

#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace barton::transforms {

/// "float32", "np.float32", "torch.float32", "float", "uint8", ... -> ScalarType. Throws Error.
at::ScalarType parse_dtype(const std::string& name);
/// Optional dtype argument: null -> nullopt; errors at the argument's pointer.
std::optional<at::ScalarType> dtype_arg(const ConfigNode& args, const char* name);
/// A number or a list of numbers, repeated to `n` entries (MONAI's ensure_tuple_rep).
std::vector<double> floats_rep(const ConfigNode& args,
                               const char* name,
                               std::size_t n,
                               std::vector<double> fallback);
std::vector<int64_t> ints_rep(const ConfigNode& args,
                              const char* name,
                              std::size_t n,
                              std::vector<int64_t> fallback);
/// A (low, high) range from a number x (-> (-x, x), or (0, x) when not `symmetric`) or a pair;
/// null (MONAI's None) is the empty range (0, 0).
std::pair<double, double> range_arg(const ConfigNode& args,
                                    const char* name,
                                    bool symmetric = true);

/// MONAI's `prob` argument, checked to lie in [0, 1] at its pointer.
double prob_arg(const ConfigNode& args);

}  // namespace barton::transforms
