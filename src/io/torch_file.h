#pragma once
/// Reading files written by Python's torch.save (zip archives with a pickle and raw storages):
/// LibTorch's PyTorchStreamReader for the archive and a small pickle machine for what state_dicts
/// and checkpoints contain (dicts, OrderedDict, lists, tuples, numbers, strings, tensors rebuilt by
/// torch._utils._rebuild_tensor_v2 / _rebuild_parameter). LibTorch 1.13's torch::pickle_load cannot
/// read these (OrderedDict becomes None; SETITEM is refused).

#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <ATen/core/Tensor.h>

namespace barton::io {

struct PyValue;
using PyList = std::vector<PyValue>;
using PyDict = std::vector<std::pair<PyValue, PyValue>>;  // insertion order kept

/// A Python value from a pickle. Objects of unknown classes are kept as {module.name, args}.
struct PyValue {
  struct None {};
  struct Global {
    std::string module, name;
  };
  struct Object {
    std::string cls;
    std::shared_ptr<PyList> args;
  };
  std::variant<None,
               bool,
               int64_t,
               double,
               std::string,
               std::shared_ptr<PyList>,
               std::shared_ptr<PyDict>,
               at::Tensor,
               Global,
               Object>
      v;
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<PyDict>>(v); }
  bool is_tensor() const { return std::holds_alternative<at::Tensor>(v); }
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  /// The entry under a string key of a dict, or nullptr.
  const PyValue* get(const std::string& key) const;
};

/// The (string key, tensor) entries of a dict value, in order; other entries are skipped.
std::vector<std::pair<std::string, at::Tensor>> tensor_items(const PyValue& dict);

/// Loads a torch.save file. Throws IoError naming the file for anything it cannot read.
PyValue load_torch_file(const std::string& path);

/// The state_dict inside a torch.save file: the file itself when it is a dict of tensors, else the
/// entry under `key` (default "model", then "state_dict", "network", "net"), as MONAI / Clara
/// checkpoints wrap it. Throws IoError with the keys that exist when none fits.
std::map<std::string, at::Tensor> load_state_dict_file(const std::string& path,
                                                       const std::string& key = "");

/// Writes named tensors (plus integer and float entries) so that Python's torch.load returns a
/// dict:
/// {"model": {key: tensor}, <scalars>}. LibTorch's pickle_save format. Written atomically.
void save_checkpoint_file(const std::string& path,
                          const std::map<std::string, at::Tensor>& state,
                          const std::map<std::string, double>& scalars = {},
                          const std::string& state_key = "model");

}  // namespace barton::io
