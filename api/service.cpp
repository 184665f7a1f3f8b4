#include "api/service.hpp"

#include "api/dashboard.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>
#include <optional>

#include "api/request_body.hpp"
#include "api/scenario_request.hpp"
#include "api/time.hpp"
#include "kernels/backend.hpp"
#include "kernels/io/vtu_writer.hpp"
#include "twin/readings.hpp"

#include "api/answer_format.hpp"
#include "api/dashboard.hpp"
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

// Query parameters: only the listed names; InvalidInput naming an unknown one.
void known_query(const Request& r, std::initializer_list<const char*> names) {
  for (const auto& [k, v] : r.query) {
    bool ok = false;
    for (const char* n : names) ok = ok || k == n;
    if (!ok) throw InvalidInput(k, "unknown query parameter");
  }
}
size_t query_count(const Request& r, const char* name, size_t fallback, size_t lo, size_t hi) {
  auto it = r.query.find(name);
  if (it == r.query.end()) return fallback;
  const std::string& t = it->second;
  if (t.empty() || t.size() > 12 || t.find_first_not_of("0123456789") != std::string::npos)
    throw InvalidInput(name, "must be a non-negative integer, got \"" + t + "\"");
  const size_t v = std::stoull(t);
  if (v < lo || v > hi)
    throw InvalidInput(name, "must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}
bool query_bool(const Request& r, const char* name, bool fallback) {
  auto it = r.query.find(name);
  if (it == r.query.end()) return fallback;
  if (it->second == "true" || it->second == "1") return true;
  if (it->second == "false" || it->second == "0") return false;
  throw InvalidInput(name, "must be true or false, got \"" + it->second + "\"");
}

}  // namespace

Response json_response(const OJson& body, int status) {
  Response r;
  r.status = status;
  r.body = dump_text(body) + "\n";
  return r;
}

Service::Service(TwinRegistry& twins, ServiceOptions options)
    : twins_(twins), options_(std::move(options)), auth_(options_.tokens) {
  store_ = std::make_unique<JobStore>(options_.database);
  history_ = std::make_unique<twin::HistoryStore>(options_.database);
  jobs_ = std::make_unique<JobManager>(
      *store_, twins_, metrics_, options_.jobs,
      [this](const TwinRegistry::Entry& e, const std::string& body) {
        return parse_scenario_request(*e.model, e.surrogate != nullptr, body, options_.max_job_scenarios);
      },
      [this](TwinRegistry::Entry& e, const std::vector<spec::Scenario>& s, const AnswerOptions& o) {
        return compute(e, s, o);
      },
      options_.log);
  jobs_->set_wake([this](const std::string& twin) {
    auto it = workers_.find(twin);
    if (it != workers_.end()) it->second->wake();
  });
  metrics_.set_gauges([this](std::string& out) { render_gauges(out); });
}

Service::~Service() {
  begin_shutdown();
  stop();
  metrics_.set_gauges(nullptr);
}

void Service::start() {
  // Live state for every twin with sensors (a transient one carries its members' temperatures:
  // reduced coordinates with its bundle, nodal values advanced by FEM without): restored from
  // the history, caught up with the readings stored after it.
  for (const auto& e : twins_.entries()) {
    const auto& t = e->model->twin();
    if (t.sensors.empty()) continue;
    if (const std::string why = twin::live_refusal(t); !why.empty()) {
      // The twin answers scenarios, and refuses readings and state by name (409).
      no_live_[e->id] = why;
      if (options_.log) options_.log({{"time", utc_now()}, {"event", "no_live_state"}, {"twin", e->id}, {"reason", why}});
      continue;
    }
    auto live = std::make_unique<twin::LiveTwin>(*e->model, e->surrogate.get(), *history_, options_.live, options_.batch, e->fem);
    try {
      const bool restored = live->recover();
      if (options_.log) options_.log({{"time", utc_now()}, {"event", restored ? "state_restored" : "state_started"}, {"twin", e->id}});
    } catch (const std::exception& ex) {
      if (options_.log) options_.log({{"time", utc_now()}, {"event", "state_recovery_failed"}, {"twin", e->id}, {"error", ex.what()}});
    }
    live_[e->id] = std::move(live);
    apply_reported(*e, history_->controls(e->id).reported);  // the asset's last reported controls
  }
  // One worker per twin: gathered requests first, then queued readings, then job chunks.
  for (const auto& e : twins_.entries()) {
    TwinRegistry::Entry* entry = e.get();
    twin::LiveTwin* live = live_.count(entry->id) ? live_.at(entry->id).get() : nullptr;
    workers_[entry->id] = std::make_unique<TwinWorker>(
        entry->id,
        [this, entry](const std::vector<spec::Scenario>& s, const AnswerOptions& o) { return compute(*entry, s, o); },
        options_.batching_options, metrics_, [this, entry, live] {
          if (live && live->pending()) {
            const auto done = live->process();
            if (!done.error.empty() && options_.log)
              options_.log({{"time", utc_now()}, {"event", "analysis_failed"}, {"twin", entry->id}, {"error", done.error}});
            if (done.analysis && done.analysis->failed && options_.log)
              options_.log({{"time", utc_now()}, {"event", "analysis_failed"}, {"twin", entry->id},
                            {"readings", done.analysis->failed}, {"error", done.analysis->error}});
            if (done.analysis)
              for (const auto& ev : done.analysis->alerts) {
                metrics_.alert(ev.event);
                if (options_.log)
                  options_.log({{"time", utc_now()}, {"event", "alert_" + ev.event}, {"twin", entry->id}, {"kind", ev.alert.kind},
                                {"subject", ev.alert.subject}, {"severity", ev.alert.severity}, {"message", ev.alert.message}});
              }
            return true;
          }
          return jobs_->step(*entry);
        });
  }
  jobs_->recover();
  ready_ = true;
}

void Service::begin_shutdown() {
  if (jobs_) jobs_->shutdown();
  for (auto& [id, lt] : live_) lt->stop();  // requests waiting for an analysis return
}

void Service::stop() {
  for (auto& [id, w] : workers_) w->stop();
}

AnswerSet Service::compute(TwinRegistry::Entry& e, const std::vector<spec::Scenario>& scenarios,
                           const AnswerOptions& options) {
  AnswerOptions opt = options;
  opt.batch = options_.batch;
  std::unique_lock<std::mutex> lock(e.fem, std::defer_lock);
  if (opt.fidelity != Fidelity::surrogate) lock.lock();
  return answer_scenarios(*e.model, e.surrogate.get(), scenarios, opt);
}

std::vector<Service::Route> Service::table() {
  return {
      {{"GET", "/", Scope::none,
        "The dashboard: one self-contained HTML page (twins, live state, alerts, forecasts, what-if scenarios) that "
        "reads the routes below with the bearer token typed into it"},
       [](const Request&) {
         Response r;
         r.content_type = "text/html; charset=utf-8";
         r.body = dashboard_html();
         r.headers.emplace_back("Content-Security-Policy",
                                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:");
         return r;
       }},
      {{"GET", "/healthz", Scope::none, "Liveness: 200 while the process serves; 503 once its GPU context is lost"},
       [](const Request&) {
         if (cuda::device_lost())
           return error_response(503, "device_failed", "the GPU context of this process is lost: restart it");
         return json_response({{"status", "ok"}});
       }},
      {{"GET", "/readyz", Scope::none, "Readiness: 503 until every twin and bundle is loaded and stored jobs are resumed"},
       [this](const Request&) {
         if (!ready_) return error_response(503, "unavailable", "twins are still loading");
         if (cuda::device_lost())
           return error_response(503, "device_failed", "the GPU context of this process is lost: restart it");
         return json_response({{"status", "ready"}, {"twins", twins_.entries().size()}});
       }},
      {{"GET", "/metrics", Scope::read, "Prometheus metrics (text exposition format 0.0.4)"},
       [this](const Request&) {
         Response r;
         r.content_type = "text/plain; version=0.0.4";
         r.body = metrics_.render();
         return r;
       }},
      {{"GET", "/openapi.json", Scope::none, "This API as an OpenAPI 3 document"},
       [this](const Request&) { return json_response(openapi()); }},
      {{"GET", "/v1/twins", Scope::read, "The twins this server holds"}, [this](const Request& r) { return twins_list(r); }},
      {{"GET", "/v1/twins/{id}", Scope::read,
        "One twin: parameters with bounds and roles, sensors, outputs, limits, surrogate validation"},
       [this](const Request& r) { return twin_detail(r); }},
      {{"POST", "/v1/twins/{id}/scenarios", Scope::simulate,
        "Answer a batch of scenarios at a fidelity (fem, surrogate, auto): at once (200) up to the server's "
        "synchronous limit, as a job (202) above it or with \"mode\": \"async\""},
       [this](const Request& r) { return scenarios(r); }},
      {{"POST", "/v1/twins/{id}/observations", Scope::ingest,
        "Store timestamped sensor readings; each is checked on its own (unknown sensor, non-finite value, time in "
        "the future) and the accepted ones are on disk before the answer. Sending a reading again is harmless"},
       [this](const Request& r) { return observations(r); }},
      {{"GET", "/v1/twins/{id}/state", Scope::read,
        "The state estimate: time and revision of the last analysis, every output and parameter with mean and "
        "standard deviation, each sensor's last reading, prediction, normalized innovation and status"},
       [this](const Request& r) { return state(r); }},
      {{"POST", "/v1/twins/{id}/forecast", Scope::read,
        "Run the current ensemble forward: each output's 5/50/95 percentiles over time, and the probability and "
        "expected time of crossing each limit within the horizon"},
       [this](const Request& r) { return forecast(r); }},
      {{"GET", "/v1/twins/{id}/alerts", Scope::read,
        "Alerts, newest first: limits crossed or forecast to be, faulty or silent sensors, model drift; each raised, "
        "updated and cleared (query: state = active (default), cleared or all; limit)"},
       [this](const Request& r) { return alerts(r); }},
      {{"POST", "/v1/twins/{id}/recommend", Scope::simulate,
        "Search the control parameters for the setting that keeps every limit over the horizon with the stated "
        "probability at the lowest declared cost; returns it with its forecast (it is not applied)"},
       [this](const Request& r) { return recommend(r); }},
      {{"GET", "/v1/twins/{id}/field", Scope::read,
        "The estimated field: the ensemble's mean and standard deviation of a nodal quantity (query: quantity = "
        "temperature, displacement_magnitude or von_mises; format = json, or vtu for the ensemble-mean fields)"},
       [this](const Request& r) { return field(r); }},
      {{"GET", "/v1/twins/{id}/controls", Scope::read,
        "Desired and reported values of the twin's control parameters, with their version (ETag)"},
       [this](const Request& r) { return controls_get(r); }},
      // Control or ingest at the door; the handler asks for control (desired) or ingest (reported).
      {{"PUT", "/v1/twins/{id}/controls", Scope::control,
        "Set desired values (scope control; If-Match with the current version required) or report applied values "
        "(scope ingest: the asset); every change is in the audit log (history kind=controls)", Scope::ingest},
       [this](const Request& r) { return controls_put(r); }},
      {{"GET", "/v1/twins/{id}/history", Scope::read,
        "A twin's stored records, paged (query: kind=observations|estimates|alerts|controls, from, to, sensor, limit, after)"},
       [this](const Request& r) { return history(r); }},
      {{"GET", "/v1/jobs", Scope::read, "Jobs, newest first (query: twin, limit)"},
       [this](const Request& r) { return jobs_list(r); }},
      {{"GET", "/v1/jobs/{id}", Scope::read, "A job's state and progress"},
       [this](const Request& r) { return job_detail(r); }},
      {{"DELETE", "/v1/jobs/{id}", Scope::simulate,
        "Cancel a queued or running job (its stored results stay readable); delete a finished one and its results"},
       [this](const Request& r) { return job_delete(r); }},
      {{"GET", "/v1/jobs/{id}/results", Scope::read,
        "A job's results as NDJSON, one line per scenario in index order, streamed as chunks finish "
        "(query: from = first index, wait = false to return only what is stored now)"},
       [this](const Request& r) { return job_results(r); }},
  };
}

void Service::add_routes(HttpServer& server) {
  docs_.clear();
  connection_stats_ = [&server] { return server.connections(); };
  for (auto& route : table()) {
    docs_.push_back(route.doc);
    Handler h = route.handler;
    const bool needs_twins = route.doc.path.rfind("/v1/", 0) == 0;
    const Scope scope = route.doc.scope, or_scope = route.doc.or_scope;
    server.route(route.doc.method, route.doc.path, [this, h, needs_twins, scope, or_scope](Request& q) {
      try {
        q.principal = auth_.authorize(q, scope, or_scope);  // annotated in place: bodies can be large
      } catch (const HttpError& e) {
        Response denied = response_for(e);
        if (e.status() == 401) denied.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"doppel\"");
        return denied;
      }
      if (needs_twins && !ready_) return error_response(503, "unavailable", "twins are still loading");
      struct InFlight {
        Metrics& m;
        explicit InFlight(Metrics& m) : m(m) { m.in_flight(1); }
        ~InFlight() { m.in_flight(-1); }
      } in_flight(metrics_);
      Response out = h(q);
      out.principal = q.principal;
      return out;
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
                    {"surrogate", e->surrogate != nullptr},
                    {"live", live_.count(e->id) > 0}});
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
  known_query(r, {});
  auto& e = twins_.find(r.params.at("id"));
  // Announce the request to the twin's batching worker before parsing it, so that a batch being
  // gathered waits for it rather than leaving without it.
  std::optional<TwinWorker::Arrival> arrival;
  if (options_.batching) arrival.emplace(*workers_.at(e.id));
  ScenarioRequest req = parse_scenario_request(*e.model, e.surrogate != nullptr, r.body, options_.max_job_scenarios);
  if (req.async || req.scenarios.size() > options_.max_sync_scenarios) {
    // A job answers chunk by chunk: one fidelity for the whole batch is not on offer there.
    if (req.options.one_fidelity)
      throw InvalidInput("one_fidelity", "applies to batches answered at once (mode sync, at most " +
                                             std::to_string(options_.max_sync_scenarios) + " scenarios), not to jobs");
    const JobRecord job = jobs_->submit(e, r.body, std::move(req), r.principal);
    Response out = json_response(job_json(job), 202);
    out.headers.emplace_back("Location", "/v1/jobs/" + job.id);
    return out;
  }
  AnswerSet set;
  if (options_.batching) {
    set = arrival->answer(req.scenarios, req.options);
  } else {
    set = compute(e, req.scenarios, req.options);
    metrics_.batch(req.scenarios.size(), 1);
  }
  metrics_.scenarios("surrogate", set.surrogate_answers);
  metrics_.scenarios("fem", set.fem_answers);
  OJson doc = answers_json(*e.model, req.scenarios, set, req.outputs);
  doc["fidelity"] = fidelity_name(req.options.fidelity);
  doc["answered"] = {{"surrogate", set.surrogate_answers}, {"fem", set.fem_answers}};
  return json_response(doc);
}

Response Service::jobs_list(const Request& r) const {
  known_query(r, {"twin", "limit"});
  const size_t limit = query_count(r, "limit", 100, 1, 1000);
  const auto it = r.query.find("twin");
  const std::string twin = it == r.query.end() ? "" : it->second;
  if (!twin.empty()) twins_.find(twin);
  OJson list = OJson::array();
  for (const auto& j : jobs_->list(twin, limit)) list.push_back(job_json(j));
  return json_response({{"jobs", list}});
}

Response Service::job_detail(const Request& r) const {
  known_query(r, {});
  return json_response(job_json(jobs_->get(r.params.at("id"))));
}

Response Service::job_delete(const Request& r) {
  known_query(r, {});
  bool deleted = false;
  const JobRecord j = jobs_->cancel_or_delete(r.params.at("id"), deleted);
  OJson doc = job_json(j);
  doc["deleted"] = deleted;
  return json_response(doc);
}

Response Service::job_results(const Request& r) {
  known_query(r, {"from", "wait"});
  const JobRecord j = jobs_->get(r.params.at("id"));
  const size_t from = query_count(r, "from", 0, 0, j.total);
  const bool wait = query_bool(r, "wait", true);
  Response out;
  out.content_type = "application/x-ndjson";
  out.headers.emplace_back("X-Job-State", j.state);
  const std::string id = j.id;
  JobManager* jobs = jobs_.get();
  out.stream = [jobs, id, from, wait](const BodyWriter& write) { jobs->stream(id, from, wait, write); };
  return out;
}

Response Service::observations(const Request& r) {
  known_query(r, {"wait"});
  const bool wait = query_bool(r, "wait", false);
  const auto& e = twins_.find(r.params.at("id"));
  if (auto why = no_live_.find(e.id); why != no_live_.end()) throw HttpError(409, "no_state", why->second, "id");
  const auto& t = e.model->twin();
  const Json body = parse_body_object(r.body, {"readings"});
  if (!body.contains("readings") || !body["readings"].is_array())
    throw InvalidInput("readings", "must be an array of {\"sensor\", \"time\", \"value\"}");
  const Json& list = body["readings"];
  if (list.size() > options_.max_readings)
    throw HttpError(413, "batch_too_large",
                    "this server accepts at most " + std::to_string(options_.max_readings) + " readings per request",
                    "readings");
  const double now = now_seconds();
  std::vector<twin::Reading> good;
  std::vector<size_t> index_of;
  const twin::ReadingCheck check(*e.model);
  OJson rejected = OJson::array();
  auto reject = [&](size_t i, const std::string& path, const std::string& message) {
    rejected.push_back({{"index", i}, {"path", path}, {"message", message}});
  };
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = "readings[" + std::to_string(i) + "]";
    const Json& item = list[i];
    if (!item.is_object()) {
      reject(i, p, "must be an object {\"sensor\", \"time\", \"value\"}");
      continue;
    }
    std::string unknown;
    for (auto it = item.begin(); it != item.end(); ++it)
      if (it.key() != "sensor" && it.key() != "time" && it.key() != "value") unknown = it.key();
    if (!unknown.empty()) {
      reject(i, p + "." + unknown, "unknown field (expected sensor, time, value)");
      continue;
    }
    if (!item.contains("sensor") || !item["sensor"].is_string()) {
      reject(i, p + ".sensor", "must be the name of one of the twin's sensors");
      continue;
    }
    const std::string sensor = item["sensor"].get<std::string>();
    size_t k = 0;
    while (k < t.sensors.size() && t.sensors[k].name != sensor) ++k;
    if (k == t.sensors.size()) {
      reject(i, p + ".sensor", "the twin has no sensor '" + sensor + "'");
      continue;
    }
    const auto time = item.contains("time") && item["time"].is_string() ? parse_rfc3339(item["time"].get<std::string>())
                                                                         : std::nullopt;
    if (!time) {
      reject(i, p + ".time", "must be an RFC 3339 time such as \"2026-11-25T10:00:00.250Z\"");
      continue;
    }
    if (*time > now + options_.max_clock_skew_s) {
      reject(i, p + ".time", "lies " + std::to_string(static_cast<long>(*time - now)) +
                                 " s in the future (more than the allowed clock skew of " +
                                 std::to_string(static_cast<long>(options_.max_clock_skew_s)) + " s)");
      continue;
    }
    if (!item.contains("value") || !item["value"].is_number() || !std::isfinite(item["value"].get<double>())) {
      reject(i, p + ".value", "must be a finite number");
      continue;
    }
    if (const auto why = check.problem(k, item["value"].get<double>())) {  // never stored, never analysed
      reject(i, p + ".value", *why);
      continue;
    }
    good.push_back({sensor, *time, item["value"].get<double>()});
    index_of.push_back(i);
  }
  const auto stored = history_->append(e.id, good, now);  // on disk before the answer
  size_t accepted = 0, duplicates = 0;
  for (size_t k = 0; k < stored.size(); ++k) {
    if (stored[k] == twin::Stored::conflict) {
      reject(index_of[k], "readings[" + std::to_string(index_of[k]) + "].value",
             "another value is stored for this sensor at this time");
      continue;
    }
    ++accepted;
    if (stored[k] == twin::Stored::duplicate) ++duplicates;
  }
  metrics_.readings(accepted - duplicates, rejected.size());
  // The new readings are on disk: queue them for the twin's worker to analyse. With wait=true
  // the answer waits for that analysis; a failing analysis never takes the acknowledgement back.
  OJson analysis = nullptr;
  std::string analysis_error;
  if (auto it = live_.find(e.id); it != live_.end()) {
    std::vector<twin::Reading> fresh;
    for (size_t k = 0; k < stored.size(); ++k)
      if (stored[k] == twin::Stored::inserted) fresh.push_back(good[k]);
    twin::LiveTwin& lt = *it->second;
    if (!fresh.empty()) {
      const unsigned long ticket = lt.enqueue(std::move(fresh));
      workers_.at(e.id)->wake();
      if (wait) {
        const auto done = lt.wait(ticket);
        analysis_error = done.error;
        if (done.analysis)
          analysis = {{"time", format_rfc3339(done.analysis->time)}, {"revision", done.analysis->revision},
                      {"assimilated", done.analysis->assimilated}, {"late", done.analysis->late}, {"pending", false}};
        if (done.analysis && done.analysis->failed) {
          analysis["failed"] = done.analysis->failed;
          analysis_error = done.analysis->error;
        }
      }
    }
    if (!wait || analysis.is_null()) {
      // The latest analysis so far (these readings' one may still be running).
      const long rev = lt.revision();
      analysis = {{"time", rev > 0 ? OJson(format_rfc3339(lt.time())) : OJson(nullptr)}, {"revision", rev},
                  {"pending", !wait && lt.pending()}};
    }
  }
  // Per-reading rejections are listed in index order.
  std::vector<OJson> sorted(rejected.begin(), rejected.end());
  std::sort(sorted.begin(), sorted.end(), [](const OJson& a, const OJson& b) { return a["index"] < b["index"]; });
  OJson doc = {{"accepted", accepted}, {"duplicates", duplicates}, {"rejected", sorted}, {"analysis", analysis}};
  if (!analysis_error.empty()) doc["analysis_error"] = analysis_error;
  return json_response(doc);
}

twin::LiveTwin& Service::live(const TwinRegistry::Entry& e) const {
  auto it = live_.find(e.id);
  if (auto why = no_live_.find(e.id); why != no_live_.end()) throw HttpError(409, "no_state", why->second, "id");
  if (it == live_.end())
    throw HttpError(409, "no_state", "twin '" + e.id + "' has no sensors: there is no state to estimate", "id");
  return *it->second;
}

Response Service::recommend(const Request& r) {
  known_query(r, {});
  const auto& e = twins_.find(r.params.at("id"));
  twin::LiveTwin& lt = live(e);
  const Json body = parse_body_object(r.body, {"horizon", "step", "probability", "candidates"}, /*optional=*/true);
  twin::RecommendRequest req;
  auto number = [&](const char* name, double fallback, double lo, double hi) {
    if (!body.contains(name)) return fallback;
    const Json& v = body[name];
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < lo || v.get<double>() > hi)
      throw InvalidInput(name, "must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v.get<double>();
  };
  req.horizon = number("horizon", 3600, 1e-6, 1e9);
  req.step = number("step", req.horizon / 6, 1e-6, 1e9);
  const double steps = std::floor(req.horizon / req.step + 1e-9);
  if (steps < 1 || steps > 100) throw InvalidInput("step", "the horizon must hold 1 to 100 steps");
  req.probability = number("probability", 0.95, 0.5, 0.9999);
  if (body.contains("candidates") && !body["candidates"].is_number_integer())
    throw InvalidInput("candidates", "must be an integer");
  req.candidates = static_cast<int>(number("candidates", 64, 1, 1024));
  twin::check_recommendable(e.model->twin());
  if (!e.surrogate) {
    // Without a surrogate every member at every step of every candidate is an FE solve.
    const double solves = (2.0 * req.candidates + 2) * options_.live.estimator.members * steps;
    if (solves > 20000)
      throw InvalidInput("candidates", "twin '" + e.id + "' has no surrogate bundle: this search would take " +
                                           std::to_string(static_cast<long>(solves)) +
                                           " finite-element solves; load a bundle or ask for fewer candidates or steps");
  }
  return json_response(lt.recommend_json(req));
}

Response Service::field(const Request& r) {
  known_query(r, {"quantity", "format"});
  const auto& e = twins_.find(r.params.at("id"));
  twin::LiveTwin& lt = live(e);
  const auto q = r.query.find("quantity");
  const std::string quantity = q == r.query.end() ? "temperature" : q->second;
  const auto f = r.query.find("format");
  const std::string format = f == r.query.end() ? "json" : f->second;
  if (format != "json" && format != "vtu") throw InvalidInput("format", "must be json or vtu");
  if (format == "json") return json_response(lt.field_json(quantity));
  lt.check_field_quantity(quantity);
  // Written in memory: no file a planted link could redirect.
  std::ostringstream text;
  write_vtu(*e.model, lt.mean_fields(), text);
  Response out;
  out.content_type = "application/xml";
  out.body = std::move(text).str();
  out.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + e.id + "-state.vtu\"");
  return out;
}

Response Service::alerts(const Request& r) {
  known_query(r, {"state", "limit"});
  const auto& e = twins_.find(r.params.at("id"));
  std::string state = "active";
  if (const auto it = r.query.find("state"); it != r.query.end()) {
    if (it->second != "active" && it->second != "cleared" && it->second != "all")
      throw InvalidInput("state", "must be active, cleared or all");
    state = it->second == "all" ? "" : it->second;
  }
  const size_t limit = query_count(r, "limit", 100, 1, 10000);
  return json_response({{"twin", e.id}, {"alerts", live(e).alerts_json(state, -1e300, 1e300, limit)}});
}

Response Service::state(const Request& r) {
  known_query(r, {});
  const auto& e = twins_.find(r.params.at("id"));
  return json_response(live(e).state_json(now_seconds()));
}

Response Service::forecast(const Request& r) {
  known_query(r, {});
  const auto& e = twins_.find(r.params.at("id"));
  const auto& t = e.model->twin();
  twin::LiveTwin& lt = live(e);
  const Json body = parse_body_object(r.body, {"horizon", "step", "schedules", "outputs"});
  twin::ForecastRequest req;
  auto seconds = [&](const char* name, double fallback) {
    if (!body.contains(name)) return fallback;
    const Json& v = body[name];
    if (!v.is_number() || !std::isfinite(v.get<double>()) || !(v.get<double>() > 0))
      throw InvalidInput(name, "must be a positive number of seconds");
    return v.get<double>();
  };
  req.horizon = seconds("horizon", 3600);
  req.step = seconds("step", req.horizon / 60);
  const double steps = std::floor(req.horizon / req.step + 1e-9);
  if (steps < 1) throw InvalidInput("step", "must not exceed the horizon");
  if (steps > 1000) throw InvalidInput("step", "the horizon holds more than 1000 steps");
  if (body.contains("outputs")) {
    const Json& o = body["outputs"];
    if (!o.is_array()) throw InvalidInput("outputs", "must be an array of output names");
    for (size_t i = 0; i < o.size(); ++i) {
      const std::string path = "outputs[" + std::to_string(i) + "]";
      size_t k = 0;
      while (o[i].is_string() && k < t.outputs.size() && t.outputs[k].name != o[i].get<std::string>()) ++k;
      if (!o[i].is_string() || k == t.outputs.size()) throw InvalidInput(path, "must name one of the twin's outputs");
      req.outputs.push_back(k);
    }
  }
  if (body.contains("schedules")) {
    const Json& sch = body["schedules"];
    if (!sch.is_object()) throw InvalidInput("schedules", "must map parameter names to [[time, value], ...]");
    for (auto k = sch.begin(); k != sch.end(); ++k) {
      const std::string path = "schedules." + k.key();
      const int idx = t.parameter_index(k.key());
      if (idx < 0) throw InvalidInput(path, "the twin has no parameter '" + k.key() + "'");
      const auto& par = t.parameters[static_cast<size_t>(idx)];
      if (!k.value().is_array() || k.value().empty()) throw InvalidInput(path, "needs at least one [time, value] point");
      spec::Schedule s;
      s.parameter = idx;
      for (size_t i = 0; i < k.value().size(); ++i) {
        const Json& pt = k.value()[i];
        const std::string ip = path + "[" + std::to_string(i) + "]";
        if (!pt.is_array() || pt.size() != 2 || !pt[0].is_number() || !pt[1].is_number())
          throw InvalidInput(ip, "must be [time in seconds from now, value]");
        const double time = pt[0].get<double>(), v = pt[1].get<double>();
        if (!(time >= 0) || (!s.points.empty() && time < s.points.back().first))
          throw InvalidInput(ip, "times must be >= 0 and must not decrease");
        if (!(v >= par.min && v <= par.max))
          throw InvalidInput(ip, "value " + std::to_string(v) + " lies outside the bounds of '" + par.name + "'");
        s.points.emplace_back(time, v);
      }
      req.schedules.push_back(std::move(s));
    }
  }
  return json_response(lt.forecast_json(req));
}

namespace {
OJson controls_doc(const twin::HistoryStore::Controls& c) {
  return {{"desired", OJson::parse(c.desired)}, {"reported", OJson::parse(c.reported)}, {"version", c.version},
          {"updated", c.version ? OJson(format_rfc3339(c.updated)) : OJson(nullptr)}};
}
Response controls_response(const twin::HistoryStore::Controls& c) {
  Response out = json_response(controls_doc(c));
  out.headers.emplace_back("ETag", "\"" + std::to_string(c.version) + "\"");
  return out;
}
}  // namespace

void Service::apply_reported(const TwinRegistry::Entry& e, const std::string& reported_json) {
  auto it = live_.find(e.id);
  if (it == live_.end()) return;
  const Json reported = Json::parse(reported_json);
  for (auto k = reported.begin(); k != reported.end(); ++k) {
    const int idx = e.model->twin().parameter_index(k.key());
    if (idx >= 0 && k.value().is_number()) it->second->set_control(static_cast<size_t>(idx), k.value().get<double>());
  }
}

Response Service::controls_get(const Request& r) {
  known_query(r, {});
  const auto& e = twins_.find(r.params.at("id"));
  return controls_response(history_->controls(e.id));
}

Response Service::controls_put(const Request& r) {
  known_query(r, {});
  const auto& e = twins_.find(r.params.at("id"));
  const auto& t = e.model->twin();
  const Json body = parse_body_object(r.body, {"desired", "reported"});
  if (body.size() != 1) throw InvalidInput("", "the body must be {\"desired\": {...}} or {\"reported\": {...}}");
  const std::string kind = body.contains("desired") ? "desired" : "reported";
  // Desired values steer the asset: they need the control scope, and the version the caller saw;
  // reported values come from the asset: ingest.
  auth_.authorize(r, kind == "desired" ? Scope::control : Scope::ingest);
  const Json& values = body[kind];
  if (!values.is_object() || values.empty()) throw InvalidInput(kind, "must be an object of control parameter values");
  for (auto k = values.begin(); k != values.end(); ++k) {
    const std::string path = kind + "." + k.key();
    const int idx = t.parameter_index(k.key());
    if (idx < 0) throw InvalidInput(path, "the twin has no parameter '" + k.key() + "'");
    const auto& p = t.parameters[static_cast<size_t>(idx)];
    if (p.role != spec::ParameterRole::control) throw InvalidInput(path, "'" + p.name + "' is not a control parameter");
    if (!k.value().is_number() || !std::isfinite(k.value().get<double>()))
      throw InvalidInput(path, "must be a finite number");
    const double v = k.value().get<double>();
    if (v < p.min || v > p.max)
      throw InvalidInput(path, "value " + std::to_string(v) + " lies outside the bounds [" + std::to_string(p.min) + ", " +
                                   std::to_string(p.max) + "]");
  }
  long expected = -1;
  const std::string match = r.header("if-match");
  if (!match.empty() && match != "*") {
    std::string v = match;
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
      throw InvalidInput("If-Match", "must be the ETag of GET /v1/twins/{id}/controls, such as \"5\"");
    expected = std::stol(v);
  } else if (match.empty() && kind == "desired") {
    throw HttpError(428, "precondition_required",
                    "changing desired controls needs If-Match with the current version (the ETag of GET .../controls)",
                    "If-Match");
  }
  // Merge and write under the version check. With If-Match a concurrent change is a 412; a
  // report without it merges again onto the newer version.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto current = history_->controls(e.id);
    if (expected >= 0 && expected != current.version)
      throw HttpError(412, "precondition_failed",
                      "the controls are at version " + std::to_string(current.version) + ", not " + std::to_string(expected),
                      "If-Match");
    Json merged = Json::parse(kind == "desired" ? current.desired : current.reported);
    for (auto k = values.begin(); k != values.end(); ++k) merged[k.key()] = k.value();
    const std::string actor = r.principal.empty() ? "anonymous" : r.principal;
    const auto done = history_->set_controls(e.id, current.version, kind, merged.dump(), values.dump(), actor, now_seconds());
    if (!done) continue;
    if (kind == "reported") apply_reported(e, done->reported);
    if (options_.log)
      options_.log({{"time", utc_now()}, {"event", "controls_" + kind}, {"twin", e.id}, {"version", done->version},
                    {"values", values}, {"actor", actor}});
    return controls_response(*done);
  }
  throw HttpError(409, "conflict", "the controls changed concurrently; try again", "If-Match");
}

Response Service::history(const Request& r) const {
  known_query(r, {"kind", "from", "to", "sensor", "limit", "after"});
  const auto& e = twins_.find(r.params.at("id"));
  const auto kind = r.query.find("kind");
  if (kind == r.query.end()) throw InvalidInput("kind", "is required (observations, estimates, alerts or controls)");
  if (kind->second != "observations" && kind->second != "estimates" && kind->second != "alerts" && kind->second != "controls")
    throw InvalidInput("kind", "unknown kind \"" + kind->second + "\" (this server keeps: observations, estimates, alerts, controls)");
  auto time_of = [&](const char* name, double fallback) {
    const auto it = r.query.find(name);
    if (it == r.query.end()) return fallback;
    const auto t = parse_rfc3339(it->second);
    if (!t) throw InvalidInput(name, "must be an RFC 3339 time, got \"" + it->second + "\"");
    return *t;
  };
  const double from = time_of("from", -1e300), to = time_of("to", 1e300);
  if (from > to) throw InvalidInput("from", "lies after to");
  const size_t limit = query_count(r, "limit", 1000, 1, 10000);
  std::string sensor;
  if (const auto it = r.query.find("sensor"); it != r.query.end()) {
    sensor = it->second;
    bool known = false;
    for (const auto& s : e.model->twin().sensors) known = known || s.name == sensor;
    if (!known) throw InvalidInput("sensor", "the twin has no sensor '" + sensor + "'");
  }
  if (kind->second != "observations") {
    if (r.query.count("sensor")) throw InvalidInput("sensor", "applies to kind=observations only");
    // Estimates, alerts and controls page by record id: `next` is the last item's.
    long after = 0;
    if (const auto it = r.query.find("after"); it != r.query.end()) {
      char* end = nullptr;
      after = std::strtol(it->second.c_str(), &end, 10);
      if (it->second.empty() || *end != '\0' || after <= 0) throw InvalidInput("after", "must be the `next` cursor of a previous page");
    }
    OJson items = OJson::array();
    long last = 0;
    if (kind->second == "estimates") {
      for (const auto& x : history_->estimates(e.id, from, to, limit, after)) {
        items.push_back(OJson::parse(x.summary));
        last = x.id;
      }
    } else if (kind->second == "alerts") {
      items = live(e).alerts_json("", from, to, limit, after);
      if (!items.empty()) last = items.back()["id"].get<long>();
    } else {
      for (const auto& c : history_->control_log(e.id, from, to, limit, after)) {
        items.push_back({{"version", c.version}, {"kind", c.kind}, {"values", OJson::parse(c.values)}, {"actor", c.actor},
                         {"time", format_rfc3339(c.time)}});
        last = c.id;
      }
    }
    const bool full = items.size() == limit;
    return json_response({{"twin", e.id}, {"kind", kind->second}, {"items", items},
                          {"next", full ? OJson(std::to_string(last)) : OJson(nullptr)}});
  }
  std::optional<twin::HistoryStore::Cursor> after;
  if (const auto it = r.query.find("after"); it != r.query.end()) {
    // The cursor of the previous page: "<seconds>~<sensor>".
    const auto sep = it->second.find('~');
    char* end = nullptr;
    const double t = sep == std::string::npos ? 0 : std::strtod(it->second.c_str(), &end);
    if (sep == std::string::npos || end != it->second.c_str() + sep || !std::isfinite(t))
      throw InvalidInput("after", "must be the `next` cursor of a previous page");
    after = twin::HistoryStore::Cursor{t, it->second.substr(sep + 1)};
  }
  const auto page = history_->query(e.id, sensor, from, to, limit, after);
  OJson items = OJson::array();
  for (const auto& o : page.readings)
    items.push_back({{"sensor", o.sensor}, {"time", format_rfc3339(o.time)}, {"value", o.value}});
  OJson doc = {{"twin", e.id}, {"kind", "observations"}, {"items", items}};
  if (page.next) {
    char t[64];
    std::snprintf(t, sizeof t, "%.17g", page.next->time);
    doc["next"] = std::string(t) + "~" + page.next->sensor;
  } else {
    doc["next"] = nullptr;
  }
  return json_response(doc);
}

void Service::render_gauges(std::string& out) const {
  if (!ready_) return;  // the workers are being created (start() runs in the loader thread)
  out += "# HELP doppel_queue_depth Requests waiting in a twin's batching queue.\n";
  out += "# TYPE doppel_queue_depth gauge\n";
  for (const auto& [id, w] : workers_)
    out += "doppel_queue_depth{twin=\"" + label_value(id) + "\"} " + std::to_string(w->queued_requests()) + "\n";
  out += "# HELP doppel_queue_scenarios Scenarios waiting in a twin's batching queue.\n";
  out += "# TYPE doppel_queue_scenarios gauge\n";
  for (const auto& [id, w] : workers_)
    out += "doppel_queue_scenarios{twin=\"" + label_value(id) + "\"} " + std::to_string(w->queued_scenarios()) + "\n";
  out += "# HELP doppel_jobs Stored jobs by state.\n";
  out += "# TYPE doppel_jobs gauge\n";
  std::map<std::string, size_t> states;
  try {
    states = jobs_->count_by_state();
  } catch (const std::exception&) {
  }
  for (const char* s : {"queued", "running", "done", "failed", "cancelled"})
    out += std::string("doppel_jobs{state=\"") + s + "\"} " + std::to_string(states.count(s) ? states.at(s) : 0) + "\n";
  // Live twins, as of their latest analysis (kept aside by each analysis: never waits for one).
  std::vector<std::pair<std::string, twin::LiveGauges>> live;
  for (const auto& [id, t] : live_) live.emplace_back(id, t->gauges());
  auto num = [](double v) {
    std::ostringstream o;
    o.precision(10);
    o << v;
    return o.str();
  };
  out += "# HELP doppel_twin_output Each output's estimate at the latest analysis: ensemble mean and standard deviation.\n";
  out += "# TYPE doppel_twin_output gauge\n";
  for (const auto& [id, g] : live)
    for (const auto& o : g.outputs)
      for (const auto& [stat, v] : {std::pair<const char*, double>{"mean", o.mean}, {"std", o.std}})
        out += "doppel_twin_output{twin=\"" + label_value(id) + "\",output=\"" + label_value(o.name) + "\",stat=\"" + stat + "\"} " + num(v) + "\n";
  out += "# HELP doppel_twin_sensor_innovation_z Normalized innovation of each sensor's latest assimilated reading.\n";
  out += "# TYPE doppel_twin_sensor_innovation_z gauge\n";
  for (const auto& [id, g] : live)
    for (const auto& z : g.sensors)
      if (z.assimilated)
        out += "doppel_twin_sensor_innovation_z{twin=\"" + label_value(id) + "\",sensor=\"" + label_value(z.name) + "\"} " + num(z.z) + "\n";
  out += "# HELP doppel_twin_sensor_mean_z2 Exponentially weighted mean of each sensor's squared innovation (near 1 when the model fits).\n";
  out += "# TYPE doppel_twin_sensor_mean_z2 gauge\n";
  for (const auto& [id, g] : live)
    for (const auto& z : g.sensors)
      if (z.assimilated)
        out += "doppel_twin_sensor_mean_z2{twin=\"" + label_value(id) + "\",sensor=\"" + label_value(z.name) + "\"} " + num(z.mean_z2) + "\n";
  out += "# HELP doppel_twin_analyses Analyses of a live twin's state so far.\n# TYPE doppel_twin_analyses gauge\n";
  for (const auto& [id, g] : live) out += "doppel_twin_analyses{twin=\"" + label_value(id) + "\"} " + std::to_string(g.revision) + "\n";
  out += "# HELP doppel_twin_analysis_time_seconds The twin's clock (time of its latest readings) at the latest analysis, Unix seconds.\n";
  out += "# TYPE doppel_twin_analysis_time_seconds gauge\n";
  for (const auto& [id, g] : live)
    if (g.revision > 0) out += "doppel_twin_analysis_time_seconds{twin=\"" + label_value(id) + "\"} " + num(g.analysis_time) + "\n";
  out += "# HELP doppel_twin_seconds_since_analysis Wall-clock seconds since this process last analysed the twin's state.\n";
  out += "# TYPE doppel_twin_seconds_since_analysis gauge\n";
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, g] : live)
    if (g.analysed_here)
      out += "doppel_twin_seconds_since_analysis{twin=\"" + label_value(id) + "\"} " +
             num(std::chrono::duration<double>(now - g.analysed_at).count()) + "\n";
  out += "# HELP doppel_build_info The running doppel: version and compute backend.\n# TYPE doppel_build_info gauge\n";
  out += std::string("doppel_build_info{version=\"") + DOPPEL_VERSION + "\",backend=\"" + (options_.gpu_metrics ? "cuda" : "cpu") + "\"} 1\n";
  render_process_metrics(out);
  if (connection_stats_) {
    const FrontStats c = connection_stats_();
    out += "# HELP doppel_http_connections Client connections: open, with a complete request waiting for a worker, and waiting for body budget.\n";
    out += "# TYPE doppel_http_connections gauge\n";
    out += "doppel_http_connections{state=\"open\"} " + std::to_string(c.open) + "\n";
    out += "doppel_http_connections{state=\"waiting\"} " + std::to_string(c.waiting) + "\n";
    out += "doppel_http_connections{state=\"paused\"} " + std::to_string(c.paused) + "\n";
    out += "# HELP doppel_http_buffered_body_bytes Request body bytes reserved in the body budget.\n";
    out += "# TYPE doppel_http_buffered_body_bytes gauge\n";
    out += "doppel_http_buffered_body_bytes " + std::to_string(c.buffered_body_bytes) + "\n";
    out += "# HELP doppel_http_connections_accepted_total Client connections accepted.\n";
    out += "# TYPE doppel_http_connections_accepted_total counter\n";
    out += "doppel_http_connections_accepted_total " + std::to_string(c.accepted) + "\n";
    out += "# HELP doppel_http_connections_closed_total Connections the server closed on its own, by reason.\n";
    out += "# TYPE doppel_http_connections_closed_total counter\n";
    const std::pair<const char*, uint64_t> closed[] = {{"refused", c.refused},        {"head_timeout", c.head_timeouts},
                                                       {"body_timeout", c.body_timeouts},  {"idle", c.idle_closed},       {"oversized_head", c.oversized_heads}, {"malformed_head", c.malformed_heads},
                                                       {"io_timeout", c.io_timeouts}};
    for (const auto& [reason, n] : closed)
      out += std::string("doppel_http_connections_closed_total{reason=\"") + reason + "\"} " + std::to_string(n) + "\n";
  }
  if (options_.gpu_metrics) {
    out += "# HELP doppel_gpu_memory_bytes Device memory (all allocations on the device, LibTorch's cache included).\n";
    out += "# TYPE doppel_gpu_memory_bytes gauge\n";
    for (int d = 0; d < cuda::device_count(); ++d) {
      size_t free_bytes = 0, total = 0;
      if (!cuda::memory_info(d, free_bytes, total)) continue;
      out += "doppel_gpu_memory_bytes{device=\"" + std::to_string(d) + "\",kind=\"used\"} " + std::to_string(total - free_bytes) + "\n";
      out += "doppel_gpu_memory_bytes{device=\"" + std::to_string(d) + "\",kind=\"total\"} " + std::to_string(total) + "\n";
      size_t reserved = 0, in_use = 0, claimed = 0, limit = 0;
      if (!cuda::memory_pool_info(d, reserved, in_use, claimed, limit)) continue;
      // doppel's own share: its memory pool, and the working memory its solves claim of the
      // budget (DOPPEL_MEMORY_FRACTION of the device).
      const std::pair<const char*, size_t> own[] = {{"pool_reserved", reserved}, {"pool_used", in_use},
                                                     {"solves_claimed", claimed}, {"solves_budget", limit}};
      for (const auto& [kind, bytes] : own)
        out += "doppel_gpu_memory_bytes{device=\"" + std::to_string(d) + "\",kind=\"" + kind + "\"} " + std::to_string(bytes) + "\n";
    }
  }
}

OJson Service::openapi() const {
  OJson paths = OJson::object();
  auto json_content = [](const OJson& schema) { return OJson{{"application/json", {{"schema", schema}}}}; };
  const OJson error_ref = {{"description", "error (the one error body)"},
                           {"content", json_content({{"$ref", "#/components/schemas/Error"}})}};
  auto query = [](const char* name, const char* type, const char* description) {
    return OJson{{"name", name}, {"in", "query"}, {"required", false}, {"description", description},
                 {"schema", {{"type", type}}}};
  };
  for (const auto& d : docs_) {
    std::string method = d.method;
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string op_id = method;
    for (char c : d.path) op_id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    OJson op = {{"summary", d.summary},
                {"operationId", op_id},
                {"responses", {{"200", {{"description", "success"}, {"content", json_content({{"type", "object"}})}}},
                               {"default", error_ref}}}};
    if (d.scope != Scope::none) {
      op["security"] = OJson::array({{{"bearerAuth", OJson::array()}}});
      op["x-required-scope"] = scope_name(d.scope);
      op["description"] = std::string("Needs a bearer token with scope `") + scope_name(d.scope) +
                          "` (or `admin`) when the server has tokens configured.";
      op["responses"]["401"] = {{"description", "missing or unknown bearer token"},
                                {"content", json_content({{"$ref", "#/components/schemas/Error"}})}};
      op["responses"]["403"] = {{"description", "the token lacks the scope"},
                                {"content", json_content({{"$ref", "#/components/schemas/Error"}})}};
    } else {
      op["security"] = OJson::array();
      op["x-required-scope"] = "none";
    }
    if (d.path == "/")
      op["responses"]["200"] = {{"description", "the dashboard"}, {"content", {{"text/html", {{"schema", {{"type", "string"}}}}}}}};
    if (d.path == "/metrics")
      op["responses"]["200"] = {{"description", "Prometheus text"}, {"content", {{"text/plain", {{"schema", {{"type", "string"}}}}}}}};
    if (d.path.find("{id}") != std::string::npos) {
      const bool job = d.path.rfind("/v1/jobs", 0) == 0;
      op["parameters"] = OJson::array({{{"name", "id"}, {"in", "path"}, {"required", true},
                                        {"description", job ? "job id" : "twin name"}, {"schema", {{"type", "string"}}}}});
    }
    if (d.path == "/v1/twins/{id}/scenarios") {
      op["requestBody"] = {{"required", true}, {"content", json_content({{"$ref", "#/components/schemas/ScenarioRequest"}})}};
      op["responses"]["200"] = {{"description", "answered now"}, {"content", json_content({{"$ref", "#/components/schemas/ScenarioAnswers"}})}};
      op["responses"]["202"] = {{"description", "accepted as a job (Location: /v1/jobs/{id})"},
                                {"content", json_content({{"$ref", "#/components/schemas/Job"}})}};
      op["responses"]["413"] = {{"description", "more scenarios than the server accepts"},
                                {"content", json_content({{"$ref", "#/components/schemas/Error"}})}};
    }
    if (d.path == "/v1/twins/{id}/observations") {
      op["requestBody"] = {{"required", true}, {"content", json_content({{"$ref", "#/components/schemas/ObservationRequest"}})}};
      op["responses"]["200"] = {{"description", "stored (accepted) and refused (rejected, each with its path and reason) readings"},
                                {"content", json_content({{"$ref", "#/components/schemas/ObservationAnswer"}})}};
      op["responses"]["409"] = {{"description", "no_state: the twin keeps no live state (its values depend on the analysis's t)"},
                                {"content", json_content({{"$ref", "#/components/schemas/Error"}})}};
    }
    if (d.path == "/v1/twins/{id}/forecast")
      op["requestBody"] = {{"required", true}, {"content", json_content({{"$ref", "#/components/schemas/ForecastRequest"}})}};
    if (d.path == "/v1/twins/{id}/controls" && d.method == "PUT") {
      op["requestBody"] = {{"required", true}, {"content", json_content({{"$ref", "#/components/schemas/ControlsRequest"}})}};
      op["parameters"].push_back({{"name", "If-Match"}, {"in", "header"}, {"required", false},
                                  {"description", "the version (ETag) the change is based on; required for desired values"},
                                  {"schema", {{"type", "string"}}}});
      op["x-required-scope"] = "ingest (reported) / control (desired)";
      op["description"] = "Needs a bearer token with scope `control` for desired values or `ingest` for reported values "
                          "(or `admin`) when the server has tokens configured.";
      op["responses"]["412"] = {{"description", "If-Match names another version"},
                                {"content", json_content({{"$ref", "#/components/schemas/Error"}})}};
      op["responses"]["428"] = {{"description", "desired values without If-Match"},
                                {"content", json_content({{"$ref", "#/components/schemas/Error"}})}};
    }
    if (d.path == "/v1/twins/{id}/history") {
      op["parameters"].push_back({{"name", "kind"}, {"in", "query"}, {"required", true}, {"description", "which records"},
                                  {"schema", {{"type", "string"}, {"enum", {"observations", "estimates", "alerts", "controls"}}}}});
      op["parameters"].push_back(query("from", "string", "RFC 3339 time: records at or after it"));
      op["parameters"].push_back(query("to", "string", "RFC 3339 time: records at or before it"));
      op["parameters"].push_back(query("sensor", "string", "only this sensor's readings"));
      op["parameters"].push_back(query("limit", "integer", "at most this many (1..10000, default 1000)"));
      op["parameters"].push_back(query("after", "string", "the `next` cursor of the previous page"));
    }
    if (d.path == "/v1/jobs") {
      op["parameters"] = OJson::array({query("twin", "string", "only this twin's jobs"),
                                       query("limit", "integer", "at most this many (1..1000, default 100)")});
      op["responses"]["200"]["content"] = json_content({{"type", "object"}, {"properties", {{"jobs", {{"type", "array"}, {"items", {{"$ref", "#/components/schemas/Job"}}}}}}}});
    }
    if (d.path == "/v1/jobs/{id}")
      op["responses"]["200"]["content"] = json_content({{"$ref", "#/components/schemas/Job"}});
    if (d.path == "/v1/jobs/{id}/results") {
      op["parameters"].push_back(query("from", "integer", "first scenario index to send (resume a stream)"));
      op["parameters"].push_back(query("wait", "boolean", "false: send what is stored now and end (default true: follow the job)"));
      op["responses"]["200"] = {{"description", "NDJSON, one ScenarioAnswer (with its index) per line"},
                                {"content", {{"application/x-ndjson", {{"schema", {{"$ref", "#/components/schemas/ScenarioAnswer"}}}}}}}};
    }
    paths[d.path][method] = op;
  }
  const OJson number_or_null = {{"type", "number"}, {"nullable", true}};
  OJson schemas = {
      {"Error", {{"type", "object"}, {"required", {"error"}},
                 {"properties", {{"error", {{"type", "object"}, {"required", {"code", "type", "message", "path"}},
                                             {"properties", {{"code", {{"type", "integer"}}}, {"type", {{"type", "string"}}},
                                                             {"message", {{"type", "string"}}}, {"path", {{"type", "string"}}}}}}}}}}},
      {"ScenarioRequest",
       {{"type", "object"}, {"required", {"scenarios"}}, {"additionalProperties", false},
        {"properties",
         {{"scenarios", {{"type", "array"}, {"minItems", 1}, {"maxItems", options_.max_job_scenarios},
                         {"items", {{"type", "object"}, {"additionalProperties", false},
                                    {"properties", {{"id", {{"type", "string"}}},
                                                    {"parameters", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}},
                                                                    {"description", "values inside the twin's bounds; beyond them (still physical) only for fidelity fem"}}},
                                                    {"schedules", {{"type", "object"}, {"description", "transient twins: parameter -> [[time, value], ...]"},
                                                                   {"additionalProperties", {{"type", "array"}, {"items", {{"type", "array"}, {"items", {{"type", "number"}}}, {"minItems", 2}, {"maxItems", 2}}}}}}}}}}}}},
          {"outputs", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "output names (default: all)"}}},
          {"fidelity", {{"type", "string"}, {"enum", {"fem", "surrogate", "auto"}}, {"description", "default auto with a bundle, fem without"}}},
          {"tolerance", {{"type", "number"}, {"exclusiveMinimum", true}, {"minimum", 0}, {"description", "auto and surrogate: largest error estimate a surrogate tier may answer with before the next tier"}}},
          {"output_tolerances", {{"type", "object"}, {"additionalProperties", {{"type", "number"}, {"exclusiveMinimum", true}, {"minimum", 0}}},
                                 {"description", "auto: per output name, the largest error estimate accepted from a surrogate tier, in the output's units"}}},
          {"one_fidelity", {{"type", "boolean"}, {"description", "auto and surrogate: answer the whole batch at the highest fidelity any scenario needs (auto: FEM for all when one falls back; surrogate: the reduced tier for all when one needs it); not for jobs"}}},
          {"mode", {{"type", "string"}, {"enum", {"sync", "async"}},
                    {"description", "async: a job whatever the size (sync: answer now when at most " +
                                        std::to_string(options_.max_sync_scenarios) + " scenarios)"}}}}}}},
      {"ObservationRequest",
       {{"type", "object"}, {"required", {"readings"}}, {"additionalProperties", false},
        {"properties", {{"readings", {{"type", "array"}, {"items", {{"type", "object"}, {"required", {"sensor", "time", "value"}}, {"additionalProperties", false},
                                                                   {"properties", {{"sensor", {{"type", "string"}}},
                                                                                   {"time", {{"type", "string"}, {"format", "date-time"}}},
                                                                                   {"value", {{"type", "number"}}}}}}}}}}}}},
      {"ForecastRequest",
       {{"type", "object"}, {"additionalProperties", false},
        {"properties", {{"horizon", {{"type", "number"}, {"description", "seconds (default 3600)"}}},
                        {"step", {{"type", "number"}, {"description", "seconds (default horizon / 60; at most 1000 steps)"}}},
                        {"schedules", {{"type", "object"}, {"description", "parameter -> [[seconds from the start, value], ...]"},
                                       {"additionalProperties", {{"type", "array"}, {"items", {{"type", "array"}, {"items", {{"type", "number"}}}, {"minItems", 2}, {"maxItems", 2}}}}}}},
                        {"outputs", {{"type", "array"}, {"items", {{"type", "string"}}}}}}}}},
      {"ControlsRequest",
       {{"type", "object"}, {"minProperties", 1}, {"maxProperties", 1}, {"additionalProperties", false},
        {"properties", {{"desired", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}}},
                        {"reported", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}}}}}}},
      {"ObservationAnswer",
       {{"type", "object"},
        {"properties", {{"accepted", {{"type", "integer"}, {"description", "readings stored, duplicates of stored ones included"}}},
                        {"duplicates", {{"type", "integer"}}},
                        {"rejected", {{"type", "array"}, {"items", {{"type", "object"}, {"properties", {{"index", {{"type", "integer"}}}, {"path", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}},
                        {"analysis", {{"type", "object"}, {"nullable", true}}}}}}},
      {"ScenarioAnswer",
       {{"type", "object"},
        {"properties", {{"index", {{"type", "integer"}, {"description", "jobs only"}}},
                        {"id", {{"type", "string"}}},
                        {"parameters", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}}},
                        {"outputs", {{"type", "object"}, {"additionalProperties", {{"oneOf", {number_or_null, {{"type", "array"}, {"items", number_or_null}}}}}}}},
                        {"fidelity", {{"type", "string"}, {"enum", {"surrogate", "fem"}}}},
                        {"tier", {{"type", "string"}, {"enum", {"network", "reduced", "fem"}},
                                  {"description", "the model that answered: the network, the Galerkin solve in the reduced space, or FEM"}}},
                        {"error_estimate", number_or_null},
                        {"error_estimates", {{"type", "array"}, {"items", number_or_null}}},
                        {"spread", {{"type", "object"}, {"additionalProperties", number_or_null}}},
                        {"output_estimates", {{"type", "object"},
                                              {"additionalProperties", {{"oneOf", {number_or_null, {{"type", "array"}, {"items", number_or_null}}}}}},
                                              {"description", "surrogate answers: an error estimate per output in its units (arrays over output times for transient twins)"}}},
                        {"fallback", {{"type", "string"}, {"enum", {"outside_training_bounds", "estimate_above_tolerance", "output_estimate_above_tolerance", "one_fidelity"}}}},
                        {"surrogate_estimate", number_or_null},
                        {"solver", {{"type", "object"}}}}}}},
      {"ScenarioAnswers",
       {{"type", "object"},
        {"properties", {{"twin", {{"type", "string"}}},
                        {"scenarios", {{"type", "array"}, {"items", {{"$ref", "#/components/schemas/ScenarioAnswer"}}}}},
                        {"times", {{"type", "array"}, {"items", {{"type", "number"}}}, {"nullable", true}}},
                        {"fidelity", {{"type", "string"}}},
                        {"answered", {{"type", "object"}, {"properties", {{"surrogate", {{"type", "integer"}}}, {"fem", {{"type", "integer"}}}}}}}}}}},
      {"Job",
       {{"type", "object"},
        {"properties", {{"id", {{"type", "string"}}},
                        {"twin", {{"type", "string"}}},
                        {"state", {{"type", "string"}, {"enum", {"queued", "running", "done", "failed", "cancelled"}}}},
                        {"scenarios", {{"type", "integer"}}},
                        {"completed", {{"type", "integer"}}},
                        {"progress", {{"type", "number"}}},
                        {"answered", {{"type", "object"}}},
                        {"created", {{"type", "string"}, {"format", "date-time"}}},
                        {"started", {{"type", "string"}, {"format", "date-time"}, {"nullable", true}}},
                        {"finished", {{"type", "string"}, {"format", "date-time"}, {"nullable", true}}},
                        {"restarts", {{"type", "integer"}, {"description", "times resumed after a server restart"}}},
                        {"error", {{"type", "string"}}},
                        {"owner", {{"type", "string"}, {"description", "name of the token that submitted it"}}},
                        {"deleted", {{"type", "boolean"}, {"description", "DELETE only"}}},
                        {"results", {{"type", "string"}}}}}}}};
  return {{"openapi", "3.0.3"},
          {"info", {{"title", "doppel"}, {"version", "0.1.0"},
                    {"description", "Finite-element digital twins and their surrogates over HTTP. Scopes: read, simulate, "
                                    "ingest, control, admin (admin holds every scope)."}}},
          {"paths", paths},
          {"components", {{"schemas", schemas},
                          {"securitySchemes", {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"},
                                                               {"description", "tokens and their scopes come from the server's --config"}}}}}}}};
}

}  // namespace doppel::api
