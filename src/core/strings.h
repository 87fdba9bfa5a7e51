#pragma once
/// Small string helpers shared by every domain: suggestions, joining, parsing.

#include <string>
#include <string_view>
#include <vector>

namespace barton {

/// Levenshtein distance, case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// "; did you mean 'X'?" for the closest candidate within a small distance, else "".
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

/// Joins items with `sep`.
std::string join(const std::vector<std::string>& items, std::string_view sep);

/// Splits on `sep`, keeping empty pieces.
std::vector<std::string> split(std::string_view text, char sep);

/// True when `text` starts / ends with the given piece.
bool starts_with(std::string_view text, std::string_view prefix);
bool ends_with(std::string_view text, std::string_view suffix);

/// Lower-cases ASCII letters.
std::string to_lower(std::string_view text);

/// Trims ASCII whitespace at both ends.
std::string trim(std::string_view text);

/// The current UTC time formatted by strftime `format` (ISO 8601 "2026-12-06T07:15:00Z" by
/// default).
std::string utc_now(const char* format = "%Y-%m-%dT%H:%M:%SZ");

}  // namespace barton
