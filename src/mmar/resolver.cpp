#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/strings.h"
#include "data/datalist.h"
#include "mmar/config_resolver.h"
#include "mmar/idioms.h"

namespace barton::mmar {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

// Section fields and the registry kind of their components.
struct FieldInfo {
  const char* name;
  const char* kind;  // registry kind, or "" for special handling
  bool list;
};
const FieldInfo kFields[] = {
    {"loss", "loss", false},
    {"optimizer", "optimizer", false},
    {"lr_scheduler", "lr_scheduler", false},
    {"model", "network", false},
    {"pre_transforms", "transform", true},
    {"post_transforms", "transform", true},
    {"dataset", "dataset", false},
    {"dataloader", "dataloader", false},
    {"inferer", "inferer", false},
    {"handlers", "handler", true},
    {"key_metric", "metric", false},
    {"additional_metrics", "metric", true},
    {"metrics", "metric", true},
    {"trainer", "trainer", false},
    {"evaluator", "evaluator", false},
    {"iteration", "iteration", false},
};

const FieldInfo* field_info(std::string_view name) {
  for (const auto& f : kFields) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

std::vector<std::string> field_names() {
  std::vector<std::string> out;
  for (const auto& f : kFields) out.emplace_back(f.name);
  return out;
}

// Reports a problem: collected (config check) or thrown (everything else).
class Reporter {
 public:
  explicit Reporter(Diagnostics* diag) : diag_(diag) {}
  void operator()(const std::string& source,
                  const std::string& pointer,
                  const std::string& msg) const {
    ConfigError e(source, pointer, msg);
    if (!diag_) throw e;
    diag_->add(e);
  }
  void operator()(const ConfigError& e) const {
    if (!diag_) throw e;
    diag_->add(e);
  }
  bool collecting() const { return diag_ != nullptr; }

 private:
  Diagnostics* diag_;
};

std::string ptr_join(const std::string& base, const std::string& token) {
  return base + "/" + pointer_escape(token);
}

bool is_scalar(const json& v) {
  return v.is_primitive();
}

std::string string_field(const json& j, const char* key, const std::string& fallback) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
}

// Only a boolean true disables a component (a wrong type is reported by validation).
bool is_disabled(const json& c) {
  return c.is_object() && c.contains("disabled") && c["disabled"].is_boolean() &&
         c["disabled"].get<bool>();
}

// ---------------------------------------------------------------- variables

const std::regex& var_regex() {
  static const std::regex kVar(R"(\{([A-Za-z_][A-Za-z0-9_]*)\})");
  return kVar;
}

std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

class Variables {
 public:
  Variables(const Reporter& report, std::string source)
      : report_(report), source_(std::move(source)) {}

  void define(const std::string& name, json value, std::string origin) {
    values_[name] = std::move(value);
    origins_[name] = std::move(origin);
  }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : values_) out.push_back(k);
    return out;
  }

  // Resolves a variable's own value (it may contain {OTHER}); detects cycles.
  json resolved(const std::string& name) {
    if (auto it = done_.find(name); it != done_.end()) return it->second;
    if (std::find(stack_.begin(), stack_.end(), name) != stack_.end()) {
      std::string chain;
      auto it = std::find(stack_.begin(), stack_.end(), name);
      for (; it != stack_.end(); ++it) chain += "{" + *it + "} -> ";
      chain += "{" + name + "}";
      throw ConfigError(origins_[name], "", "circular variable reference: " + chain);
    }
    stack_.push_back(name);
    json v = values_.at(name);
    if (v.is_string()) v = substitute_string(v.get<std::string>(), origins_[name], "");
    stack_.pop_back();
    done_[name] = v;
    return v;
  }

  // Substitutes {VAR} in one string. A string that is exactly "{VAR}" takes the variable's type.
  json substitute_string(const std::string& s,
                         const std::string& source,
                         const std::string& pointer) {
    std::smatch m;
    if (std::regex_match(s, m, var_regex())) {
      const std::string name = m[1];
      if (!has(name)) {
        undefined(name, source, pointer);
        return s;
      }
      return resolved(name);
    }
    std::string out;
    auto begin = s.cbegin();
    bool any = false;
    for (std::sregex_iterator it(s.begin(), s.end(), var_regex()), end; it != end; ++it) {
      const auto& mm = *it;
      const std::string name = mm[1];
      if (!has(name)) {
        undefined(name, source, pointer);
        continue;
      }
      any = true;
      out.append(begin, mm[0].first);
      out += scalar_text(resolved(name));
      begin = mm[0].second;
    }
    if (!any) return s;
    out.append(begin, s.cend());
    return out;
  }

  void substitute_all(json& node, const std::string& pointer) {
    if (node.is_string()) {
      node = substitute_string(node.get<std::string>(), source_, pointer);
    } else if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it)
        substitute_all(it.value(), ptr_join(pointer, it.key()));
    } else if (node.is_array()) {
      for (std::size_t i = 0; i < node.size(); ++i)
        substitute_all(node[i], pointer + "/" + std::to_string(i));
    }
  }

  json table() {
    json t = json::object();
    for (const auto& [k, v] : values_) {
      try {
        t[k] = resolved(k);
      } catch (const ConfigError& e) {
        report_(e);
        t[k] = v;
      }
    }
    return t;
  }

 private:
  void undefined(const std::string& name, const std::string& source, const std::string& pointer) {
    std::string hint = did_you_mean(name, names());
    if (!hint.empty())
      hint = "; did you mean '{" +
             hint.substr(hint.find('\'') + 1, hint.rfind('\'') - hint.find('\'') - 1) + "}'?";
    report_(source, pointer,
            "undefined variable '{" + name + "}'" + hint +
                " (define it in environment.json, as a top-level key, or with --set " + name +
                "=VALUE)");
  }

  const Reporter& report_;
  std::string source_;
  std::map<std::string, json> values_;
  std::map<std::string, std::string> origins_;
  std::map<std::string, json> done_;
  std::vector<std::string> stack_;
};

void collect_var_uses(const json& node, std::set<std::string>& out) {
  if (node.is_string()) {
    const auto s = node.get<std::string>();
    for (std::sregex_iterator it(s.begin(), s.end(), var_regex()), end; it != end; ++it)
      out.insert((*it)[1]);
  } else if (node.is_structured()) {
    for (const auto& v : node) collect_var_uses(v, out);
  }
}

// ---------------------------------------------------------------- format detection

void refuse_unsupported(const json& doc, const std::string& src, const Reporter& report) {
  auto v3 = [&](const std::string& pointer, const std::string& what) {
    throw ConfigError(
        src, pointer,
        "this is a Clara 3.x (TensorFlow) config (" + what +
            "); Barton reads Clara 4.x (PyTorch/MONAI) configs: convert it with Clara's "
            "medl.tools.mmar_converter or rewrite it with MONAI components (see "
            "docs/mmar-format.md)");
  };
  if (doc.contains("train") && doc["train"].is_object()) {
    for (const char* k : {"image_pipeline", "lr_policy", "aux_ops"}) {
      if (doc["train"].contains(k))
        v3("/train/" + std::string(k), "'" + std::string(k) + "' is a 3.x key");
    }
  }
  for (const char* k : {"model_loader", "val_metrics", "label_transforms", "use_amp",
                        "num_training_epoch_per_valid"}) {
    if (doc.contains(k)) v3("/" + std::string(k), "'" + std::string(k) + "' is a 3.x key");
  }
  if (doc.contains("servers") || doc.contains("aggregator") || doc.contains("client_trainer")) {
    throw ConfigError(
        src, "",
        "this is a federated-learning config (config_fed_server/client.json); it is read by "
        "`barton fl-server` / `barton fl-client`, which are not yet available in this version");
  }
  if (doc.contains("controller") && doc.contains("executor")) {
    throw ConfigError(
        src, "",
        "this is an AutoML config (config_automl.json); `barton automl` is not yet available");
  }
  if (doc.contains("inference") && doc.contains("type") && doc.contains("version")) {
    throw ConfigError(
        src, "",
        "this is an AIAA model config (config_aiaa.json); it is read by `barton serve`, "
        "which is not yet available in this version");
  }
  (void)report;
}

// ---------------------------------------------------------------- the resolver

struct Resolver {
  const ConfigFiles& files;
  const ResolveOptions& options;
  const Registries& registries;
  Reporter report;
  std::string src;  // config display name
  json doc;
  ConfigKind kind = ConfigKind::kTrain;
  std::vector<std::string> sections;   // pointers
  std::optional<ConfigNode> doc_node;  // read-only view of `doc` for the component checks

  // ---- references
  struct Ref {
    std::string from_node;  // "<section>/<field>"
    std::string pointer;    // where the reference is written
    std::string target;     // name without '@'
  };
  std::vector<Ref> refs;

  json* section_at(const std::string& ptr) {
    return ptr.empty() ? &doc : &doc[json::json_pointer(ptr)];
  }

  std::string node_id(const std::string& section, const std::string& field) {
    return section + "/" + field;
  }

  // Where `@name` written in `section` points to: the same section, else the training section,
  // else the validation section. "" when nothing matches.
  std::string resolve_target(const std::string& section, const std::string& name) {
    if (name == "conf") return "conf";
    std::vector<std::string> order = {section};
    for (const auto& s : sections) {
      if (s != section) order.push_back(s);
    }
    for (const auto& s : order) {
      const json* sec = section_at(s);
      if (sec->is_object() && sec->contains(name) && field_info(name)) return node_id(s, name);
    }
    return "";
  }

  // ---- ref expansion (validate sections reuse train components by name)
  void expand_refs(const std::string& sec_ptr) {
    json& sec = *section_at(sec_ptr);
    for (const auto& f : kFields) {
      if (!f.list || !sec.contains(f.name) || !sec[f.name].is_array()) continue;
      json& list = sec[f.name];
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (!list[i].is_object() || !list[i].contains("ref")) continue;
        const std::string ptr = ptr_join(sec_ptr, f.name) + "/" + std::to_string(i);
        if (!list[i]["ref"].is_string()) {
          report(
              src, ptr + "/ref",
              "expected the name of a component, got " + std::string(list[i]["ref"].type_name()));
          continue;
        }
        const std::string want = list[i]["ref"];
        for (auto it = list[i].begin(); it != list[i].end(); ++it) {
          if (it.key() != "ref")
            report(src, ptr_join(ptr, it.key()), "a {\"ref\"} entry takes no other keys");
        }
        bool found = false;
        std::vector<std::string> names;
        for (const auto& other : sections) {
          if (other == sec_ptr) continue;
          const json& osec = *section_at(other);
          if (!osec.contains(f.name) || !osec[f.name].is_array()) continue;
          for (const auto& c : osec[f.name]) {
            if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) continue;
            std::string n = c["name"];
            names.push_back(n);
            const auto hash = n.find('#');  // Clara 3.x "Name#Alias"
            if (n == want || (hash != std::string::npos &&
                              (n.substr(hash + 1) == want || n.substr(0, hash) == want))) {
              list[i] = c;
              found = true;
              break;
            }
          }
          if (found) break;
        }
        if (!found) {
          report(src, ptr + "/ref",
                 "ref '" + want + "' matches no component in the other section's " + f.name +
                     did_you_mean(want, names) +
                     (names.empty() ? "" : " (names: " + join(names, ", ") + ")"));
        }
      }
    }
  }

  // ---- implicit wiring
  bool has_field(const std::string& sec_ptr, const std::string& name) {
    return !resolve_target(sec_ptr, name).empty();
  }

  static json& args_of(json& comp) {
    if (!comp.contains("args") || !comp["args"].is_object()) comp["args"] = json::object();
    return comp["args"];
  }

  void set_default(json& comp, const char* arg, const json& value) {
    if (!comp.is_object()) return;
    json& a = args_of(comp);
    if (!a.contains(arg)) a[arg] = value;
  }

  void wire(const std::string& sec_ptr, bool training, const json& vars) {
    json& sec = *section_at(sec_ptr);
    // Older style: "metrics": [{..., "is_key_metric": true}, ...] -> key_metric +
    // additional_metrics.
    if (sec.contains("metrics") && sec["metrics"].is_array() && !sec.contains("key_metric")) {
      json metrics = sec["metrics"];
      std::size_t key = 0;
      for (std::size_t i = 0; i < metrics.size(); ++i) {
        if (metrics[i].is_object() && metrics[i].contains("is_key_metric") &&
            metrics[i]["is_key_metric"] == true)
          key = i;
      }
      json additional = json::array();
      for (std::size_t i = 0; i < metrics.size(); ++i) {
        json m = metrics[i];
        if (m.is_object()) m.erase("is_key_metric");
        if (i == key)
          sec["key_metric"] = m;
        else
          additional.push_back(m);
      }
      if (!additional.empty() && !sec.contains("additional_metrics"))
        sec["additional_metrics"] = additional;
      sec.erase("metrics");
    }
    if (sec.contains("dataset") && sec["dataset"].is_object() &&
        has_field(sec_ptr, "pre_transforms")) {
      set_default(sec["dataset"], "transform", "@pre_transforms");
    }
    if (sec.contains("dataloader") && sec["dataloader"].is_object() &&
        has_field(sec_ptr, "dataset")) {
      set_default(sec["dataloader"], "dataset", "@dataset");
    }
    if (sec.contains("optimizer") && sec["optimizer"].is_object() && has_field(sec_ptr, "model")) {
      set_default(sec["optimizer"], "params", "#@model.parameters()");
    }
    if (sec.contains("lr_scheduler") && sec["lr_scheduler"].is_object() &&
        has_field(sec_ptr, "optimizer")) {
      set_default(sec["lr_scheduler"], "optimizer", "@optimizer");
    }
    if (sec.contains("handlers") && sec["handlers"].is_array()) {
      for (auto& h : sec["handlers"]) {
        if (!h.is_object() || !h.contains("name") || !h["name"].is_string()) continue;
        const std::string n = h["name"];
        if (n == "LrScheduleHandler" && has_field(sec_ptr, "lr_scheduler"))
          set_default(h, "lr_scheduler", "@lr_scheduler");
        if (n == "ValidationHandler") {
          if (has_field(sec_ptr, "evaluator")) set_default(h, "validator", "@evaluator");
          if (vars.contains("num_interval_per_valid"))
            set_default(h, "interval", vars["num_interval_per_valid"]);
        }
      }
    }
    auto link = [&](json& comp, const char* arg, const char* field) {
      if (has_field(sec_ptr, field)) set_default(comp, arg, std::string("@") + field);
    };
    if (training) {
      json& t = sec["trainer"];
      if (t.is_object() && !(is_disabled(t))) {
        if (vars.contains("epochs")) set_default(t, "max_epochs", vars["epochs"]);
        link(t, "train_data_loader", "dataloader");
        link(t, "network", "model");
        link(t, "loss_function", "loss");
        link(t, "optimizer", "optimizer");
        // What MONAI's SupervisedTrainer has defaults for (SimpleInferer, no post transforms, no
        // metric) comes from the train section only: the validate section's sliding window or
        // MeanDice would otherwise run on every training batch.
        if (sec.contains("inferer")) link(t, "inferer", "inferer");
        if (sec.contains("post_transforms")) link(t, "postprocessing", "post_transforms");
        if (sec.contains("key_metric")) link(t, "key_train_metric", "key_metric");
        if (sec.contains("additional_metrics")) link(t, "additional_metrics", "additional_metrics");
        if (sec.contains("handlers")) link(t, "train_handlers", "handlers");
        if (vars.contains("amp")) set_default(t, "amp", vars["amp"]);
      }
    } else {
      json& e = sec["evaluator"];
      if (e.is_object() && !(is_disabled(e))) {
        link(e, "val_data_loader", "dataloader");
        link(e, "network", "model");
        link(e, "inferer", "inferer");
        link(e, "postprocessing", "post_transforms");
        if (sec.contains("key_metric")) link(e, "key_val_metric", "key_metric");
        if (sec.contains("additional_metrics")) link(e, "additional_metrics", "additional_metrics");
        if (sec.contains("handlers")) link(e, "val_handlers", "handlers");
        if (vars.contains("amp")) set_default(e, "amp", vars["amp"]);
      }
    }
  }

  // ---- validation
  std::vector<std::string> extra_keys(const std::string& field) {
    std::vector<std::string> k = {"rank", "search", "apply"};
    if (field == "key_metric" || field == "additional_metrics" || field == "metrics") {
      k.push_back("log_label");
      k.push_back("is_key_metric");
    }
    if (field == "dataset") {
      for (const char* s : {"data_list_file_path", "data_file_base_dir", "data_list_key"})
        k.push_back(s);
    }
    return k;
  }

  void scan_code(const json& node, const std::string& pointer, const std::string& from) {
    if (node.is_string()) {
      const std::string s = node.get<std::string>();
      if (!looks_like_code(s)) return;
      try {
        const auto idiom = parse_idiom(s);
        if (idiom &&
            (idiom->kind == IdiomKind::kReference || idiom->kind == IdiomKind::kParameters)) {
          refs.push_back({from, pointer, idiom->target});
        }
      } catch (const Error& e) {
        report(src, pointer, e.what());
      }
    } else if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it)
        scan_code(it.value(), ptr_join(pointer, it.key()), from);
    } else if (node.is_array()) {
      for (std::size_t i = 0; i < node.size(); ++i)
        scan_code(node[i], pointer + "/" + std::to_string(i), from);
    }
  }

  void validate_model_entries(const json& m, const std::string& ptr) {
    auto one = [&](const json& e, const std::string& p) {
      if (!e.is_object()) {
        report(src, p,
               "expected {\"ts_path\": ...} or {\"ckpt_path\": ...}, got " +
                   std::string(e.type_name()));
        return;
      }
      int paths = 0;
      for (auto it = e.begin(); it != e.end(); ++it) {
        const auto k = it.key();
        if (k == "ts_path" || k == "ckpt_path") {
          ++paths;
          if (!it.value().is_string()) report(src, ptr_join(p, k), "expected a file path string");
        } else if (k == "disabled") {
          if (!it.value().is_boolean())
            report(src, ptr_join(p, k),
                   "expected a boolean (true or false), got " + it.value().dump());
        } else {
          report(src, ptr_join(p, k),
                 "unknown key '" + k + "'" + did_you_mean(k, {"ts_path", "ckpt_path", "disabled"}) +
                     " (allowed: ts_path, ckpt_path, disabled)");
        }
      }
      if (paths != 1) report(src, p, "a model entry needs exactly one of ts_path or ckpt_path");
    };
    if (m.is_array()) {
      for (std::size_t i = 0; i < m.size(); ++i) one(m[i], ptr + "/" + std::to_string(i));
    } else {
      one(m, ptr);
    }
  }

  void validate_component(const std::string& field,
                          const json& comp,
                          const std::string& ptr,
                          const std::string& from) {
    const FieldInfo* f = field_info(field);
    if (comp.is_object() && is_disabled(comp)) return;  // never built
    if (field == "model" &&
        (comp.is_array() || (comp.is_object() && !comp.contains("name") &&
                             (comp.contains("ts_path") || comp.contains("ckpt_path"))))) {
      validate_model_entries(comp, ptr);
      return;
    }
    const RegistryBase* reg = registries.by_kind(f->kind);
    BARTON_INTERNAL_ASSERT(reg, "no registry for kind {}", f->kind);
    Diagnostics local;
    // Navigate to the component's node so pointers come out right.
    ConfigNode at = *doc_node;
    for (const auto& token : split(ptr.substr(1), '/')) {
      std::string t;
      for (std::size_t i = 0; i < token.size(); ++i) {
        if (token[i] == '~' && i + 1 < token.size()) {
          t += token[i + 1] == '1' ? '/' : '~';
          ++i;
        } else {
          t += token[i];
        }
      }
      at = at.is_array() ? at.at(static_cast<std::size_t>(std::stoul(t))) : at.at(t);
    }
    reg->validate(at, local, extra_keys(field));
    for (const auto& e : local.errors()) report(e);
    if (comp.is_object()) {
      if (field == "dataset") {
        for (const char* k : {"data_list_file_path", "data_file_base_dir", "data_list_key"}) {
          if (comp.contains(k) && !comp[k].is_string())
            report(src, ptr_join(ptr, k), "expected a string");
        }
      }
      if (comp.contains("args")) scan_code(comp["args"], ptr_join(ptr, "args"), from);
    }
  }

  void validate_section(const std::string& sec_ptr) {
    const json& sec = *section_at(sec_ptr);
    for (auto it = sec.begin(); it != sec.end(); ++it) {
      const std::string key = it.key();
      const std::string ptr = ptr_join(sec_ptr, key);
      const FieldInfo* f = field_info(key);
      if (!f) {
        if (sec_ptr.empty()) continue;  // top-level keys of flat configs are checked elsewhere
        report(src, ptr,
               "unknown section key '" + key + "'" + did_you_mean(key, field_names()) +
                   " (known: " + join(field_names(), ", ") + ")");
        continue;
      }
      const std::string from = node_id(sec_ptr, key);
      if (f->list) {
        if (!it.value().is_array()) {
          report(src, ptr,
                 "expected a list of components, got " + std::string(it.value().type_name()));
          continue;
        }
        for (std::size_t i = 0; i < it.value().size(); ++i) {
          validate_component(key, it.value()[i], ptr + "/" + std::to_string(i), from);
        }
      } else {
        validate_component(key, it.value(), ptr, from);
      }
    }
  }

  void check_top_level() {
    const std::vector<std::string> objects = {"train", "validate", "determinism", "search"};
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      const std::string key = it.key();
      if (is_scalar(it.value())) continue;  // variables
      if (kind == ConfigKind::kTrain && field_info(key)) {
        report(src, ptr_join("", key),
               "'" + key + "' belongs inside \"train\" or \"validate\" in a training config");
        continue;
      }
      if (field_info(key) || std::find(objects.begin(), objects.end(), key) != objects.end())
        continue;
      std::vector<std::string> known = objects;
      for (const auto& f : field_names()) known.push_back(f);
      report(src, ptr_join("", key),
             "unknown top-level key '" + key + "'" + did_you_mean(key, known));
    }
    if (doc.contains("determinism")) {
      const json& d = doc["determinism"];
      if (!d.is_object()) {
        report(src, "/determinism", "expected an object {\"random_seed\": N}");
      } else {
        for (auto it = d.begin(); it != d.end(); ++it) {
          if (it.key() != "random_seed") {
            report(src, "/determinism/" + pointer_escape(it.key()),
                   "unknown key '" + it.key() + "'" + did_you_mean(it.key(), {"random_seed"}) +
                       " (allowed: random_seed)");
          } else if (!it.value().is_number_integer()) {
            report(src, "/determinism/random_seed",
                   "expected an integer, got " + it.value().dump());
          }
        }
      }
    }
  }

  // ---- references and cycles
  void check_references() {
    std::map<std::string, std::vector<std::pair<std::string, const Ref*>>> edges;
    for (const auto& r : refs) {
      const auto section = r.from_node.substr(0, r.from_node.rfind('/'));
      const auto target = resolve_target(section, r.target);
      if (target.empty()) {
        std::set<std::string> known_set = {"conf"};
        for (const auto& s : sections) {
          const json* sec = section_at(s);
          for (auto it = sec->begin(); it != sec->end(); ++it) {
            if (field_info(it.key())) known_set.insert(it.key());
          }
        }
        const std::vector<std::string> known(known_set.begin(), known_set.end());
        std::string hint = did_you_mean(r.target, known);
        if (!hint.empty()) hint = "; did you mean '@" + hint.substr(hint.find('\'') + 1);
        report(src, r.pointer,
               "unknown reference '@" + r.target + "'" + hint + " (known: @" + join(known, ", @") +
                   ")");
        continue;
      }
      if (target != "conf") edges[r.from_node].push_back({target, &r});
    }
    // Depth-first search for cycles.
    std::map<std::string, int> state;  // 0 new, 1 on stack, 2 done
    std::vector<std::pair<std::string, const Ref*>> stack;
    std::set<std::string> reported;
    std::function<void(const std::string&)> dfs = [&](const std::string& n) {
      state[n] = 1;
      for (const auto& [to, ref] : edges[n]) {
        if (state[to] == 1) {
          std::string chain;
          bool on = false;
          for (const auto& [node, r] : stack) {
            if (node == to) on = true;
            if (on) chain += "@" + node.substr(node.rfind('/') + 1) + " -> ";
          }
          chain += "@" + n.substr(n.rfind('/') + 1) + " -> @" + to.substr(to.rfind('/') + 1);
          if (reported.insert(ref->pointer).second)
            report(src, ref->pointer, "circular reference: " + chain);
        } else if (state[to] == 0) {
          stack.push_back({n, ref});
          dfs(to);
          stack.pop_back();
        }
      }
      state[n] = 2;
    };
    for (const auto& [n, e] : edges) {
      if (state[n] == 0) {
        stack.clear();
        dfs(n);
      }
    }
  }

  // ---- files
  std::string under_root(const std::string& p) const {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (fs::path(files.mmar_root) / p).lexically_normal().string();
  }

  void check_files_exist() {
    std::error_code ec;
    auto need = [&](const std::string& pointer, const std::string& path, const char* what) {
      if (!fs::exists(under_root(path), ec))
        report(src, pointer, std::string("missing ") + what + ": " + under_root(path));
    };
    for (const auto& s : sections) {
      const json& sec = *section_at(s);
      if (sec.contains("dataset") && sec["dataset"].is_object() && !is_disabled(sec["dataset"])) {
        const json& d = sec["dataset"];
        const std::string dptr = ptr_join(s, "dataset");
        const std::string list = string_field(d, "data_list_file_path", "");
        const std::string base = string_field(d, "data_file_base_dir", "");
        const std::string key = string_field(d, "data_list_key", "training");
        if (list.empty()) {
          report(src, dptr, "missing 'data_list_file_path' (the datalist JSON)");
        } else if (!fs::exists(under_root(list), ec)) {
          report(src, dptr + "/data_list_file_path", "missing datalist: " + under_root(list));
        } else {
          if (!base.empty() && !fs::is_directory(under_root(base), ec)) {
            report(src, dptr + "/data_file_base_dir", "missing data folder: " + under_root(base));
          }
          try {
            data::load_datalist(under_root(list), key,
                                {base.empty() ? "" : under_root(base), true});
          } catch (const ConfigError& e) {
            report(src, dptr + "/data_list_key", e.what());
          } catch (const Error& e) {
            report(src, dptr + "/data_list_file_path", e.what());
          }
        }
      }
      if (sec.contains("model")) {
        const json& m = sec["model"];
        const std::string mptr = ptr_join(s, "model");
        auto entry = [&](const json& e, const std::string& p) {
          if (!e.is_object() || is_disabled(e)) return;
          for (const char* k : {"ts_path", "ckpt_path"}) {
            if (e.contains(k) && e[k].is_string()) need(ptr_join(p, k), e[k], "model file");
          }
        };
        if (m.is_array()) {
          for (std::size_t i = 0; i < m.size(); ++i) entry(m[i], mptr + "/" + std::to_string(i));
        } else {
          entry(m, mptr);
        }
      }
      if (sec.contains("handlers") && sec["handlers"].is_array()) {
        for (std::size_t i = 0; i < sec["handlers"].size(); ++i) {
          const json& h = sec["handlers"][i];
          if (!h.is_object() || is_disabled(h) || string_field(h, "name", "") != "CheckpointLoader")
            continue;
          if (h.contains("args") && h["args"].contains("load_path") &&
              h["args"]["load_path"].is_string()) {
            need(ptr_join(s, "handlers") + "/" + std::to_string(i) + "/args/load_path",
                 h["args"]["load_path"], "checkpoint");
          }
        }
      }
    }
  }
};

std::string display_name(const std::string& path) {
  std::error_code ec;
  const auto rel = fs::relative(path, fs::current_path(), ec);
  if (!ec && !rel.empty() && rel.native().rfind("..", 0) != 0) return rel.string();
  return path;
}

void apply_pointer_set(json& doc,
                       const std::string& pointer,
                       const json& value,
                       const std::string& arg) {
  json::json_pointer p;
  try {
    p = json::json_pointer(pointer);
  } catch (const json::exception&) {
    throw ConfigError("--set " + arg, "", "'" + pointer + "' is not a valid JSON pointer");
  }
  if (!doc.contains(p.parent_pointer())) {
    throw ConfigError("--set " + arg, "",
                      "no such location: " + p.parent_pointer().to_string() + " does not exist");
  }
  json& parent = doc[p.parent_pointer()];
  if (parent.is_array()) {
    const auto last = p.back();
    if (last.empty() || last.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(last) >= parent.size()) {
      throw ConfigError(
          "--set " + arg, "",
          "index '" + last + "' is out of range for " + p.parent_pointer().to_string());
    }
  } else if (!parent.is_object()) {
    throw ConfigError("--set " + arg, "",
                      p.parent_pointer().to_string() + " is not an object or array");
  }
  doc[p] = value;
}

// Train configs have a "train" section (and maybe "validate"); evaluation configs are one section
// at the top level.
void find_sections(Resolver& r) {
  if (r.doc.contains("train")) {
    r.kind = ConfigKind::kTrain;
    if (!r.doc["train"].is_object()) throw ConfigError(r.src, "/train", "expected an object");
    r.sections.push_back("/train");
    if (r.doc.contains("validate")) {
      if (!r.doc["validate"].is_object())
        throw ConfigError(r.src, "/validate", "expected an object");
      r.sections.push_back("/validate");
    }
  } else {
    bool any = false;
    for (const auto& f : kFields) any = any || r.doc.contains(f.name);
    if (!any) {
      std::vector<std::string> keys;
      for (auto it = r.doc.begin(); it != r.doc.end(); ++it) keys.push_back(it.key());
      throw ConfigError(
          r.src, "",
          "not a Clara 4.x config: expected \"train\" (training) or \"evaluator\", \"dataset\", "
          "\"pre_transforms\"... (validation/inference); found keys: " +
              join(keys, ", "));
    }
    r.kind = ConfigKind::kEvaluate;
    r.sections.push_back("");
  }
}

// --set KEY=VALUE (a variable) and --set /json/pointer=VALUE (any value), in order; each problem is
// reported with the argument.
void apply_sets(Resolver& r,
                Variables& vars,
                const std::set<std::string>& used,
                const std::vector<std::string>& sets,
                const std::string& env_src,
                Reporter& report) {
  for (const auto& arg : sets) {
    const auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      report("--set " + arg, "", "expected KEY=VALUE or /json/pointer=VALUE");
      continue;
    }
    const std::string key = arg.substr(0, eq);
    const json value = json::parse(parse_set_value_json(arg.substr(eq + 1)));
    try {
      if (key[0] == '/') {
        apply_pointer_set(r.doc, key, value, arg);
        continue;
      }
      if (!vars.has(key) && !used.count(key)) {
        std::vector<std::string> known = vars.names();
        throw ConfigError("--set " + arg, "",
                          "no variable '" + key + "' in " + r.src +
                              (env_src.empty() ? "" : " or " + env_src) + did_you_mean(key, known) +
                              " (to change a nested value use --set /json/pointer=VALUE)");
      }
      vars.define(key, value, "--set " + arg);
      if (r.doc.contains(key) && is_scalar(r.doc[key])) r.doc[key] = value;
    } catch (const ConfigError& e) {
      report(e);
    }
  }
}

ResolvedConfig resolve_impl(const ConfigFiles& files,
                            const ResolveOptions& options,
                            const Registries& registries,
                            Diagnostics* diag) {
  Reporter report(diag);
  Resolver r{
      files, options, registries, report, display_name(files.config_path), {}, ConfigKind::kTrain,
      {},    {}};
  r.doc = ConfigNode::load(files.config_path, r.src).json();
  if (!r.doc.is_object()) throw ConfigError(r.src, "", "a config must be a JSON object");
  refuse_unsupported(r.doc, r.src, report);

  find_sections(r);

  // Variables: built-ins, then environment.json, then top-level scalars, then --set.
  Variables vars(report, r.src);
  vars.define("MMAR_ROOT", files.mmar_root, r.src);
  json env = json::object();
  std::string env_src;
  if (!files.env_path.empty()) {
    env_src = display_name(files.env_path);
    env = ConfigNode::load(files.env_path, env_src).json();
    if (!env.is_object())
      throw ConfigError(env_src, "", "environment.json must be an object of variables");
    for (auto it = env.begin(); it != env.end(); ++it) {
      if (!is_scalar(it.value())) {
        report(env_src, ptr_join("", it.key()), "a variable must be a string, number or boolean");
        continue;
      }
      vars.define(it.key(), it.value(), env_src);
    }
  }
  for (auto it = r.doc.begin(); it != r.doc.end(); ++it) {
    if (is_scalar(it.value())) vars.define(it.key(), it.value(), r.src);
  }
  std::set<std::string> used;
  collect_var_uses(r.doc, used);
  collect_var_uses(env, used);
  apply_sets(r, vars, used, options.sets, env_src, report);
  // Substitute everywhere (the variables' own values first, so cycles are reported once).
  json table;
  try {
    table = vars.table();
    vars.substitute_all(r.doc, "");
  } catch (const ConfigError& e) {
    report(e);
  }

  r.check_top_level();
  for (const auto& s : r.sections) {
    if (!s.empty() && s != r.sections.front())
      r.expand_refs(s);
    else if (s.empty())
      r.expand_refs(s);
  }
  // The implicit style names no trainer/evaluator: add them first so every reference can be wired.
  for (const auto& s : r.sections) {
    json& sec = *r.section_at(s);
    const bool training = r.kind == ConfigKind::kTrain && s == "/train";
    const char* engine = training ? "trainer" : "evaluator";
    if (!sec.contains(engine)) {
      sec[engine] = {{"name", training ? "SupervisedTrainer" : "SupervisedEvaluator"},
                     {"args", json::object()}};
    }
  }
  for (const auto& s : r.sections) {
    const bool training = r.kind == ConfigKind::kTrain && s == "/train";
    r.wire(s, training, table);
  }
  r.doc_node = ConfigNode::from_json(r.doc, r.src);  // the document is final from here on
  for (const auto& s : r.sections) r.validate_section(s);
  r.check_references();
  if (options.check_files) r.check_files_exist();

  ResolvedConfig out;
  out.files = files;
  out.kind = r.kind;
  out.doc = ConfigNode::from_json(r.doc, r.src);
  out.variables = ConfigNode::from_json(table.is_object() ? table : json::object(), "variables");
  out.sections = r.sections;
  return out;
}

}  // namespace

std::string parse_set_value_json(const std::string& text) {
  if (text == "True" || text == "true") return "true";
  if (text == "False" || text == "false") return "false";
  if (text == "None" || text == "null") return "null";
  try {
    const auto v = json::parse(text);
    return v.dump();
  } catch (const json::exception&) {
  }
  try {
    return json(text).dump();
  } catch (const json::type_error&) {
    // Found by fuzz/config: a value that is not UTF-8 cannot become a JSON string.
    throw ConfigError("--set", "",
                      "a value is not valid UTF-8: " +
                          json(text).dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

ResolvedConfig resolve_config(const ConfigFiles& files,
                              const ResolveOptions& options,
                              const Registries& registries) {
  return resolve_impl(files, options, registries, nullptr);
}

ResolvedConfig resolve_config(const ConfigFiles& files,
                              const ResolveOptions& options,
                              const Registries& registries,
                              Diagnostics& diag) {
  return resolve_impl(files, options, registries, &diag);
}

}  // namespace barton::mmar
