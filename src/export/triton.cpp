#include "export/triton.h"

#include <fmt/format.h>

namespace barton::exporter {

namespace {

std::string tensor(const std::string& name, const std::vector<int64_t>& dims, bool batched) {
  std::vector<int64_t> d(dims.begin() + (batched ? 1 : 0), dims.end());
  return fmt::format("  {{\n    name: \"{}\"\n    data_type: TYPE_FP32\n    dims: [ {} ]\n  }}\n",
                     name, fmt::join(d, ", "));
}

}  // namespace

std::string triton_config(const std::string& name, const OnnxSignature& sig, int max_batch_size) {
  const bool batched = max_batch_size > 0;
  std::string s = fmt::format("name: \"{}\"\nbackend: \"onnxruntime\"\nmax_batch_size: {}\n", name,
                              max_batch_size);
  s += "input [\n" + tensor(sig.input_name, sig.input_dims, batched) + "]\n";
  s += "output [\n" + tensor(sig.output_name, sig.output_dims, batched) + "]\n";
  if (batched) s += "dynamic_batching { }\n";
  s += "instance_group [\n  {\n    count: 1\n    kind: KIND_AUTO\n  }\n]\n";
  return s;
}

}  // namespace barton::exporter
