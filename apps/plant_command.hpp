// `doppel plant`: the virtual plant of DESIGN.md. It plays the physical asset: its own
// finite-element model with hidden true values of the latent and load parameters that drift,
// sensor readings with the declared noise, a scripted sensor fault and a dropout, advancing in
// simulated time. It posts readings to the server and applies the desired controls it reads
// back (then reports them), and can write its hidden truth for tests to compare with.
#pragma once

#include <string>
#include <vector>

namespace doppel::app {

struct PlantArgs {
  std::string twin;
  std::string server = "http://127.0.0.1:8080";
  std::string token;         // bearer token (ingest and read)
  unsigned long seed = 1;
  double speed = 1;          // simulated seconds per wall second
  double duration = 3600;    // simulated seconds
  double step = 60;          // simulated seconds between readings
  double drift = 0.02;       // hidden parameters' random walk: per sqrt(hour), fraction of the range
  std::string truth;         // NDJSON of the hidden truth, one line per step
  std::string fault = "auto";    // SENSOR[:FROM:TO[:OFFSET]] (seconds from the start), "auto" or "none"
  std::string dropout = "auto";  // SENSOR[:FROM:TO], "auto" or "none"
  std::vector<std::string> sets;  // NAME=VALUE: the hidden truth's starting value (controls: the setting until one is desired)
  std::string start;         // RFC 3339 start of simulated time (default: now, minus the duration when faster than real time)
  bool quiet = false;
};

int run_plant(const PlantArgs& args);

}  // namespace doppel::app
