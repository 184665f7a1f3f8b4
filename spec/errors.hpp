// Typed errors thrown by doppel library code. One base class, one subclass per kind of
// failure, so that the command line and the HTTP layer map them to exit codes / status codes
// in one place.
#pragma once

#include <stdexcept>
#include <string>

namespace doppel {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Bad input from a user: twin.json, a scenario file, a mesh file, a command-line value.
// `path` names the offending field ("boundaries.xmax.thermal.h", "scenarios[3].parameters.h",
// "mesh.file") so the message can point at it.
class InvalidInput : public Error {
 public:
  InvalidInput(std::string path, const std::string& message)
      : Error(path.empty() ? message : path + ": " + message), path_(std::move(path)),
        detail_(message) {}
  const std::string& path() const noexcept { return path_; }
  const std::string& detail() const noexcept { return detail_; }

 private:
  std::string path_;
  std::string detail_;
};

// A backend that this build does not contain (e.g. CUDA in a host-only build).
class NotCompiled : public Error {
 public:
  explicit NotCompiled(const std::string& what)
      : Error(what + " is not compiled into this build of doppel") {}
};

// A failing device call (CUDA runtime, cuBLAS, ...). `context_lost`: the error is one CUDA
// keeps for the rest of the process (an illegal address, a kernel fault): no later call on that
// device can succeed and only a restart recovers. Otherwise (out of memory, a bad argument)
// the device stays usable.
class DeviceError : public Error {
 public:
  explicit DeviceError(const std::string& message, bool context_lost = false)
      : Error(message), context_lost_(context_lost) {}
  bool context_lost() const noexcept { return context_lost_; }

 private:
  bool context_lost_ = false;
};

// An iterative solver that did not reach its tolerance, or a factorization that failed.
class SolverDiverged : public Error {
 public:
  using Error::Error;
};

// A resource that is not available now (no GPU present, a service not ready).
class Unavailable : public Error {
 public:
  using Error::Error;
};

}  // namespace doppel

// Input checks: always on.
#define DOPPEL_VERIFY(cond, path, message)                 \
  do {                                                     \
    if (!(cond)) throw ::doppel::InvalidInput(path, message); \
  } while (0)

// Invariants: only in debug builds.
#ifndef NDEBUG
#include <cassert>
#define DOPPEL_ASSERT(cond) assert(cond)
#else
#define DOPPEL_ASSERT(cond) ((void)0)
#endif
