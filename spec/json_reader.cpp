#include "spec/json_reader.hpp"

#include <cmath>
#include <fstream>

#include "spec/errors.hpp"

namespace doppel::spec {

std::string json_type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

std::string join_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string index_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

void require_object(const Json& j, const std::string& path) {
  DOPPEL_VERIFY(j.is_object(), path, "expected an object, got " + json_type_name(j));
}

void require_array(const Json& j, const std::string& path) {
  DOPPEL_VERIFY(j.is_array(), path, "expected an array, got " + json_type_name(j));
}

void require_known_keys(const Json& j, const std::string& path,
                        std::initializer_list<const char*> allowed) {
  require_object(j, path);
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      throw InvalidInput(join_path(path, it.key()),
                         "unknown key (allowed here: " + (list.empty() ? "none" : list) + ")");
    }
  }
}

const Json& require_key(const Json& j, const std::string& path, const char* key) {
  require_object(j, path);
  auto it = j.find(key);
  DOPPEL_VERIFY(it != j.end(), join_path(path, key), "is required");
  return *it;
}

double read_finite(const Json& j, const std::string& path) {
  // nlohmann parses NaN/Infinity only as strings; reject both spellings explicitly.
  DOPPEL_VERIFY(j.is_number(), path, "expected a number, got " + json_type_name(j));
  double v = j.get<double>();
  DOPPEL_VERIFY(std::isfinite(v), path, "must be a finite number");
  return v;
}

int read_int(const Json& j, const std::string& path) {
  DOPPEL_VERIFY(j.is_number_integer() ||
                    (j.is_number_float() && std::floor(j.get<double>()) == j.get<double>()),
                path, "expected an integer, got " + json_type_name(j));
  double v = j.get<double>();
  DOPPEL_VERIFY(std::fabs(v) < 2e9, path, "integer out of range");
  return static_cast<int>(v);
}

std::string read_string(const Json& j, const std::string& path) {
  DOPPEL_VERIFY(j.is_string(), path, "expected a string, got " + json_type_name(j));
  return j.get<std::string>();
}

std::vector<double> read_number_array(const Json& j, const std::string& path, size_t min_size,
                                      size_t max_size) {
  require_array(j, path);
  DOPPEL_VERIFY(j.size() >= min_size && j.size() <= max_size, path,
                min_size == max_size
                    ? "expected " + std::to_string(min_size) + " numbers"
                    : "expected " + std::to_string(min_size) + " to " + std::to_string(max_size) +
                          " numbers, got " + std::to_string(j.size()));
  std::vector<double> out;
  for (size_t i = 0; i < j.size(); ++i) out.push_back(read_finite(j[i], index_path(path, i)));
  return out;
}

void write_text_file(const std::string& file, const std::string& text, const std::string& option) {
  std::ofstream out(file);
  DOPPEL_VERIFY(out.good(), option, "cannot write " + file);
  out << text;
  out.flush();
  DOPPEL_VERIFY(out.good(), option, "failed writing " + file);
}

}  // namespace doppel::spec
