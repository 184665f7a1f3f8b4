#include "kernels/backend.hpp"

#include "spec/errors.hpp"

namespace doppel {

const char* backend_name(Backend b) { return b == Backend::cuda ? "cuda" : "cpu"; }

Backend select_backend(const std::string& choice, const std::string& path) {
  if (choice == "cpu") return Backend::host;
  if (choice == "auto")
    return cuda::solvers_available() && cuda::device_count() > 0 ? Backend::cuda : Backend::host;
  if (choice == "cuda") {
    if (!cuda::compiled()) throw NotCompiled("the CUDA backend");
    if (cuda::device_count() == 0) throw Unavailable(path + ": no CUDA device is present");
    if (!cuda::solvers_available())
      throw Unavailable(path + ": the CUDA finite-element solvers are not part of this version "
                               "yet; use --backend cpu or auto");
    return Backend::cuda;
  }
  throw InvalidInput(path, "must be auto, cpu or cuda (got \"" + choice + "\")");
}

}  // namespace doppel
