// The body of POST /v1/twins/{id}/scenarios as native structs, checked field by field. Used
// when the request arrives and again when a stored job is resumed after a restart.
#pragma once

#include <string>
#include <vector>

#include "surrogate/fidelity.hpp"

namespace doppel::api {

struct ScenarioRequest {
  std::vector<spec::Scenario> scenarios;
  std::vector<size_t> outputs;  // indices into the twin's outputs (empty: all)
  AnswerOptions options;        // fidelity and tolerance (batch options are the server's)
  bool async = false;           // "mode": "async" asks for a job whatever the size
};

// InvalidInput naming the field for anything malformed; HttpError 413 when the batch holds
// more than max_scenarios. Values outside the declared bounds pass only for fidelity "fem"
// (they must still be physical). has_surrogate: the twin has a bundle (default fidelity auto).
ScenarioRequest parse_scenario_request(const FemModel& model, bool has_surrogate, const std::string& body,
                                       size_t max_scenarios);

}  // namespace doppel::api
