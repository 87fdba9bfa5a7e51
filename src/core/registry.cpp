#include "core/registry.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace barton {

std::string arg_type_name(ArgType type) {
  switch (type) {
    case ArgType::kAny:
      return "any";
    case ArgType::kBool:
      return "bool";
    case ArgType::kInt:
      return "int";
    case ArgType::kFloat:
      return "float";
    case ArgType::kString:
      return "str";
    case ArgType::kBools:
      return "bool | list[bool]";
    case ArgType::kInts:
      return "int | list[int]";
    case ArgType::kFloats:
      return "float | list[float]";
    case ArgType::kStrings:
      return "str | list[str]";
    case ArgType::kObject:
      return "object";
    case ArgType::kReference:
      return "@reference";
    case ArgType::kCallable:
      return "callable";
  }
  return "any";
}

ArgSpec req(std::string name, ArgType type, std::string doc) {
  return ArgSpec{std::move(name), type, "", std::move(doc), true};
}

ArgSpec opt(std::string name, ArgType type, std::string default_json, std::string doc) {
  return ArgSpec{std::move(name), type, std::move(default_json), std::move(doc), false};
}

ComponentSpec dict_spec(std::string name, std::string summary, std::vector<ArgSpec> args) {
  const std::string stem = name.substr(0, name.size() - 1);
  ComponentSpec s{std::move(name), std::move(summary), std::move(args), ""};
  s.aliases = {stem + "D", stem + "Dict"};
  return s;
}

std::vector<std::pair<std::string, std::string>> ComponentSpec::defaults() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& a : args) {
    if (!a.required && !a.default_json.empty()) out.emplace_back(a.name, a.default_json);
  }
  return out;
}

std::vector<std::string> RegistryBase::names() const {
  std::vector<std::string> out;
  for (const auto& [name, spec] : specs_) out.push_back(name);
  return out;
}

const ComponentSpec* RegistryBase::find(std::string_view name) const {
  const auto it = specs_.find(canonical_name(name));
  return it == specs_.end() ? nullptr : &it->second;
}

void RegistryBase::add_alias(std::string alias, std::string canonical) {
  BARTON_INTERNAL_ASSERT(specs_.count(canonical), "alias '{}' of unknown {} '{}'", alias, kind_,
                         canonical);
  BARTON_INTERNAL_ASSERT(!specs_.count(alias) && !aliases_.count(alias), "{} name '{}' used twice",
                         kind_, alias);
  aliases_.emplace(std::move(alias), std::move(canonical));
}

std::string RegistryBase::canonical_name(std::string_view name) const {
  if (specs_.find(name) != specs_.end()) return std::string(name);
  const auto it = aliases_.find(name);
  return it == aliases_.end() ? std::string() : it->second;
}

std::vector<std::string> RegistryBase::aliases_of(std::string_view canonical) const {
  std::vector<std::string> out;
  for (const auto& [alias, target] : aliases_) {
    if (target == canonical) out.push_back(alias);
  }
  return out;
}

void RegistryBase::add_spec(ComponentSpec spec) {
  BARTON_INTERNAL_ASSERT(!specs_.count(spec.name), "{} '{}' registered twice", kind_, spec.name);
  const std::string name = spec.name;
  const auto aliases = spec.aliases;
  specs_.emplace(name, std::move(spec));
  for (const auto& alias : aliases) add_alias(alias, name);
}

void RegistryBase::add_planned(ComponentSpec spec) {
  add_spec(std::move(spec));
}

void RegistryBase::throw_unknown(const ConfigNode& name_node, const std::string& name) const {
  throw ConfigError(name_node.source(), name_node.pointer(),
                    "unknown " + kind_ + " '" + name + "'" + did_you_mean(name, names()));
}

void RegistryBase::throw_unavailable(const ConfigNode& name_node, const ComponentSpec& s) const {
  throw ConfigError(name_node.source(), name_node.pointer(),
                    kind_ + " '" + s.name + "' is not yet available in this version of Barton" +
                        (s.provided_by.empty() ? "" : " (planned: " + s.provided_by + ")"));
}

namespace {

bool is_reference_string(const ConfigNode& v) {
  if (!v.is_string()) return false;
  const auto s = v.as<std::string>();
  return starts_with(s, "@") || starts_with(s, "#@");
}

bool matches_scalar(const ConfigNode& v, ArgType scalar) {
  switch (scalar) {
    case ArgType::kBool:
      return v.is_bool();
    case ArgType::kInt:
      return v.is_number() && v.is_integer();
    case ArgType::kFloat:
      return v.is_number();
    case ArgType::kString:
      return v.is_string();
    default:
      return true;
  }
}

bool matches(const ConfigNode& v, ArgType type) {
  if (v.is_null()) return true;  // Python None: "use the default behaviour"
  switch (type) {
    case ArgType::kAny:
      return true;
    case ArgType::kBool:
    case ArgType::kInt:
    case ArgType::kFloat:
    case ArgType::kString:
      return matches_scalar(v, type);
    case ArgType::kBools:
    case ArgType::kInts:
    case ArgType::kFloats:
    case ArgType::kStrings: {
      const ArgType scalar = type == ArgType::kBools    ? ArgType::kBool
                             : type == ArgType::kInts   ? ArgType::kInt
                             : type == ArgType::kFloats ? ArgType::kFloat
                                                        : ArgType::kString;
      if (!v.is_array()) return matches_scalar(v, scalar);
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!matches_scalar(v.at(i), scalar)) return false;
      }
      return true;
    }
    case ArgType::kObject:
      return v.is_object() || v.is_array() || is_reference_string(v);
    case ArgType::kReference:
      return v.is_string() || v.is_array() || v.is_object();
    case ArgType::kCallable:
      return v.is_string();
  }
  return true;
}

}  // namespace

void RegistryBase::validate(const ConfigNode& spec,
                            Diagnostics& diag,
                            const std::vector<std::string>& extra_keys) const {
  if (!spec.is_object()) {
    diag.add(spec, "expected a component object {\"name\", \"args\"}, got " + spec.type_name());
    return;
  }
  std::vector<std::string> allowed = {"name", "args", "disabled"};
  allowed.insert(allowed.end(), extra_keys.begin(), extra_keys.end());
  // Clara's deepgrow configs give both a registered name and its Python path: the name decides.
  if (spec.has("path") && !spec.has("name")) {
    diag.add(spec.at("path"), "Python class paths cannot be loaded by Barton; name a registered " +
                                  kind_ + " with \"name\" instead (see `barton list-components " +
                                  kind_ + "`)");
  }
  for (const auto& key : spec.keys()) {
    if (key == "path") continue;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      diag.add(spec.at(key), "unknown key '" + key + "'" + did_you_mean(key, allowed) +
                                 " (allowed: " + join(allowed, ", ") + ")");
    }
  }
  if (spec.has("disabled") && !spec.at("disabled").is_bool()) {
    diag.add(spec.at("disabled"), "expected a boolean (true or false), got " +
                                      spec.at("disabled").type_name() + " " +
                                      spec.at("disabled").dump());
  }
  if (!spec.has("name")) {
    if (!spec.has("path")) diag.add(spec, "missing required key 'name'");
    return;
  }
  const auto name_node = spec.at("name");
  if (!name_node.is_string()) {
    diag.add(name_node, "expected a string, got " + name_node.type_name());
    return;
  }
  const auto name = name_node.as<std::string>();
  const ComponentSpec* s = find(name);
  if (!s) {
    try {
      throw_unknown(name_node, name);
    } catch (const ConfigError& e) {
      diag.add(e);
    }
    return;
  }
  if (!spec.has("args")) {
    for (const auto& a : s->args) {
      if (a.required) diag.add(spec, "missing required argument '" + a.name + "' of " + name);
    }
    return;
  }
  const auto args = spec.at("args");
  if (!args.is_object()) {
    diag.add(args, "expected an object of arguments, got " + args.type_name());
    return;
  }
  std::vector<std::string> arg_names;
  for (const auto& a : s->args) arg_names.push_back(a.name);
  for (const auto& key : args.keys()) {
    const auto it = std::find_if(s->args.begin(), s->args.end(),
                                 [&](const ArgSpec& a) { return a.name == key; });
    if (it == s->args.end()) {
      diag.add(args.at(key), "unknown argument '" + key + "' for " + kind_ + " '" + name + "'" +
                                 did_you_mean(key, arg_names) +
                                 " (arguments: " + join(arg_names, ", ") + ")");
      continue;
    }
    const auto v = args.at(key);
    if (!matches(v, it->type)) {
      diag.add(v,
               "expected " + arg_type_name(it->type) + ", got " + v.type_name() + " " + v.dump());
    }
  }
  for (const auto& a : s->args) {
    if (a.required && !args.has(a.name)) {
      diag.add(args, "missing required argument '" + a.name + "' of " + name);
    }
  }
}

}  // namespace barton
