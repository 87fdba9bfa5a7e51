#include "mmar/idioms.h"

#include <regex>

#include "core/errors.h"
#include "core/strings.h"

namespace barton::mmar {

bool looks_like_code(std::string_view text) {
  const auto t = trim(text);
  return starts_with(t, "#") || starts_with(t, "@") || starts_with(t, "lambda ") ||
         starts_with(t, "lambda:");
}

std::string idiom_help() {
  return "write \"@name\" for a component, \"#@model.parameters()\", "
         "\"#monai.handlers.from_engine(['pred', 'label'])\" (optionally first=True), "
         "\"lambda x: None\", \"lambda x: x\", \"lambda x: x[0]\" or \"lambda x: x['loss']\"";
}

namespace {

std::vector<std::string> parse_key_list(const std::string& inner) {
  static const std::regex kItem(R"(\s*['"]([^'"]+)['"]\s*)");
  std::vector<std::string> keys;
  for (const auto& piece : split(inner, ',')) {
    if (trim(piece).empty()) continue;
    std::smatch m;
    if (!std::regex_match(piece, m, kItem)) return {};
    keys.push_back(m[1]);
  }
  return keys;
}

}  // namespace

std::optional<Idiom> parse_idiom(std::string_view raw) {
  const std::string text = trim(raw);
  if (!looks_like_code(text)) return std::nullopt;
  static const std::regex kRef(R"(@([A-Za-z_][A-Za-z0-9_]*))");
  static const std::regex kParams(R"(#\s*@([A-Za-z_][A-Za-z0-9_]*)\.parameters\(\s*\))");
  static const std::regex kFromEngine(
      R"(#\s*(?:monai\.handlers\.(?:utils\.)?)?from_engine\(\s*\[([^\]]*)\]\s*(?:,\s*first\s*=\s*(True|False)\s*)?\))");
  static const std::regex kLambda(R"(lambda\s+([A-Za-z_]\w*)\s*:\s*(.*))");
  std::smatch m;
  if (std::regex_match(text, m, kRef)) return Idiom{IdiomKind::kReference, m[1], {}, false, -1};
  if (std::regex_match(text, m, kParams)) return Idiom{IdiomKind::kParameters, m[1], {}, false, -1};
  if (std::regex_match(text, m, kFromEngine)) {
    auto keys = parse_key_list(m[1]);
    if (!keys.empty()) return Idiom{IdiomKind::kFromEngine, "", keys, m[2] == "True", -1};
  }
  if (std::regex_match(text, m, kLambda)) {
    const std::string var = m[1];
    const std::string body = trim(std::string(m[2]));
    if (body == "None") return Idiom{IdiomKind::kLambdaNone, "", {}, false, -1};
    if (body == var) return Idiom{IdiomKind::kLambdaIdentity, "", {}, false, -1};
    const std::regex index(var + R"(\s*\[\s*(\d+)\s*\])");
    const std::regex key(var + R"(\s*\[\s*['"]([^'"]+)['"]\s*\])");
    const std::regex index_key(var + R"(\s*\[\s*(\d+)\s*\]\s*\[\s*['"]([^'"]+)['"]\s*\])");
    std::smatch b;
    if (std::regex_match(body, b, index))
      return Idiom{IdiomKind::kLambdaIndex, "", {}, false, std::stoi(b[1])};
    if (std::regex_match(body, b, key)) return Idiom{IdiomKind::kLambdaKey, "", {b[1]}, false, -1};
    if (std::regex_match(body, b, index_key)) {
      return Idiom{IdiomKind::kLambdaKey, "", {b[2]}, false, std::stoi(b[1])};
    }
  }
  throw Error("Python code is not evaluated by Barton: '" + text + "'; " + idiom_help());
}

}  // namespace barton::mmar
