// The JSON object of a request body, checked once for every route that takes one.
#pragma once

#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

namespace doppel::api {

// InvalidInput for an empty body (unless optional: then {}), a body that is not JSON (also
// numbers beyond double's range) or not an object, and for a key not in `keys` (its path).
nlohmann::json parse_body_object(const std::string& body, std::initializer_list<const char*> keys,
                                 bool optional = false);

}  // namespace doppel::api
