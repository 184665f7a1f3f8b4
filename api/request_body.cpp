#include "api/request_body.hpp"

#include "spec/errors.hpp"
#include "spec/json_reader.hpp"

namespace doppel::api {

nlohmann::json parse_body_object(const std::string& body, std::initializer_list<const char*> keys, bool optional) {
  if (body.empty()) {
    if (optional) return nlohmann::json::object();
    throw InvalidInput("", "the request needs a JSON body");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {  // syntax errors, and numbers out of double's range
    throw InvalidInput("", std::string("the body is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw InvalidInput("", "the body must be a JSON object");
  spec::require_known_keys(j, "", keys);
  return j;
}

}  // namespace doppel::api
