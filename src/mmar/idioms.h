#pragma once
/// The Python snippets that Clara 4.x configs use, recognised by pattern and never evaluated
/// (docs/mmar-format.md). Anything else written as Python is refused with a message that says
/// what to write instead.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace barton::mmar {

enum class IdiomKind {
  kReference,       ///< "@name": another component of the config.
  kParameters,      ///< "#@model.parameters()": the parameters of a network.
  kFromEngine,      ///< "#monai.handlers.from_engine(['pred', 'label'], first=False)"
  kLambdaNone,      ///< "lambda x: None"
  kLambdaIdentity,  ///< "lambda x: x"
  kLambdaIndex,     ///< "lambda x: x[0]"
  kLambdaKey,       ///< "lambda x: x['loss']" (also x[0]['loss'])
};

struct Idiom {
  IdiomKind kind;
  std::string target;             ///< kReference / kParameters: the component name (no '@').
  std::vector<std::string> keys;  ///< kFromEngine / kLambdaKey.
  bool first = false;             ///< kFromEngine.
  int index = -1;                 ///< kLambdaIndex, or the index before the key in kLambdaKey.
};

/// True for strings that are Python to Clara: they start with '#', '@' or "lambda".
bool looks_like_code(std::string_view text);

/// Parses a recognised idiom. Returns nullopt for ordinary strings. Throws Error (message only,
/// no location) for Python that Barton does not run; callers add the file and pointer.
std::optional<Idiom> parse_idiom(std::string_view text);

/// What to write instead of unsupported Python (used in messages and docs).
std::string idiom_help();

}  // namespace barton::mmar
