#include "apps/plant_command.hpp"

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/http_server.hpp"
#include "kernels/fem/fem_model.hpp"
#include "spec/errors.hpp"
#include "spec/time.hpp"
#include "twin/estimator.hpp"

namespace doppel::app {

namespace {

using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

struct Url {
  bool tls = false;
  std::string host;
  int port = 80;
};

Url parse_url(const std::string& text) {
  Url u;
  std::string rest = text;
  if (rest.rfind("https://", 0) == 0) {
    u.tls = true;
    u.port = 443;
    rest = rest.substr(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else {
    throw InvalidInput("--server", "must be an http:// or https:// URL, got \"" + text + "\"");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  u.host = rest.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    DOPPEL_VERIFY(!port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos,
                  "--server", "bad port in \"" + text + "\"");
    u.port = std::stoi(port);
  }
  DOPPEL_VERIFY(!u.host.empty() && u.host.find('/') == std::string::npos, "--server", "bad host in \"" + text + "\"");
  return u;
}

// A sensor event: SENSOR[:FROM:TO[:OFFSET]]; "auto" picks one from the seed, "none" disables.
struct Event {
  int sensor = -1;
  double from = 0, to = 0, offset = 0;
};

Event parse_event(const std::string& text, const spec::TwinSpec& t, const std::string& option, double duration,
                  std::mt19937_64& rng, int avoid, bool with_offset) {
  Event e;
  if (text == "none" || t.sensors.empty()) return e;
  if (text == "auto") {
    if (t.sensors.size() < 2 && avoid >= 0) return e;
    do {
      e.sensor = static_cast<int>(rng() % t.sensors.size());
    } while (e.sensor == avoid && t.sensors.size() > 1);
    e.from = 0.5 * duration;
    e.to = 0.75 * duration;
    e.offset = 20 * std::max(t.sensors[static_cast<size_t>(e.sensor)].noise_std, 0.1);
    return e;
  }
  std::vector<std::string> parts;
  size_t p = 0;
  while (true) {
    const size_t q = text.find(':', p);
    parts.push_back(text.substr(p, q == std::string::npos ? std::string::npos : q - p));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  for (size_t k = 0; k < t.sensors.size(); ++k)
    if (t.sensors[k].name == parts[0]) e.sensor = static_cast<int>(k);
  DOPPEL_VERIFY(e.sensor >= 0, option, "the twin has no sensor '" + parts[0] + "'");
  DOPPEL_VERIFY(parts.size() == 1 || parts.size() == 3 || (with_offset && parts.size() == 4), option,
                with_offset ? "expected SENSOR[:FROM:TO[:OFFSET]]" : "expected SENSOR[:FROM:TO]");
  e.from = 0.5 * duration;
  e.to = 0.75 * duration;
  e.offset = 20 * std::max(t.sensors[static_cast<size_t>(e.sensor)].noise_std, 0.1);
  try {
    if (parts.size() >= 3) {
      e.from = std::stod(parts[1]);
      e.to = std::stod(parts[2]);
    }
    if (parts.size() == 4) e.offset = std::stod(parts[3]);
  } catch (const std::exception&) {
    throw InvalidInput(option, "FROM, TO and OFFSET must be numbers");
  }
  DOPPEL_VERIFY(e.to >= e.from, option, "TO must not come before FROM");
  return e;
}

}  // namespace

int run_plant(const PlantArgs& args) {
  DOPPEL_VERIFY(args.speed > 0, "--speed", "must be positive");
  DOPPEL_VERIFY(args.duration > 0, "--duration", "must be positive");
  DOPPEL_VERIFY(args.step > 0 && args.step <= args.duration, "--step", "must be positive and at most the duration");
  DOPPEL_VERIFY(args.drift >= 0, "--drift", "must not be negative");
  const Url url = parse_url(args.server);
  const FemModel model(spec::load_twin(args.twin));
  const auto& t = model.twin();
  DOPPEL_VERIFY(!t.sensors.empty(), "--twin", "twin '" + t.name + "' has no sensors to read");
  std::mt19937_64 rng(args.seed);
  const Event fault = parse_event(args.fault, t, "--fault", args.duration, rng, -1, true);
  const Event dropout = parse_event(args.dropout, t, "--dropout", args.duration, rng, fault.sensor, false);
  double start = spec::now_seconds();
  if (!args.start.empty()) {
    const auto s = spec::parse_rfc3339(args.start);
    DOPPEL_VERIFY(s.has_value(), "--start", "must be an RFC 3339 time");
    start = *s;
  } else if (args.speed > 1) {
    start -= args.duration;  // the whole run lies in the past: readings are never in the future
  }
  std::ofstream truth;
  if (!args.truth.empty()) {
    truth.open(args.truth);
    DOPPEL_VERIFY(truth.good(), "--truth", "cannot write " + args.truth);
  }

  // Hidden truth: latent and load parameters start where --set puts them, else at random values
  // in the middle of their bounds, and drift (a random walk in unit coordinates, reflected at 5 %
  // and 95 %); controls start at --set or their defaults and follow what the server asks for.
  const spec::Scenario chosen = spec::scenario_from_assignments(t, args.sets);  // names and bounds checked
  std::vector<bool> set(t.parameters.size(), false);
  for (const auto& a : args.sets) set[static_cast<size_t>(t.parameter_index(a.substr(0, a.find('='))))] = true;
  std::vector<double> p = chosen.parameters;
  std::vector<double> u(t.parameters.size(), 0.5);
  std::uniform_real_distribution<double> mid(0.3, 0.7);
  bool report_controls = false;
  for (size_t k = 0; k < t.parameters.size(); ++k) {
    const auto& par = t.parameters[k];
    if (par.role == spec::ParameterRole::control) {
      report_controls = report_controls || set[k];
      continue;
    }
    if (!(par.max > par.min)) continue;
    const double drawn = mid(rng);  // drawn either way: --set leaves the other draws as they were
    u[k] = set[k] ? (p[k] - par.min) / (par.max - par.min) : drawn;
    p[k] = par.min + u[k] * (par.max - par.min);
  }
  // The walk is reflected at 5 % and 95 % of the range (or where --set started it, beyond them).
  std::vector<double> lo(u.size()), hi(u.size());
  for (size_t k = 0; k < u.size(); ++k) {
    lo[k] = std::min(0.05, u[k]);
    hi[k] = std::max(0.95, u[k]);
  }
  api::HttpClient client(url.host, url.port, 120, api::ClientTls{url.tls, ""});
  std::vector<std::pair<std::string, std::string>> headers;
  if (!args.token.empty()) headers.emplace_back("Authorization", "Bearer " + args.token);
  std::normal_distribution<double> normal;
  std::vector<double> state;  // transient twins: the asset's nodal temperature
  const auto wall0 = std::chrono::steady_clock::now();
  size_t posted = 0, rejected = 0;
  int steps = 0;
  for (double elapsed = 0; elapsed <= args.duration * (1 + 1e-12); elapsed += args.step, ++steps) {
    // Pace: simulated time runs at --speed.
    std::this_thread::sleep_until(wall0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                              std::chrono::duration<double>(elapsed / args.speed)));
    if (elapsed > 0)
      for (size_t k = 0; k < t.parameters.size(); ++k) {
        if (t.parameters[k].role == spec::ParameterRole::control || !(t.parameters[k].max > t.parameters[k].min)) continue;
        u[k] += args.drift * std::sqrt(args.step / 3600.0) * normal(rng);
        if (u[k] < lo[k]) u[k] = 2 * lo[k] - u[k];
        if (u[k] > hi[k]) u[k] = 2 * hi[k] - u[k];
        p[k] = t.parameters[k].min + u[k] * (t.parameters[k].max - t.parameters[k].min);
      }
    // Controls: apply the desired values, then report them.
    const auto got = client.request("GET", "/v1/twins/" + t.name + "/controls", "", headers);
    if (got.status == 200) {
      const Json c = Json::parse(got.body);
      Json applied = Json::object();
      for (auto it = c["desired"].begin(); it != c["desired"].end(); ++it) {
        const int idx = t.parameter_index(it.key());
        if (idx < 0 || !it.value().is_number()) continue;
        const double v = it.value().get<double>();
        if (p[static_cast<size_t>(idx)] != v || !c["reported"].contains(it.key()) || c["reported"][it.key()] != v) applied[it.key()] = v;
        p[static_cast<size_t>(idx)] = v;
      }
      if (report_controls)  // the settings --set chose, unless the server desires others
        for (size_t k = 0; k < t.parameters.size(); ++k)
          if (set[k] && t.parameters[k].role == spec::ParameterRole::control && !applied.contains(t.parameters[k].name) &&
              !c["desired"].contains(t.parameters[k].name))
            applied[t.parameters[k].name] = p[k];
      report_controls = false;
      if (!applied.empty())
        client.request("PUT", "/v1/twins/" + t.name + "/controls", Json{{"reported", applied}}.dump(), headers);
    } else if (got.status < 0) {
      throw Unavailable("the server at " + args.server + " does not answer");
    }
    // The asset's true state and its sensors.
    // A transient asset carries its temperature from step to step (FEM over each step at the
    // step's parameters, from the twin's initial state).
    const twin::SensorResponse r = t.analysis.transient ? twin::advance_with_sensors(model, p, state, elapsed > 0 ? args.step : 0.0)
                                                        : twin::solve_with_sensors(model, p);
    const std::vector<double>& exact = r.sensors;
    const double now = start + elapsed;
    OJson readings = OJson::array();
    OJson faults = OJson::object();
    for (size_t k = 0; k < exact.size(); ++k) {
      const bool dropped = static_cast<int>(k) == dropout.sensor && elapsed >= dropout.from && elapsed <= dropout.to;
      if (dropped) continue;
      double v = exact[k] + t.sensors[k].noise_std * normal(rng);
      if (static_cast<int>(k) == fault.sensor && elapsed >= fault.from && elapsed <= fault.to) {
        v += fault.offset;
        faults[t.sensors[k].name] = fault.offset;
      }
      readings.push_back({{"sensor", t.sensors[k].name}, {"time", spec::format_rfc3339(now)}, {"value", v}});
    }
    const auto ack = client.request("POST", "/v1/twins/" + t.name + "/observations?wait=true",
                                    OJson{{"readings", readings}}.dump(), headers);
    if (ack.status != 200)
      throw Unavailable("the server refused readings (" + std::to_string(ack.status) + "): " + ack.body.substr(0, 300));
    const Json a = Json::parse(ack.body);
    posted += a.value("accepted", 0u);
    rejected += a["rejected"].size();
    if (truth.is_open()) {
      OJson params = OJson::object(), outs = OJson::object(), sens = OJson::object();
      for (size_t k = 0; k < t.parameters.size(); ++k) params[t.parameters[k].name] = p[k];
      for (size_t k = 0; k < t.outputs.size(); ++k) outs[t.outputs[k].name] = r.outputs[k];
      for (size_t k = 0; k < exact.size(); ++k) sens[t.sensors[k].name] = exact[k];
      truth << OJson{{"time", spec::format_rfc3339(now)}, {"parameters", params}, {"outputs", outs}, {"sensors", sens},
                     {"faults", faults},
                     {"dropped", dropout.sensor >= 0 && elapsed >= dropout.from && elapsed <= dropout.to
                                     ? OJson(t.sensors[static_cast<size_t>(dropout.sensor)].name)
                                     : OJson(nullptr)}}
                   .dump()
            << std::endl;
    }
    if (!args.quiet)
      std::cerr << "plant: " << spec::format_rfc3339(now) << "  readings " << readings.size() << "  analysis revision "
                << (a["analysis"].is_object() ? a["analysis"].value("revision", 0L) : 0L) << "\n";
  }
  if (!args.quiet)
    std::cerr << "plant: " << steps << " steps, " << posted << " readings accepted, " << rejected << " rejected\n";
  return 0;
}

}  // namespace doppel::app
