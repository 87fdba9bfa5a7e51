#include "io/torch_file.h"

#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <variant>

#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/strings.h"
#include <caffe2/serialize/inline_container.h>

namespace barton::io {

const PyValue* PyValue::get(const std::string& key) const {
  if (!is_dict()) return nullptr;
  for (const auto& [k, val] : *std::get<std::shared_ptr<PyDict>>(v)) {
    if (const auto* s = std::get_if<std::string>(&k.v); s && *s == key) return &val;
  }
  return nullptr;
}

namespace {

at::ScalarType storage_dtype(const std::string& name, const std::string& path) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"FloatStorage", at::kFloat}, {"DoubleStorage", at::kDouble},
      {"HalfStorage", at::kHalf},   {"BFloat16Storage", at::kBFloat16},
      {"LongStorage", at::kLong},   {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort}, {"CharStorage", at::kChar},
      {"ByteStorage", at::kByte},   {"BoolStorage", at::kBool}};
  const auto it = kTypes.find(name);
  if (it == kTypes.end()) throw IoError(path, "unsupported tensor storage type torch." + name);
  return it->second;
}

class Unpickler {
 public:
  Unpickler(std::string_view data,
            std::string path,
            std::function<at::Tensor(const std::string&, at::ScalarType, int64_t)> storage)
      : d_(data), path_(std::move(path)), storage_(std::move(storage)) {}

  PyValue run() {
    while (true) {
      const uint8_t op = u8();
      if (op == '.') return pop();  // STOP
      if (!load_value(op) && !build_container(op) && !call_or_build(op))
        throw IoError(path_,
                      fmt::format("unsupported pickle opcode 0x{:02x} at byte {}", op, pos_ - 1));
    }
  }

 private:
  /// Framing, memo and scalar opcodes. False for others.
  bool load_value(uint8_t op) {
    switch (op) {
      case 0x80:
        u8();
        return true;  // PROTO
      case 0x95:
        pos_ += 8;
        return true;  // FRAME
      case '}':
        push(dict());
        return true;  // EMPTY_DICT
      case ']':
        push(list());
        return true;  // EMPTY_LIST
      case ')':
        push(tuple({}));
        return true;  // EMPTY_TUPLE
      case '(':
        marks_.push_back(stack_.size());
        return true;
      case 'c': {  // GLOBAL
        auto mod = line(), name = line();
        push(PyValue{PyValue::Global{mod, name}});
        return true;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop(), mod = pop();
        if (!mod.is_string() || !name.is_string()) {
          throw IoError(path_, "corrupt pickle (STACK_GLOBAL of a non-string)");
        }
        push(PyValue{PyValue::Global{std::get<std::string>(mod.v), std::get<std::string>(name.v)}});
        return true;
      }
      case 'q':
        memo_[u8()] = top();
        return true;  // BINPUT
      case 'r':
        memo_[u32()] = top();
        return true;  // LONG_BINPUT
      case 0x94:
        memo_[memo_.size()] = top();
        return true;  // MEMOIZE
      case 'h':
        push(memo(u8()));
        return true;  // BINGET
      case 'j':
        push(memo(u32()));
        return true;  // LONG_BINGET
      case 'X':
        push(PyValue{bytes(u32())});
        return true;  // BINUNICODE
      case 0x8c:
        push(PyValue{bytes(u8())});
        return true;  // SHORT_BINUNICODE
      case 0x8d:
        push(PyValue{bytes(static_cast<std::size_t>(u64()))});
        return true;
      case 'T':
        push(PyValue{bytes(u32())});
        return true;  // BINSTRING
      case 'U':
        push(PyValue{bytes(u8())});
        return true;  // SHORT_BINSTRING
      case 'B':
        push(PyValue{bytes(u32())});
        return true;  // BINBYTES
      case 'C':
        push(PyValue{bytes(u8())});
        return true;  // SHORT_BINBYTES
      case 'J':
        push(PyValue{static_cast<int64_t>(static_cast<int32_t>(u32()))});
        return true;
      case 'K':
        push(PyValue{static_cast<int64_t>(u8())});
        return true;
      case 'M': {
        const uint16_t v = u8() | (static_cast<uint16_t>(u8()) << 8);
        push(PyValue{static_cast<int64_t>(v)});
        return true;
      }
      case 0x8a:
        push(PyValue{long_n(u8())});
        return true;  // LONG1
      case 0x8b:
        push(PyValue{long_n(u32())});
        return true;  // LONG4
      case 'G': {     // BINFLOAT (big endian)
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | u8();
        double dv;
        std::memcpy(&dv, &bits, 8);
        push(PyValue{dv});
        return true;
      }
      case 'N':
        push(PyValue{PyValue::None{}});
        return true;
      case 0x88:
        push(PyValue{true});
        return true;
      case 0x89:
        push(PyValue{false});
        return true;
      default:
        return false;
    }
  }

  /// Tuple, list and dict opcodes. False for others.
  bool build_container(uint8_t op) {
    switch (op) {
      case 't':
        push(tuple(pop_mark()));
        return true;
      case 0x85: {
        auto a = pop();
        push(tuple({a}));
        return true;
      }
      case 0x86: {
        auto b = pop(), a = pop();
        push(tuple({a, b}));
        return true;
      }
      case 0x87: {
        auto c = pop(), b = pop(), a = pop();
        push(tuple({a, b, c}));
        return true;
      }
      case 'l': {
        auto items = pop_mark();
        auto l = list();
        *std::get<std::shared_ptr<PyList>>(l.v) = std::move(items);
        push(l);
        return true;
      }
      case 'a': {
        auto v = pop();
        as_list(top()).push_back(v);
        return true;
      }
      case 'e': {
        auto items = pop_mark();
        auto& l = as_list(top());
        for (auto& i : items) l.push_back(i);
        return true;
      }
      case 'd': {
        auto items = pop_mark();
        auto dv = dict();
        for (std::size_t i = 0; i + 1 < items.size(); i += 2)
          std::get<std::shared_ptr<PyDict>>(dv.v)->push_back({items[i], items[i + 1]});
        push(dv);
        return true;
      }
      case 's': {
        auto v = pop(), k = pop();
        as_dict(top()).push_back({k, v});
        return true;
      }
      case 'u': {
        auto items = pop_mark();
        auto& dct = as_dict(top());
        for (std::size_t i = 0; i + 1 < items.size(); i += 2)
          dct.push_back({items[i], items[i + 1]});
        return true;
      }
      default:
        return false;
    }
  }

  /// Globals applied to arguments, object state and persistent ids (tensor storages). False for
  /// others.
  bool call_or_build(uint8_t op) {
    switch (op) {
      case 'R': {  // REDUCE
        auto args = pop(), fn = pop();
        push(call(fn, args));
        return true;
      }
      case 0x81: {  // NEWOBJ
        auto args = pop(), cls = pop();
        push(call(cls, args));
        return true;
      }
      case 'b': {  // BUILD: state on an object; dict attributes (OrderedDict._metadata) are not
                   // needed
        pop();
        return true;
      }
      case 'Q': {  // BINPERSID
        auto pid = pop();
        push(persistent(pid));
        return true;
      }
      default:
        return false;
    }
  }

  uint8_t u8() {
    if (pos_ >= d_.size()) throw IoError(path_, "truncated pickle");
    return static_cast<uint8_t>(d_[pos_++]);
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(u8()) << (8 * i);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(u8()) << (8 * i);
    return v;
  }
  int64_t long_n(std::size_t n) {
    if (n > 8) throw IoError(path_, "integer too large in pickle");
    uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(u8()) << (8 * i);
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  std::string bytes(std::size_t n) {
    if (pos_ + n > d_.size()) throw IoError(path_, "truncated pickle");
    std::string s(d_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::string line() {
    const auto e = d_.find('\n', pos_);
    if (e == std::string_view::npos) throw IoError(path_, "truncated pickle");
    std::string s(d_.substr(pos_, e - pos_));
    pos_ = e + 1;
    return s;
  }
  void push(PyValue v) { stack_.push_back(std::move(v)); }
  PyValue pop() {
    if (stack_.empty()) throw IoError(path_, "corrupt pickle (stack underflow)");
    auto v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  PyValue& top() {
    if (stack_.empty()) throw IoError(path_, "corrupt pickle (empty stack)");
    return stack_.back();
  }
  std::vector<PyValue> pop_mark() {
    if (marks_.empty()) throw IoError(path_, "corrupt pickle (no mark)");
    const auto m = marks_.back();
    marks_.pop_back();
    std::vector<PyValue> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  PyValue memo(std::size_t i) {
    const auto it = memo_.find(i);
    if (it == memo_.end()) throw IoError(path_, "corrupt pickle (memo miss)");
    return it->second;
  }
  static PyValue dict() { return PyValue{std::make_shared<PyDict>()}; }
  static PyValue list() { return PyValue{std::make_shared<PyList>()}; }
  static PyValue tuple(std::vector<PyValue> items) {
    return PyValue{std::make_shared<PyList>(std::move(items))};
  }
  PyList& as_list(PyValue& v) {
    if (auto* l = std::get_if<std::shared_ptr<PyList>>(&v.v)) return **l;
    throw IoError(path_, "corrupt pickle (APPEND to a non-list)");
  }
  PyDict& as_dict(PyValue& v) {
    if (auto* d = std::get_if<std::shared_ptr<PyDict>>(&v.v)) return **d;
    throw IoError(path_, "corrupt pickle (SETITEM on a non-dict)");
  }
  const PyList& args_of(const PyValue& v) {
    if (const auto* l = std::get_if<std::shared_ptr<PyList>>(&v.v)) return **l;
    throw IoError(path_, "corrupt pickle (arguments are not a tuple)");
  }
  int64_t as_int(const PyValue& v) {
    if (const auto* i = std::get_if<int64_t>(&v.v)) return *i;
    if (const auto* b = std::get_if<bool>(&v.v)) return *b;
    throw IoError(path_, "corrupt pickle (expected an integer)");
  }
  std::vector<int64_t> ints(const PyValue& v) {
    std::vector<int64_t> out;
    for (const auto& x : args_of(v)) out.push_back(as_int(x));
    return out;
  }

  PyValue persistent(const PyValue& pid) {
    const auto& t = args_of(pid);
    if (t.size() < 5 || !t[0].is_string() || std::get<std::string>(t[0].v) != "storage") {
      throw IoError(path_, "unsupported persistent id in pickle");
    }
    const auto* g = std::get_if<PyValue::Global>(&t[1].v);
    if (!g || !t[2].is_string()) throw IoError(path_, "corrupt storage reference");
    const auto key = std::get<std::string>(t[2].v);
    const auto numel = as_int(t[4]);
    return PyValue{storage_(key, storage_dtype(g->name, path_), numel)};
  }

  PyValue call(const PyValue& fn, const PyValue& args) {
    const auto* g = std::get_if<PyValue::Global>(&fn.v);
    if (!g) throw IoError(path_, "corrupt pickle (calling a non-class)");
    const std::string name = g->module + "." + g->name;
    if (name == "collections.OrderedDict") return dict();
    // LibTorch's pickler (torch::pickle_save) tags typed containers: restore_type_tag(value, type)
    // and build_intlist / build_doublelist / ... (list) all return their first argument.
    if (name == "torch.jit._pickle.restore_type_tag" ||
        name.rfind("torch.jit._pickle.build_", 0) == 0) {
      return args_of(args).at(0);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const auto& a = args_of(args);
      if (a.size() < 4 || !a[0].is_tensor()) throw IoError(path_, "corrupt tensor record");
      const auto& storage = std::get<at::Tensor>(a[0].v);
      const auto offset = as_int(a[1]);
      const auto size = ints(a[2]), stride = ints(a[3]);
      return PyValue{storage.as_strided(size, stride, offset)};
    }
    if (name == "torch._utils._rebuild_parameter" ||
        name == "torch._utils._rebuild_parameter_with_state") {
      return args_of(args).at(0);
    }
    if (name == "torch.Size" || name == "builtins.tuple" || name == "builtins.list") {
      const auto& a = args_of(args);
      return a.empty() ? tuple({}) : a[0];
    }
    if (name == "builtins.set" || name == "builtins.frozenset") return tuple({});
    if (name == "torch.device")
      return args_of(args).empty() ? PyValue{std::string("cpu")} : args_of(args)[0];
    // Anything else (numpy scalars, custom classes): kept opaque, fails only if used as a tensor.
    auto copy = std::make_shared<PyList>();
    if (const auto* l = std::get_if<std::shared_ptr<PyList>>(&args.v)) *copy = **l;
    return PyValue{PyValue::Object{name, copy}};
  }

  std::string_view d_;
  std::size_t pos_ = 0;
  std::string path_;
  std::function<at::Tensor(const std::string&, at::ScalarType, int64_t)> storage_;
  std::vector<PyValue> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::size_t, PyValue> memo_;
};

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> tensor_items(const PyValue& dict) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (!dict.is_dict()) return out;
  for (const auto& [k, v] : *std::get<std::shared_ptr<PyDict>>(dict.v)) {
    if (k.is_string() && v.is_tensor())
      out.emplace_back(std::get<std::string>(k.v), std::get<at::Tensor>(v.v));
  }
  return out;
}

PyValue load_torch_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IoError(path, "no such file");
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    std::string pkl;
    for (const auto& r : reader.getAllRecords()) {
      if (r == "data.pkl" || ends_with(r, "/data.pkl")) pkl = r;
    }
    if (pkl.empty()) throw IoError(path, "not a torch.save archive (no data.pkl)");
    const std::string prefix = pkl.substr(0, pkl.size() - std::string("data.pkl").size());
    auto [ptr, size] = reader.getRecord(pkl);
    std::string data(static_cast<const char*>(ptr.get()), size);
    std::map<std::string, at::Tensor> storages;
    auto storage = [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
      auto it = storages.find(key);
      if (it != storages.end()) return it->second;
      auto [sp, sz] = reader.getRecord(prefix + "data/" + key);
      const auto element = static_cast<int64_t>(c10::elementSize(dtype));
      // Checked before allocating: a damaged pickle may declare any element count.
      if (numel < 0 || static_cast<uint64_t>(numel) > sz / element) {
        throw IoError(path, "storage " + key + " declares " + std::to_string(numel) +
                                " elements but holds " + std::to_string(sz) +
                                " bytes: the file is truncated or damaged");
      }
      auto t = at::empty({numel}, at::TensorOptions().dtype(dtype));
      const auto need = static_cast<std::size_t>(numel) * t.element_size();
      std::memcpy(t.data_ptr(), sp.get(), need);
      storages[key] = t;
      return t;
    };
    return Unpickler(data, path, storage).run();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw IoError(path,
                  std::string("not a readable torch.save archive: ") + e.what_without_backtrace());
  } catch (const std::bad_variant_access&) {
    // A value of the wrong kind where the pickle's structure needs another (fuzz/torch_file).
    throw IoError(path, "corrupt pickle (a value of an unexpected type)");
  } catch (const std::out_of_range&) {
    throw IoError(path, "corrupt pickle (too few arguments)");
  }
}

std::map<std::string, at::Tensor> load_state_dict_file(const std::string& path,
                                                       const std::string& key) {
  const auto root = load_torch_file(path);
  auto as_state = [](const PyValue& v, std::map<std::string, at::Tensor>& out) {
    if (!v.is_dict()) return false;
    out.clear();
    for (const auto& [k, val] : *std::get<std::shared_ptr<PyDict>>(v.v)) {
      const auto* name = std::get_if<std::string>(&k.v);
      if (!name || !val.is_tensor()) return false;
      out[*name] = std::get<at::Tensor>(val.v);
    }
    return !out.empty();
  };
  std::map<std::string, at::Tensor> out;
  if (key.empty() && as_state(root, out)) return out;
  std::vector<std::string> tried =
      key.empty() ? std::vector<std::string>{"model", "state_dict", "network", "net"}
                  : std::vector<std::string>{key};
  for (const auto& k : tried) {
    if (const auto* v = root.get(k); v && as_state(*v, out)) return out;
  }
  std::vector<std::string> keys;
  if (root.is_dict()) {
    for (const auto& [k, v] : *std::get<std::shared_ptr<PyDict>>(root.v)) {
      if (const auto* s = std::get_if<std::string>(&k.v)) keys.push_back(*s);
    }
  }
  throw IoError(path, "no state_dict found under " + join(tried, ", ") +
                          " (top-level keys: " + (keys.empty() ? "none" : join(keys, ", ")) + ")");
}

void save_checkpoint_file(const std::string& path,
                          const std::map<std::string, at::Tensor>& state,
                          const std::map<std::string, double>& scalars,
                          const std::string& state_key) {
  c10::Dict<std::string, at::Tensor> sd;
  for (const auto& [k, v] : state) sd.insert(k, v.detach().cpu().contiguous());
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  root.insert(state_key, sd);
  for (const auto& [k, v] : scalars) {
    if (v == static_cast<double>(static_cast<int64_t>(v)))
      root.insert(k, static_cast<int64_t>(v));
    else
      root.insert(k, v);
  }
  const auto bytes = torch::jit::pickle_save(root);
  write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

}  // namespace barton::io
