#include "nets/network.h"

#include <set>

#include <torch/torch.h>

#include "core/errors.h"
#include "core/strings.h"

namespace barton::nets {

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters(true)) out[p.key()] = p.value();
  for (const auto& b : m.named_buffers(true)) out[b.key()] = b.value();
  return out;
}

std::vector<std::string> state_dict_keys(const torch::nn::Module& m) {
  std::vector<std::string> keys;
  // PyTorch lists, for each module in pre-order, its own parameters then its own buffers.
  std::function<void(const torch::nn::Module&, const std::string&)> walk =
      [&](const torch::nn::Module& mod, const std::string& prefix) {
        for (const auto& p : mod.named_parameters(false)) keys.push_back(prefix + p.key());
        for (const auto& b : mod.named_buffers(false)) keys.push_back(prefix + b.key());
        for (const auto& c : mod.named_children()) walk(*c.value(), prefix + c.key() + ".");
      };
  walk(m, "");
  return keys;
}

void load_state_dict(torch::nn::Module& m,
                     const std::map<std::string, torch::Tensor>& state_in,
                     bool strict) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& [k, v] : state_in) state[starts_with(k, "module.") ? k.substr(7) : k] = v;
  auto own = state_dict(m);
  std::vector<std::string> missing, unexpected;
  for (const auto& [k, v] : own) {
    if (!state.count(k)) missing.push_back(k);
  }
  for (const auto& [k, v] : state) {
    if (!own.count(k)) unexpected.push_back(k);
  }
  auto first = [](const std::vector<std::string>& v) {
    std::vector<std::string> f(v.begin(), v.begin() + std::min<std::size_t>(v.size(), 5));
    return join(f, ", ") + (v.size() > 5 ? fmt::format(", ... ({} in all)", v.size()) : "");
  };
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::string msg = "state_dict does not match the network";
    if (!missing.empty()) msg += "; missing keys: " + first(missing);
    if (!unexpected.empty()) msg += "; unexpected keys: " + first(unexpected);
    throw Error(msg);
  }
  torch::NoGradGuard guard;
  for (auto& [k, dst] : own) {
    const auto it = state.find(k);
    if (it == state.end()) continue;
    if (it->second.sizes() != dst.sizes()) {
      throw ShapeError(fmt::format("state_dict key '{}' has shape [{}], the network expects [{}]",
                                   k, fmt::join(it->second.sizes(), ", "),
                                   fmt::join(dst.sizes(), ", ")));
    }
    dst.copy_(it->second.to(dst.device(), dst.scalar_type()));
  }
}

std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  std::set<const void*> seen;
  for (const auto& p : m.parameters(true)) {
    if (seen.insert(p.unsafeGetTensorImpl()).second) out.push_back(p);
  }
  return out;
}

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : unique_parameters(m)) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

}  // namespace barton::nets
