#include "api/scenario_request.hpp"

#include <nlohmann/json.hpp>

#include "api/errors.hpp"
#include "api/request_body.hpp"
#include "spec/errors.hpp"

namespace doppel::api {

using Json = nlohmann::json;

ScenarioRequest parse_scenario_request(const FemModel& model, bool has_surrogate, const std::string& text,
                                       size_t max_scenarios) {
  const auto& t = model.twin();
  Json body = parse_body_object(text, {"scenarios", "outputs", "fidelity", "tolerance", "output_tolerances", "one_fidelity", "mode"});
  if (!body.contains("scenarios")) throw InvalidInput("scenarios", "is required");
  if (body["scenarios"].is_array() && body["scenarios"].size() > max_scenarios)
    throw HttpError(413, "batch_too_large",
                    "this server accepts at most " + std::to_string(max_scenarios) + " scenarios per request (got " +
                        std::to_string(body["scenarios"].size()) + ")",
                    "scenarios");
  ScenarioRequest req;
  req.options.fidelity = has_surrogate ? Fidelity::automatic : Fidelity::fem;
  if (body.contains("fidelity")) {
    if (!body["fidelity"].is_string()) throw InvalidInput("fidelity", "must be \"fem\", \"surrogate\" or \"auto\"");
    req.options.fidelity = parse_fidelity(body["fidelity"].get<std::string>(), "fidelity");
    if (req.options.fidelity != Fidelity::fem && !has_surrogate)
      throw InvalidInput("fidelity", "twin '" + t.name + "' has no surrogate bundle: use \"fem\"");
  }
  if (body.contains("tolerance")) {
    const Json& tol = body["tolerance"];
    if (!tol.is_number() || !(tol.get<double>() > 0)) throw InvalidInput("tolerance", "must be a positive number");
    if (req.options.fidelity == Fidelity::fem)
      throw InvalidInput("tolerance", "applies to fidelity \"auto\" and \"surrogate\" only");
    req.options.tolerance = tol.get<double>();
  }
  if (body.contains("output_tolerances")) {
    const Json& o = body["output_tolerances"];
    if (!o.is_object() || o.empty())
      throw InvalidInput("output_tolerances", "must be an object of output name -> largest accepted error estimate");
    if (req.options.fidelity != Fidelity::automatic)
      throw InvalidInput("output_tolerances", "applies to fidelity \"auto\" only");
    std::vector<std::pair<std::string, double>> named;
    for (auto it = o.begin(); it != o.end(); ++it) {
      if (!it.value().is_number()) throw InvalidInput("output_tolerances." + it.key(), "must be a positive number (in the output's units)");
      named.emplace_back(it.key(), it.value().get<double>());
    }
    req.options.output_tolerances = parse_output_tolerances(t, named, "output_tolerances");
  }
  if (body.contains("one_fidelity")) {
    const Json& u = body["one_fidelity"];
    if (!u.is_boolean()) throw InvalidInput("one_fidelity", "must be true or false");
    if (u.get<bool>() && req.options.fidelity == Fidelity::fem)
      throw InvalidInput("one_fidelity", "applies to fidelity \"auto\" and \"surrogate\" only (fem is one fidelity already)");
    req.options.one_fidelity = u.get<bool>();
  }
  if (body.contains("mode")) {
    const Json& m = body["mode"];
    if (!m.is_string() || (m.get<std::string>() != "sync" && m.get<std::string>() != "async"))
      throw InvalidInput("mode", "must be \"sync\" (answer now when small enough) or \"async\" (always a job)");
    req.async = m.get<std::string>() == "async";
  }
  if (body.contains("outputs")) {
    const Json& o = body["outputs"];
    if (!o.is_array()) throw InvalidInput("outputs", "must be an array of output names");
    for (size_t i = 0; i < o.size(); ++i) {
      const std::string path = "outputs[" + std::to_string(i) + "]";
      if (!o[i].is_string()) throw InvalidInput(path, "must be an output name (a string)");
      size_t k = 0;
      while (k < t.outputs.size() && t.outputs[k].name != o[i].get<std::string>()) ++k;
      if (k == t.outputs.size()) throw InvalidInput(path, "the twin has no output '" + o[i].get<std::string>() + "'");
      for (size_t seen : req.outputs)
        if (seen == k) throw InvalidInput(path, "output '" + t.outputs[k].name + "' is listed twice");
      req.outputs.push_back(k);
    }
  }
  // The surrogate only answers inside the bounds; FEM answers any physical value.
  const auto bounds = req.options.fidelity == Fidelity::fem ? spec::ScenarioBounds::physical : spec::ScenarioBounds::declared;
  req.scenarios = spec::parse_scenario_list(t, body["scenarios"], bounds);
  return req;
}

}  // namespace doppel::api
