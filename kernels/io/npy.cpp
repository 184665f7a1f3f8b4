#include "kernels/io/npy.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <regex>

#include "spec/errors.hpp"

namespace doppel {
namespace {

template <typename T>
void write_impl(const std::string& path, const T* data, const std::vector<size_t>& shape,
                const char* descr) {
  std::string dims;
  size_t count = 1;
  for (size_t d : shape) {
    dims += std::to_string(d) + ", ";
    count *= d;
  }
  if (shape.size() > 1) dims.erase(dims.size() - 2);
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  DOPPEL_VERIFY(out.good(), path, "cannot write the file");
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
  DOPPEL_VERIFY(out.good(), path, "failed writing the file");
}

template <typename T>
void convert(const std::string& bytes, size_t offset, size_t count, std::vector<double>& out) {
  out.resize(count);
  for (size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, bytes.data() + offset + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(v);
  }
}

}  // namespace

void write_npy(const std::string& path, const double* data, const std::vector<size_t>& shape) {
  write_impl(path, data, shape, "<f8");
}
void write_npy(const std::string& path, const float* data, const std::vector<size_t>& shape) {
  write_impl(path, data, shape, "<f4");
}
void write_npy(const std::string& path, const int* data, const std::vector<size_t>& shape) {
  write_impl(path, data, shape, "<i4");
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DOPPEL_VERIFY(in.good(), path, "cannot open the file");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  DOPPEL_VERIFY(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, path, "not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    start = 10;
  } else {
    DOPPEL_VERIFY(bytes.size() >= 12, path, "truncated .npy header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    start = 12;
  }
  DOPPEL_VERIFY(bytes.size() >= start + header_len, path, "truncated .npy header");
  const std::string header = bytes.substr(start, header_len);
  std::smatch m;
  DOPPEL_VERIFY(std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'")), path, "no dtype in the .npy header");
  const std::string descr = m[1];
  DOPPEL_VERIFY(!std::regex_search(header, std::regex("'fortran_order':\\s*True")), path,
                "Fortran-ordered arrays are not supported");
  DOPPEL_VERIFY(std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")), path, "no shape in the .npy header");
  NpyArray a;
  size_t count = 1;
  const std::string dims = m[1];
  std::regex number("[0-9]+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it) {
    a.shape.push_back(std::stoul(it->str()));
    count *= a.shape.back();
  }
  const size_t offset = start + header_len;
  size_t item = 0;
  if (descr == "<f8") item = 8;
  else if (descr == "<f4") item = 4;
  else if (descr == "<i4") item = 4;
  else if (descr == "<i8") item = 8;
  else throw InvalidInput(path, "unsupported .npy dtype '" + descr + "' (expected <f8, <f4, <i4 or <i8)");
  DOPPEL_VERIFY(bytes.size() - offset == count * item, path,
                "holds " + std::to_string(bytes.size() - offset) + " data bytes, the shape needs " +
                    std::to_string(count * item));
  if (descr == "<f8") convert<double>(bytes, offset, count, a.values);
  else if (descr == "<f4") convert<float>(bytes, offset, count, a.values);
  else if (descr == "<i4") convert<int32_t>(bytes, offset, count, a.values);
  else convert<int64_t>(bytes, offset, count, a.values);
  return a;
}

}  // namespace doppel
