// Path-tracking helpers for reading validated JSON (every failure names the JSON path), and
// writing the JSON documents doppel produces.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace doppel::spec {

using Json = nlohmann::json;

// Parses a JSON document from a user (a twin, a scenario file, a server config, a request
// body). Nesting deeper than max_depth is refused before parsing (nothing recursive ever sees
// it); a syntax error or a number beyond double's range is an InvalidInput whose path is the
// JSON path where it happened ("parameters.h.default") and whose message gives `what`, the line
// and column, and the reason in words.
Json parse_json_document(const std::string& text, const std::string& what, size_t max_depth = 64);

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

// InvalidInput naming `path` unless `file` is a regular file that can be read: a directory, a
// FIFO, a device (/dev/zero) or a socket is named as what it is (reading one would block or
// never end), a missing file as missing.
void require_regular_file(const std::filesystem::path& file, const std::string& path, const std::string& what = "file");

// Writes text to a file; InvalidInput naming `option` (the command-line option that named the
// file) when it cannot be opened or written.
void write_text_file(const std::string& file, const std::string& text, const std::string& option);

}  // namespace doppel::spec
