#include "api/request_body.hpp"

#include "spec/errors.hpp"
#include "spec/json_reader.hpp"

namespace doppel::api {

nlohmann::json parse_body_object(const std::string& body, std::initializer_list<const char*> keys, bool optional) {
  if (body.empty()) {
    if (optional) return nlohmann::json::object();
    throw InvalidInput("", "the request needs a JSON body");
  }
  // Syntax errors, numbers beyond double's range and nesting beyond 64 levels: 400 naming the
  // JSON path, line and column.
  const nlohmann::json j = spec::parse_json_document(body, "the body");
  if (!j.is_object()) throw InvalidInput("", "the body must be a JSON object");
  spec::require_known_keys(j, "", keys);
  return j;
}

}  // namespace doppel::api
