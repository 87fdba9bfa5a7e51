#pragma once
/// ConfigNode: a read-only view into a parsed JSON document that knows its source file and its
/// RFC 6901 JSON Pointer, so every error can say `<file>:<pointer>: <what is wrong>`.
/// Raw JSON is indexed only in config.cpp; other modules that need the document (the MMAR
/// resolver, printers) go through json().

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/errors.h"

namespace barton {

/// Escapes one reference token for a JSON Pointer ("~" -> "~0", "/" -> "~1").
std::string pointer_escape(std::string_view token);

/// Thread-safety: immutable; copies share the document. Cheap to copy.
class ConfigNode {
 public:
  /// Parses `text`; syntax errors become ConfigError "<source>:<line>:<col>: invalid JSON: ...".
  static ConfigNode parse(std::string_view text, std::string source);
  /// Reads and parses a file; the source name is `display_name` (default: the path).
  static ConfigNode load(const std::string& path, std::string display_name = "");
  /// Wraps an existing document.
  static ConfigNode from_json(const nlohmann::ordered_json& doc, std::string source);

  const std::string& source() const { return source_; }
  const std::string& pointer() const { return pointer_; }
  /// "<source>:<pointer>" for messages.
  std::string where() const;

  bool is_null() const;
  bool is_object() const;
  bool is_array() const;
  bool is_string() const;
  bool is_bool() const;
  bool is_number() const;
  bool is_integer() const;
  /// "object", "array", "string", "number", "boolean" or "null".
  std::string type_name() const;
  /// Number of elements (array) or keys (object); 0 otherwise.
  std::size_t size() const;
  /// Object keys in document order. REQUIRES: is_object() (else empty).
  std::vector<std::string> keys() const;

  bool has(std::string_view key) const;
  /// Child by key; throws ConfigError "missing required key 'k'" at this node.
  ConfigNode at(std::string_view key) const;
  /// Child by index; throws ConfigError when out of range.
  ConfigNode at(std::size_t index) const;
  /// Child by key, or an empty object located at the would-be pointer.
  ConfigNode at_or_empty(std::string_view key) const;

  /// Typed value of this node. Supported T: bool, int, int64_t, double, std::string,
  /// std::vector<int64_t>, std::vector<double>, std::vector<std::string>.
  /// Type mismatches throw ConfigError "expected <type>, got <type> <value>".
  template <typename T>
  T as() const;
  template <typename T>
  T require(std::string_view key) const {
    return at(key).as<T>();
  }
  /// Typed child value, or `fallback` when `key` is absent or null.
  template <typename T>
  T get_or(std::string_view key, T fallback) const {
    return given(key) ? at(key).as<T>() : fallback;
  }
  /// True when `key` is present and not null (null means "not given", as MONAI's None).
  bool given(std::string_view key) const;
  /// Typed child value, or nullopt when `key` is absent or null.
  template <typename T>
  std::optional<T> get_optional(std::string_view key) const {
    if (!given(key)) return std::nullopt;
    return at(key).as<T>();
  }
  /// This object with each (key, JSON text) of `defaults` added where the key is absent; children
  /// keep this node's file and pointer (a component's arguments with its spec's defaults filled).
  /// REQUIRES: is_object().
  ConfigNode with_defaults(const std::vector<std::pair<std::string, std::string>>& defaults) const;
  /// A ConfigError located at this node (its file and JSON Pointer): `throw node.error("...")`.
  ConfigError error(std::string message) const;

  /// Throws ConfigError at the first key not in `allowed` ("unknown key 'x'; did you mean ...").
  void expect_only_keys(std::initializer_list<std::string_view> allowed) const;
  void expect_only_keys(const std::vector<std::string>& allowed) const;

  /// Compact (indent < 0) or pretty JSON text of this node.
  std::string dump(int indent = -1) const;
  /// The underlying JSON value.
  const nlohmann::ordered_json& json() const;

 private:
  ConfigNode(std::shared_ptr<const nlohmann::ordered_json> root,
             const nlohmann::ordered_json* node,
             std::string source,
             std::string pointer);
  [[noreturn]] void type_error(std::string_view expected) const;

  std::shared_ptr<const nlohmann::ordered_json> root_;
  const nlohmann::ordered_json* node_;
  std::string source_;
  std::string pointer_;
};

}  // namespace barton
