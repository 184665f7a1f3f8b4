// Path-tracking helpers for reading validated JSON (every failure names the JSON path), and
// writing the JSON documents doppel produces.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace doppel::spec {

using Json = nlohmann::json;

std::string json_type_name(const Json& j);
std::string join_path(const std::string& parent, const std::string& key);
std::string index_path(const std::string& parent, size_t index);

void require_object(const Json& j, const std::string& path);
void require_array(const Json& j, const std::string& path);
// Throws InvalidInput naming the first key of `j` not in `allowed`.
void require_known_keys(const Json& j, const std::string& path,
                        std::initializer_list<const char*> allowed);
const Json& require_key(const Json& j, const std::string& path, const char* key);
double read_finite(const Json& j, const std::string& path);
int read_int(const Json& j, const std::string& path);
std::string read_string(const Json& j, const std::string& path);
std::vector<double> read_number_array(const Json& j, const std::string& path, size_t min_size,
                                      size_t max_size);

// Writes text to a file; InvalidInput naming `option` (the command-line option that named the
// file) when it cannot be opened or written.
void write_text_file(const std::string& file, const std::string& text, const std::string& option);

}  // namespace doppel::spec
