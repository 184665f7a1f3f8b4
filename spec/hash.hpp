// FNV-1a 64-bit hashing and its 16-hex-digit form: the content hash of twin definitions and
// the mesh hash of surrogate bundles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace doppel::spec {

inline constexpr uint64_t kFnvOffset = 1469598103934665603ULL;

inline uint64_t fnv1a(const void* data, size_t bytes, uint64_t h = kFnvOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

inline uint64_t fnv1a(const std::string& data, uint64_t h = kFnvOffset) { return fnv1a(data.data(), data.size(), h); }

std::string hex64(uint64_t h);

}  // namespace doppel::spec
