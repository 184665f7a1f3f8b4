// The server configuration (server.json).
#include "api/config.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel;
  try {
    api::parse_server_config(fuzz::text(data, size), "/nonexistent", "server.json");
  } catch (const InvalidInput&) {
  }
  return 0;
}
