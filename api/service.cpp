#include "api/service.hpp"

#include <fstream>

#include "api/answer_format.hpp"
#include "api/errors.hpp"
#include "spec/errors.hpp"
#include "surrogate/fidelity.hpp"

namespace doppel::api {

using OJson = nlohmann::ordered_json;
using Json = nlohmann::json;

namespace {

const char* role_name(spec::ParameterRole r) {
  return r == spec::ParameterRole::load ? "load" : r == spec::ParameterRole::control ? "control" : "latent";
}
const char* reduce_name(spec::Reduction r) {
  return r == spec::Reduction::max ? "max" : r == spec::Reduction::min ? "min" : r == spec::Reduction::mean ? "mean" : "none";
}
const char* severity_name(spec::Severity s) {
  return s == spec::Severity::info ? "info" : s == spec::Severity::warning ? "warning" : "critical";
}

Json parse_body(const Request& r) {
  if (r.body.empty()) throw InvalidInput("", "the request needs a JSON body");
  try {
    return Json::parse(r.body);
  } catch (const Json::exception& e) {  // syntax errors, and numbers out of double's range
    throw InvalidInput("", std::string("the body is not valid JSON (") + e.what() + ")");
  }
}

}  // namespace

Response json_response(const OJson& body, int status) {
  Response r;
  r.status = status;
  r.body = body.dump() + "\n";
  return r;
}

void TwinRegistry::load(const std::vector<std::string>& twins, const std::vector<std::string>& bundles,
                        const std::string& device) {
  for (const auto& path : twins) {
    auto e = std::make_unique<Entry>();
    e->twin_path = path;
    e->model = std::make_unique<FemModel>(spec::load_twin(path));
    e->id = e->model->twin().name;
    for (const auto& other : entries_)
      DOPPEL_VERIFY(other->id != e->id, "--twin", "two twins are named '" + e->id + "'");
    entries_.push_back(std::move(e));
  }
  for (const auto& dir : bundles) {
    std::string name;
    try {
      name = Json::parse(std::ifstream(dir + "/meta.json")).at("twin").at("name").get<std::string>();
    } catch (const std::exception&) {
      throw InvalidInput("--bundle", dir + " is not a doppel bundle (no readable meta.json naming its twin)");
    }
    Entry* target = nullptr;
    for (const auto& e : entries_)
      if (e->id == name) target = e.get();
    DOPPEL_VERIFY(target, "--bundle", dir + " was trained for twin '" + name + "', which this server does not hold");
    DOPPEL_VERIFY(!target->surrogate, "--bundle", "two bundles for twin '" + name + "'");
    target->bundle_path = dir;
    target->surrogate = Surrogate::load(dir, *target->model, device);
  }
  ready_ = true;
}

TwinRegistry::Entry& TwinRegistry::find(const std::string& id) const {
  for (const auto& e : entries_)
    if (e->id == id) return *e;
  throw HttpError(404, "not_found", "no twin '" + id + "'", "id");
}

Service::Service(TwinRegistry& twins, ServiceOptions options) : twins_(twins), options_(std::move(options)) {}

std::vector<Service::Route> Service::table() {
  return {
      {{"GET", "/healthz", "Liveness: 200 while the process serves"},
       [](const Request&) { return json_response({{"status", "ok"}}); }},
      {{"GET", "/readyz", "Readiness: 503 until every twin and bundle is loaded"},
       [this](const Request&) {
         if (!twins_.ready()) return error_response(503, "unavailable", "twins are still loading");
         return json_response({{"status", "ready"}, {"twins", twins_.entries().size()}});
       }},
      {{"GET", "/metrics", "Prometheus metrics (text exposition format 0.0.4)"},
       [this](const Request&) {
         Response r;
         r.content_type = "text/plain; version=0.0.4";
         r.body = metrics_.render();
         return r;
       }},
      {{"GET", "/openapi.json", "This API as an OpenAPI 3 document"},
       [this](const Request&) { return json_response(openapi()); }},
      {{"GET", "/v1/twins", "The twins this server holds"}, [this](const Request& r) { return twins_list(r); }},
      {{"GET", "/v1/twins/{id}", "One twin: parameters with bounds and roles, sensors, outputs, limits, surrogate"},
       [this](const Request& r) { return twin_detail(r); }},
      {{"POST", "/v1/twins/{id}/scenarios", "Answer a batch of scenarios at a fidelity (fem, surrogate, auto)"},
       [this](const Request& r) { return scenarios(r); }},
  };
}

void Service::add_routes(HttpServer& server) {
  docs_.clear();
  for (auto& route : table()) {
    docs_.push_back(route.doc);
    Handler h = route.handler;
    const bool needs_twins = route.doc.path.rfind("/v1/", 0) == 0;
    server.route(route.doc.method, route.doc.path, [this, h, needs_twins](const Request& r) {
      if (needs_twins && !twins_.ready()) return error_response(503, "unavailable", "twins are still loading");
      struct InFlight {
        Metrics& m;
        explicit InFlight(Metrics& m) : m(m) { m.in_flight(1); }
        ~InFlight() { m.in_flight(-1); }
      } in_flight(metrics_);
      return h(r);
    });
  }
}

Response Service::twins_list(const Request&) const {
  OJson list = OJson::array();
  for (const auto& e : twins_.entries()) {
    const auto& t = e->model->twin();
    list.push_back({{"id", e->id},
                    {"analysis", t.analysis.transient ? "transient" : "steady"},
                    {"parameters", t.parameters.size()},
                    {"outputs", t.outputs.size()},
                    {"sensors", t.sensors.size()},
                    {"surrogate", e->surrogate != nullptr}});
  }
  return json_response({{"twins", list}});
}

Response Service::twin_detail(const Request& r) const {
  const auto& e = twins_.find(r.params.at("id"));
  const auto& t = e.model->twin();
  OJson params = OJson::object();
  for (const auto& p : t.parameters)
    params[p.name] = {{"default", p.default_value}, {"min", p.min}, {"max", p.max}, {"unit", p.unit}, {"role", role_name(p.role)}};
  OJson sensors = OJson::object();
  for (const auto& s : t.sensors) sensors[s.name] = {{"quantity", spec::quantity_name(s.quantity)}, {"at", s.at}, {"noise_std", s.noise_std}};
  OJson outputs = OJson::object();
  for (const auto& o : t.outputs) {
    OJson j = {{"quantity", spec::quantity_name(o.quantity)}};
    if (o.reduce == spec::Reduction::none) j["at"] = o.at;
    else {
      j["reduce"] = reduce_name(o.reduce);
      j["region"] = o.region;
    }
    outputs[o.name] = j;
  }
  OJson limits = OJson::object();
  for (const auto& l : t.limits) {
    OJson j = {{"severity", severity_name(l.severity)}};
    if (l.max) j["max"] = *l.max;
    if (l.min) j["min"] = *l.min;
    limits[l.output] = j;
  }
  OJson doc = {{"id", e.id},
               {"content_hash", t.content_hash},
               {"analysis", t.analysis.transient ? "transient" : "steady"},
               {"mesh", {{"nodes", e.model->mesh().num_nodes()}, {"cells", e.model->mesh().num_cells()}, {"dim", e.model->mesh().dim}}},
               {"parameters", params},
               {"sensors", sensors},
               {"outputs", outputs},
               {"limits", limits}};
  if (t.analysis.transient) doc["output_times"] = t.analysis.output_times;
  if (e.surrogate) {
    const auto& meta = e.surrogate->meta();
    OJson bounds = OJson::object();
    for (size_t i = 0; i < t.parameters.size(); ++i)
      bounds[t.parameters[i].name] = {e.surrogate->parts().lower[i], e.surrogate->parts().upper[i]};
    doc["surrogate"] = {{"model", meta.value("model", "mlp_ensemble")},
                        {"device", e.surrogate->device()},
                        {"training_bounds", bounds},
                        {"validation", meta.contains("validation") ? OJson(meta["validation"]) : OJson::object()}};
  } else {
    doc["surrogate"] = nullptr;
  }
  return json_response(doc);
}

Response Service::scenarios(const Request& r) {
  auto& e = twins_.find(r.params.at("id"));
  const auto& t = e.model->twin();
  const Json body = parse_body(r);
  if (!body.is_object()) throw InvalidInput("", "the body must be a JSON object");
  for (auto it = body.begin(); it != body.end(); ++it)
    if (it.key() != "scenarios" && it.key() != "outputs" && it.key() != "fidelity" && it.key() != "tolerance")
      throw InvalidInput(it.key(), "unknown field (expected scenarios, outputs, fidelity, tolerance)");
  if (!body.contains("scenarios")) throw InvalidInput("scenarios", "is required");
  if (body["scenarios"].is_array() && body["scenarios"].size() > options_.max_sync_scenarios)
    throw HttpError(413, "batch_too_large",
                    "this server answers at most " + std::to_string(options_.max_sync_scenarios) +
                        " scenarios per request",
                    "scenarios");
  const std::vector<spec::Scenario> scen = spec::parse_scenarios(t, Json{{"scenarios", body["scenarios"]}}.dump());
  std::vector<size_t> outputs;
  if (body.contains("outputs")) {
    const Json& o = body["outputs"];
    if (!o.is_array()) throw InvalidInput("outputs", "must be an array of output names");
    for (size_t i = 0; i < o.size(); ++i) {
      const std::string path = "outputs[" + std::to_string(i) + "]";
      if (!o[i].is_string()) throw InvalidInput(path, "must be an output name (a string)");
      size_t k = 0;
      while (k < t.outputs.size() && t.outputs[k].name != o[i].get<std::string>()) ++k;
      if (k == t.outputs.size()) throw InvalidInput(path, "the twin has no output '" + o[i].get<std::string>() + "'");
      outputs.push_back(k);
    }
  }
  AnswerOptions opt;
  opt.batch = options_.batch;
  opt.fidelity = e.surrogate ? Fidelity::automatic : Fidelity::fem;
  if (body.contains("fidelity")) {
    if (!body["fidelity"].is_string()) throw InvalidInput("fidelity", "must be \"fem\", \"surrogate\" or \"auto\"");
    opt.fidelity = parse_fidelity(body["fidelity"].get<std::string>(), "fidelity");
    if (opt.fidelity != Fidelity::fem && !e.surrogate)
      throw InvalidInput("fidelity", "twin '" + e.id + "' has no surrogate bundle: use \"fem\"");
  }
  if (body.contains("tolerance")) {
    const Json& tol = body["tolerance"];
    if (!tol.is_number() || !(tol.get<double>() > 0)) throw InvalidInput("tolerance", "must be a positive number");
    opt.tolerance = tol.get<double>();
  }
  AnswerSet set;
  {
    std::unique_lock<std::mutex> lock(e.fem, std::defer_lock);
    if (opt.fidelity != Fidelity::surrogate) lock.lock();
    set = answer_scenarios(*e.model, e.surrogate.get(), scen, opt);
  }
  metrics_.batch(scen.size());
  metrics_.scenarios("surrogate", set.surrogate_answers);
  metrics_.scenarios("fem", set.fem_answers);
  OJson doc = answers_json(*e.model, scen, set, outputs);
  doc["fidelity"] = fidelity_name(opt.fidelity);
  doc["answered"] = {{"surrogate", set.surrogate_answers}, {"fem", set.fem_answers}};
  return json_response(doc);
}

OJson Service::openapi() const {
  OJson paths = OJson::object();
  const OJson error_ref = {{"description", "error"},
                           {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
  for (const auto& d : docs_) {
    std::string method = d.method;
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    OJson op = {{"summary", d.summary},
                {"operationId", method + d.path},
                {"responses", {{"200", {{"description", "success"}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}}},
                               {"default", error_ref}}}};
    if (d.path == "/metrics")
      op["responses"]["200"] = {{"description", "Prometheus text"}, {"content", {{"text/plain", {{"schema", {{"type", "string"}}}}}}}};
    if (d.path.find("{id}") != std::string::npos)
      op["parameters"] = OJson::array({{{"name", "id"}, {"in", "path"}, {"required", true},
                                        {"description", "twin name"}, {"schema", {{"type", "string"}}}}});
    if (d.method == "POST")
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/ScenarioRequest"}}}}}}}};
    paths[d.path][method] = op;
  }
  OJson schemas = {
      {"Error", {{"type", "object"}, {"required", {"error"}},
                 {"properties", {{"error", {{"type", "object"}, {"required", {"code", "type", "message", "path"}},
                                             {"properties", {{"code", {{"type", "integer"}}}, {"type", {{"type", "string"}}},
                                                             {"message", {{"type", "string"}}}, {"path", {{"type", "string"}}}}}}}}}}},
      {"ScenarioRequest",
       {{"type", "object"}, {"required", {"scenarios"}}, {"additionalProperties", false},
        {"properties",
         {{"scenarios", {{"type", "array"}, {"minItems", 1}, {"maxItems", options_.max_sync_scenarios},
                         {"items", {{"type", "object"}, {"additionalProperties", false},
                                    {"properties", {{"id", {{"type", "string"}}},
                                                    {"parameters", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}}},
                                                    {"schedules", {{"type", "object"}}}}}}}}},
          {"outputs", {{"type", "array"}, {"items", {{"type", "string"}}}}},
          {"fidelity", {{"type", "string"}, {"enum", {"fem", "surrogate", "auto"}}}},
          {"tolerance", {{"type", "number"}, {"exclusiveMinimum", 0}}}}}}}};
  return {{"openapi", "3.0.3"},
          {"info", {{"title", "doppel"}, {"version", "0.1.0"},
                    {"description", "Finite-element digital twins and their surrogates over HTTP"}}},
          {"paths", paths},
          {"components", {{"schemas", schemas}}}};
}

}  // namespace doppel::api
