// libFuzzer targets (tests/fuzz, built by scripts/fuzz with clang, ASan and UBSan): each feeds
// the bytes to one parser of what users send doppel. The contract under test: bad input is an
// InvalidInput naming where it is, never a crash, a hang, a sanitizer report or any other
// exception (an exception escaping here ends the run and libFuzzer reports it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "spec/errors.hpp"

namespace doppel::fuzz {

inline std::string text(const uint8_t* data, size_t size) { return std::string(reinterpret_cast<const char*>(data), size); }

}  // namespace doppel::fuzz
