// NumPy .npy files (format version 1.0, little-endian, C order): the array format of model
// bundles and benchmark exports, readable with numpy.load.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace doppel {

void write_npy(const std::string& path, const double* data, const std::vector<size_t>& shape);
void write_npy(const std::string& path, const float* data, const std::vector<size_t>& shape);
void write_npy(const std::string& path, const int* data, const std::vector<size_t>& shape);

struct NpyArray {
  std::vector<size_t> shape;
  std::vector<double> values;  // converted from the stored type (<f8, <f4, <i4, <i8)
  size_t size() const { return values.size(); }
};

// Reads an array; throws InvalidInput naming the file on a malformed or unsupported file.
NpyArray read_npy(const std::string& path);

}  // namespace doppel
