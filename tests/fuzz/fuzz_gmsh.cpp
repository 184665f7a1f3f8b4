// The Gmsh MSH 2.2 / 4.1 reader, and the mesh checks after it.
#include "fuzz_common.hpp"
#include "kernels/io/gmsh_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doppel;
  try {
    parse_gmsh(fuzz::text(data, size), "mesh.file");
  } catch (const InvalidInput&) {
  }
  return 0;
}
