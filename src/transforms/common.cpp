#include "transforms/common.h"

#include "core/errors.h"
#include "core/strings.h"

namespace barton::transforms {

at::ScalarType parse_dtype(const std::string& raw) {
  std::string n = to_lower(raw);
  for (const char* prefix : {"np.", "numpy.", "torch.", "<class 'numpy.", "<dtype: '"}) {
    if (starts_with(n, prefix)) n = n.substr(std::string(prefix).size());
  }
  while (!n.empty() && (n.back() == '>' || n.back() == '\'')) n.pop_back();
  if (n == "float32" || n == "float" || n == "single") return at::kFloat;
  if (n == "float64" || n == "double") return at::kDouble;
  if (n == "float16" || n == "half") return at::kHalf;
  if (n == "bfloat16") return at::kBFloat16;
  if (n == "uint8") return at::kByte;
  if (n == "int8") return at::kChar;
  if (n == "int16" || n == "short") return at::kShort;
  if (n == "int32" || n == "int") return at::kInt;
  if (n == "int64" || n == "long") return at::kLong;
  if (n == "bool") return at::kBool;
  throw Error("unknown dtype '" + raw +
              "' (use float32, float64, float16, uint8, int8, int16, int32, int64 or bool)");
}

std::optional<at::ScalarType> dtype_arg(const ConfigNode& args, const char* name) {
  const auto v = args.at(name);
  if (v.is_null()) return std::nullopt;
  try {
    return parse_dtype(v.is_array() && v.size() > 0 ? v.at(0).as<std::string>()
                                                    : v.as<std::string>());
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw v.error(e.what());
  }
}

std::vector<double> floats_rep(const ConfigNode& args,
                               const char* name,
                               std::size_t n,
                               std::vector<double> fallback) {
  if (args.at(name).is_null()) return fallback;
  const auto v = args.at(name);
  if (!v.is_array()) return std::vector<double>(n, v.as<double>());
  auto out = v.as<std::vector<double>>();
  if (out.size() == 1) return std::vector<double>(n, out[0]);
  if (out.size() != n) {
    throw v.error(fmt::format("expected 1 or {} values, got {}", n, out.size()));
  }
  return out;
}

std::vector<int64_t> ints_rep(const ConfigNode& args,
                              const char* name,
                              std::size_t n,
                              std::vector<int64_t> fallback) {
  if (args.at(name).is_null()) return fallback;
  const auto v = args.at(name);
  if (!v.is_array()) return std::vector<int64_t>(n, v.as<int64_t>());
  auto out = v.as<std::vector<int64_t>>();
  if (out.size() == 1) return std::vector<int64_t>(n, out[0]);
  if (out.size() != n) {
    throw v.error(fmt::format("expected 1 or {} values, got {}", n, out.size()));
  }
  return out;
}

std::pair<double, double> range_arg(const ConfigNode& args, const char* name, bool symmetric) {
  if (!args.given(name)) return {0.0, 0.0};
  const auto v = args.at(name);
  if (!v.is_array()) {
    const double x = v.as<double>();
    return symmetric ? std::make_pair(std::min(-x, x), std::max(-x, x)) : std::make_pair(0.0, x);
  }
  const auto p = v.as<std::vector<double>>();
  if (p.size() != 2) throw v.error("expected a number or a [min, max] pair");
  return {std::min(p[0], p[1]), std::max(p[0], p[1])};
}

double prob_arg(const ConfigNode& a) {
  const double p = a.require<double>("prob");
  if (p < 0 || p > 1) throw a.at("prob").error("must be in [0, 1]");
  return p;
}

}  // namespace barton::transforms
