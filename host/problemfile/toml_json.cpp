#include "host/problemfile/toml_json.hpp"

#include "common/errors.hpp"  // UsageError

#ifdef PINNTK_HAVE_TOMLPP
#include <toml++/toml.h>

#include <sstream>      // std::ostringstream
#include <string_view>  // std::string_view
#endif

namespace pinntk {

#ifdef PINNTK_HAVE_TOMLPP

namespace {

nlohmann::json to_json(const toml::node& node, const std::string& where) {
  if (const auto* t = node.as_table()) {
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& [key, value] : *t) {
      const std::string k(key.str());
      obj[k] = to_json(value, where.empty() ? k : where + "." + k);
    }
    return obj;
  }
  if (const auto* a = node.as_array()) {
    nlohmann::json arr = nlohmann::json::array();
    for (size_t i = 0; i < a->size(); ++i) arr.push_back(to_json(*a->get(i), where + "[" + std::to_string(i) + "]"));
    return arr;
  }
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* f = node.as_floating_point()) return f->get();
  if (const auto* b = node.as_boolean()) return b->get();
  throw UsageError("\"" + where + "\": dates and times have no meaning in a problem file");
}

}  // namespace

bool toml_available() { return true; }

nlohmann::json toml_to_json(const std::string& text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(std::string_view(text), source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "not valid TOML: " << e.description() << " at line " << e.source().begin.line << ", column "
       << e.source().begin.column;
    throw UsageError(os.str());
  }
  return to_json(doc, "");
}

#else

bool toml_available() { return false; }

nlohmann::json toml_to_json(const std::string&, const std::string&) {
  throw UsageError(
      "this pinntk was built without toml++ (install libtomlplusplus-dev and rebuild), so it reads "
      "problem files in JSON only");
}

#endif

}  // namespace pinntk
