// Request bodies and what the service reads from them: the JSON object of every route's body
// (depth, syntax, numbers, unknown keys), a scenario request against a fixed twin (the plate of
// tests/fuzz/plate.json), and RFC 3339 times as readings carry them.
#include <fstream>
#include <sstream>

#include "api/request_body.hpp"
#include "fuzz_common.hpp"
#include "spec/time.hpp"
#include "spec/twin_spec.hpp"

namespace {
const doppel::spec::TwinSpec& plate() {
  static const doppel::spec::TwinSpec twin = doppel::spec::load_twin(DOPPEL_FUZZ_DATA_DIR "/plate.json");
  return twin;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel;
  const std::string body = fuzz::text(data, size);
  try {
    const auto j = api::parse_body_object(body, {"scenarios", "readings", "fidelity", "tolerance", "mode", "outputs"});
    if (j.contains("scenarios")) spec::parse_scenarios(plate(), body);
  } catch (const InvalidInput&) {
  }
  spec::parse_rfc3339(body.substr(0, 64));
  return 0;
}
