// Problem files in TOML (issue 15): a TOML document read by toml++ (Debian's libtomlplusplus-dev, header-only here)
// and turned into the JSON value the JSON reader would have produced, so that one reader checks both formats.
#pragma once

#include <nlohmann/json.hpp>  // nlohmann::json
#include <string>             // std::string

namespace pinntk {

// Whether this build reads TOML (toml++ was found at configure time).
bool toml_available();

// The TOML text as JSON: tables as objects (keys in the document's order is not kept: JSON objects are sorted), arrays
// as arrays, strings, integers, floats and booleans as themselves. Throws UsageError, one line, for a syntax error
// (with its line and column), a date or time value, or a build without toml++.
nlohmann::json toml_to_json(const std::string& text, const std::string& source);

}  // namespace pinntk
