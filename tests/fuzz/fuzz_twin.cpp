// The twin definition parser, then the model built from it when its generated mesh is small
// (a fuzzed twin may ask for millions of cells: that is a valid twin, only a slow input).
#include "fuzz_common.hpp"
#include "kernels/fem/fem_model.hpp"
#include "spec/twin_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel;
  try {
    spec::TwinSpec twin = spec::parse_twin(fuzz::text(data, size), DOPPEL_FUZZ_DATA_DIR);
    if (twin.mesh.kind == spec::MeshSpec::Kind::file) return 0;
    double nodes = 1;
    for (int c : twin.mesh.cells) nodes *= twin.mesh.order * c + 1.0;
    if (nodes > 4000) return 0;
    const FemModel model(std::move(twin));
  } catch (const InvalidInput&) {
  }
  return 0;
}
