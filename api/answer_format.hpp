// The JSON shape of answered scenarios, shared by `doppel solve` and the HTTP API: twin,
// scenarios (id, parameters, outputs, fidelity, error_estimate, and per fidelity spread /
// error_estimates / fallback / surrogate_estimate / solver), times.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "surrogate/fidelity.hpp"

namespace doppel::api {

// outputs: indices of the twin's outputs to include (empty: all).
nlohmann::ordered_json answers_json(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                                    const AnswerSet& set, const std::vector<size_t>& outputs = {});

}  // namespace doppel::api
