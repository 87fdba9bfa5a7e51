#pragma once
/// Helpers for component factories: optional arguments and "@name" references looked up in the
/// BuildContext, with errors at the argument's JSON Pointer.

#include <any>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "core/registry.h"

namespace barton {

/// args[key] as T, or `fallback` when the key is absent or null.
template <typename T>
T arg_or(const ConfigNode& args, std::string_view key, T fallback) {
  if (!args.has(key) || args.at(key).is_null()) return fallback;
  return args.at(key).as<T>();
}

/// "@name" -> "name" (other strings unchanged).
inline std::string strip_ref(const std::string& s) {
  return !s.empty() && s[0] == '@' ? s.substr(1) : s;
}

/// The reference in args[key] without its "@", or `fallback` when the key is absent or null.
inline std::string ref_arg(const ConfigNode& args, std::string_view key, std::string fallback) {
  if (!args.has(key) || args.at(key).is_null()) return fallback;
  return strip_ref(args.at(key).as<std::string>());
}

/// The object built for `name`, as T. Throws ConfigError at `at` when nothing of that name was
/// built or it is of another kind.
template <typename T>
T lookup_as(const BuildContext& ctx, const std::string& name, const ConfigNode& at) {
  std::any v = ctx.lookup ? ctx.lookup(name) : std::any{};
  if (!v.has_value()) throw at.error(fmt::format("'@{}' is not defined in this config", name));
  try {
    return std::any_cast<T>(v);
  } catch (const std::bad_any_cast&) {
    throw at.error(fmt::format("'@{}' is not of the kind this argument needs", name));
  }
}

}  // namespace barton
