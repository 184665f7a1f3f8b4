// The one error body of the API, {"error": {"code", "type", "message", "path"}}, and the one
// mapping from doppel's error types to HTTP status codes.
#pragma once

#include <string>

#include "api/http_server.hpp"
#include "spec/errors.hpp"

namespace doppel::api {

// An error with its own status (404 for an unknown twin, 413 for an oversized batch, ...).
class HttpError : public Error {
 public:
  HttpError(int status, std::string type, const std::string& message, std::string path = "")
      : Error(message), status_(status), type_(std::move(type)), path_(std::move(path)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& path() const { return path_; }

 private:
  int status_;
  std::string type_, path_;
};

// JSON text of a body or log line. Client text (paths, headers, bodies) may hold bytes that are
// not UTF-8: they are written as U+FFFD instead of throwing (a throw in the request logger
// aborted the process). For nlohmann::json and ordered_json alike.
template <class Json>
std::string dump_text(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Response error_response(int status, const std::string& type, const std::string& message,
                        const std::string& path = "");
// InvalidInput -> 400 invalid_request (its path), HttpError -> its own, Unavailable -> 503,
// NotCompiled -> 501, SolverDiverged -> 422 solver_failed, DeviceError -> 503 device_error
// (with Retry-After), or 500 device_failed when the GPU context is lost, anything else -> 500
// internal.
Response response_for(const std::exception& e);

}  // namespace doppel::api
