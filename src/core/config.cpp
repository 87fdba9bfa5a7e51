#include "core/config.h"

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/strings.h"

namespace barton {

using Json = nlohmann::ordered_json;

std::string pointer_escape(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

namespace {

std::string line_col(std::string_view text, std::size_t byte) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

std::string short_value(const Json& v) {
  auto s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

const Json& empty_object() {
  static const Json kEmpty = Json::object();
  return kEmpty;
}

}  // namespace

ConfigNode::ConfigNode(std::shared_ptr<const Json> root,
                       const Json* node,
                       std::string source,
                       std::string pointer)
    : root_(std::move(root)),
      node_(node),
      source_(std::move(source)),
      pointer_(std::move(pointer)) {}

ConfigNode ConfigNode::parse(std::string_view text, std::string source) {
  try {
    auto doc = std::make_shared<const Json>(Json::parse(text.begin(), text.end()));
    const Json* node = doc.get();
    return ConfigNode(std::move(doc), node, std::move(source), "");
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    // nlohmann's message: "[Json.exception.parse_error.101] parse error at line 3, column 5: ..."
    const auto colon = what.find(": ", what.find("parse error"));
    const std::string detail = colon == std::string::npos ? what : what.substr(colon + 2);
    throw ConfigError(source + ":" + line_col(text, e.byte > 0 ? e.byte - 1 : 0), "",
                      "invalid JSON: " + detail);
  } catch (const Json::out_of_range& e) {
    // A number too large for a double ("7e77777", found by fuzz/datalist): nlohmann reports it
    // as out_of_range.406 "number overflow parsing '7e77777'", without a position.
    std::string what = e.what();
    const auto bracket = what.find("] ");
    throw ConfigError(
        source, "",
        "invalid JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2)));
  }
}

ConfigNode ConfigNode::load(const std::string& path, std::string display_name) {
  const auto text = read_file(path);
  return parse(text, display_name.empty() ? path : std::move(display_name));
}

ConfigNode ConfigNode::from_json(const Json& doc, std::string source) {
  auto root = std::make_shared<const Json>(doc);
  const Json* node = root.get();
  return ConfigNode(std::move(root), node, std::move(source), "");
}

std::string ConfigNode::where() const {
  return source_ + ":" + pointer_;
}

bool ConfigNode::is_null() const {
  return node_->is_null();
}
bool ConfigNode::is_object() const {
  return node_->is_object();
}
bool ConfigNode::is_array() const {
  return node_->is_array();
}
bool ConfigNode::is_string() const {
  return node_->is_string();
}
bool ConfigNode::is_bool() const {
  return node_->is_boolean();
}
bool ConfigNode::is_number() const {
  return node_->is_number();
}
bool ConfigNode::is_integer() const {
  if (node_->is_number_integer()) return true;
  if (node_->is_number_float()) {
    const double d = node_->get<double>();
    return d == static_cast<double>(static_cast<int64_t>(d));
  }
  return false;
}

std::string ConfigNode::type_name() const {
  switch (node_->type()) {
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::null:
      return "null";
    default:
      return "number";
  }
}

std::size_t ConfigNode::size() const {
  return node_->is_array() || node_->is_object() ? node_->size() : 0;
}

std::vector<std::string> ConfigNode::keys() const {
  std::vector<std::string> out;
  if (!node_->is_object()) return out;
  for (auto it = node_->begin(); it != node_->end(); ++it) out.push_back(it.key());
  return out;
}

bool ConfigNode::has(std::string_view key) const {
  return node_->is_object() && node_->find(key) != node_->end();
}

bool ConfigNode::given(std::string_view key) const {
  if (!node_->is_object()) return false;
  const auto it = node_->find(key);
  return it != node_->end() && !it->is_null();
}

ConfigError ConfigNode::error(std::string message) const {
  return ConfigError(source_, pointer_, std::move(message));
}

ConfigNode ConfigNode::at(std::string_view key) const {
  if (!node_->is_object()) {
    throw ConfigError(source_, pointer_,
                      "expected an object with key '" + std::string(key) + "', got " + type_name());
  }
  const auto it = node_->find(key);
  if (it == node_->end()) {
    throw ConfigError(source_, pointer_, "missing required key '" + std::string(key) + "'");
  }
  return ConfigNode(root_, &*it, source_, pointer_ + "/" + pointer_escape(key));
}

ConfigNode ConfigNode::at(std::size_t index) const {
  if (!node_->is_array()) type_error("an array");
  if (index >= node_->size()) {
    throw ConfigError(source_, pointer_,
                      fmt::format("index {} out of range (array has {} items)", index, size()));
  }
  return ConfigNode(root_, &(*node_)[index], source_, pointer_ + "/" + std::to_string(index));
}

ConfigNode ConfigNode::with_defaults(
    const std::vector<std::pair<std::string, std::string>>& defaults) const {
  BARTON_INTERNAL_ASSERT(node_->is_object(), "with_defaults on {} at {}", type_name(), where());
  auto merged = std::make_shared<Json>(*node_);
  for (const auto& [key, text] : defaults) {
    if (!merged->contains(key)) (*merged)[key] = Json::parse(text);
  }
  const Json* node = merged.get();
  return ConfigNode(std::move(merged), node, source_, pointer_);
}

ConfigNode ConfigNode::at_or_empty(std::string_view key) const {
  if (has(key)) return at(key);
  return ConfigNode(root_, &empty_object(), source_, pointer_ + "/" + pointer_escape(key));
}

void ConfigNode::type_error(std::string_view expected) const {
  throw ConfigError(
      source_, pointer_,
      "expected " + std::string(expected) + ", got " + type_name() + " " + short_value(*node_));
}

template <>
bool ConfigNode::as<bool>() const {
  if (!node_->is_boolean()) type_error("a boolean (true or false)");
  return node_->get<bool>();
}

template <>
int64_t ConfigNode::as<int64_t>() const {
  if (!is_number() || !is_integer()) type_error("an integer");
  return node_->is_number_float() ? static_cast<int64_t>(node_->get<double>())
                                  : node_->get<int64_t>();
}

template <>
int ConfigNode::as<int>() const {
  const auto v = as<int64_t>();
  if (v < INT32_MIN || v > INT32_MAX) type_error("a 32-bit integer");
  return static_cast<int>(v);
}

template <>
double ConfigNode::as<double>() const {
  if (!node_->is_number()) type_error("a number");
  return node_->get<double>();
}

template <>
std::string ConfigNode::as<std::string>() const {
  if (!node_->is_string()) type_error("a string");
  return node_->get<std::string>();
}

template <>
std::vector<int64_t> ConfigNode::as<std::vector<int64_t>>() const {
  if (!node_->is_array()) type_error("an array of integers");
  std::vector<int64_t> out;
  for (std::size_t i = 0; i < size(); ++i) out.push_back(at(i).as<int64_t>());
  return out;
}

template <>
std::vector<double> ConfigNode::as<std::vector<double>>() const {
  if (!node_->is_array()) type_error("an array of numbers");
  std::vector<double> out;
  for (std::size_t i = 0; i < size(); ++i) out.push_back(at(i).as<double>());
  return out;
}

template <>
std::vector<std::string> ConfigNode::as<std::vector<std::string>>() const {
  if (!node_->is_array()) type_error("an array of strings");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < size(); ++i) out.push_back(at(i).as<std::string>());
  return out;
}

void ConfigNode::expect_only_keys(std::initializer_list<std::string_view> allowed) const {
  std::vector<std::string> v;
  for (auto a : allowed) v.emplace_back(a);
  expect_only_keys(v);
}

void ConfigNode::expect_only_keys(const std::vector<std::string>& allowed) const {
  if (!node_->is_object()) type_error("an object");
  for (auto it = node_->begin(); it != node_->end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      throw ConfigError(source_, pointer_ + "/" + pointer_escape(it.key()),
                        "unknown key '" + it.key() + "'" + did_you_mean(it.key(), allowed) +
                            " (allowed: " + join(allowed, ", ") + ")");
    }
  }
}

std::string ConfigNode::dump(int indent) const {
  return node_->dump(indent);
}

const Json& ConfigNode::json() const {
  return *node_;
}

}  // namespace barton
