#include "api/errors.hpp"

#include <nlohmann/json.hpp>

namespace doppel::api {

Response error_response(int status, const std::string& type, const std::string& message, const std::string& path) {
  nlohmann::json body = {{"error", {{"code", status}, {"type", type}, {"message", message}, {"path", path}}}};
  Response r;
  r.status = status;
  r.body = dump_text(body) + "\n";
  return r;
}

Response response_for(const std::exception& e) {
  if (const auto* h = dynamic_cast<const HttpError*>(&e)) return error_response(h->status(), h->type(), h->what(), h->path());
  if (const auto* in = dynamic_cast<const InvalidInput*>(&e)) return error_response(400, "invalid_request", in->detail(), in->path());
  if (dynamic_cast<const Unavailable*>(&e)) return error_response(503, "unavailable", e.what());
  if (dynamic_cast<const NotCompiled*>(&e)) return error_response(501, "not_implemented", e.what());
  if (dynamic_cast<const SolverDiverged*>(&e)) return error_response(422, "solver_failed", e.what());
  if (const auto* d = dynamic_cast<const DeviceError*>(&e)) {
    // A lost GPU context does not come back: 500, and /healthz fails so the process is restarted.
    if (d->context_lost()) return error_response(500, "device_failed", e.what());
    // Otherwise the GPU failed this request (out of memory while other solves hold it): not the
    // client's fault; worth retrying shortly.
    Response r = error_response(503, "device_error", e.what());
    r.headers.emplace_back("Retry-After", "2");
    return r;
  }
  return error_response(500, "internal", e.what());
}

}  // namespace doppel::api
