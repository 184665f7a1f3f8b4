#include "spec/json_reader.hpp"

#include <algorithm>
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

namespace {

// Line and column (1-based) of byte `offset` of `text`.
std::pair<size_t, size_t> line_column(const std::string& text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < std::min(offset, text.size()); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

// Where a parse failed: a SAX pass that keeps the JSON path of the value being read.
class Locator : public nlohmann::json_sax<Json> {
 public:
  std::string path() const {
    std::string p;
    for (const Frame& f : frames_) p = f.array ? index_path(p, f.index) : f.key.empty() ? p : join_path(p, f.key);
    return p;
  }
  size_t position = 0;
  std::string token, reason;
  int id = 0;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    frames_.push_back({false, 0, ""});
    return true;
  }
  bool key(string_t& k) override {
    frames_.back().key = k;
    return true;
  }
  bool end_object() override {
    frames_.pop_back();
    return value();
  }
  bool start_array(std::size_t) override {
    frames_.push_back({true, 0, ""});
    return true;
  }
  bool end_array() override {
    frames_.pop_back();
    return value();
  }
  bool parse_error(std::size_t at, const std::string& last_token, const nlohmann::detail::exception& ex) override {
    position = at;
    token = last_token;
    id = ex.id;
    reason = ex.what();
    return false;
  }

 private:
  struct Frame {
    bool array;
    size_t index;
    std::string key;
  };
  bool value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  std::vector<Frame> frames_;
};

}  // namespace

Json parse_json_document(const std::string& text, const std::string& what, size_t max_depth) {
  // Depth first, on the bytes: strings skipped, brackets counted.
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        const auto [line, column] = line_column(text, i);
        throw InvalidInput("", what + " nests deeper than " + std::to_string(max_depth) + " levels (line " + std::to_string(line) +
                                   ", column " + std::to_string(column) + ")");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception&) {
  }
  Locator where;
  Json::sax_parse(text, &where);
  // position is just past the offending token: point at its first character (a token holding
  // control characters is written <U+XXXX>, not as its bytes: point at its last byte then).
  const bool raw_token = where.token.find("<U+") == std::string::npos;
  const size_t start = raw_token && where.position >= where.token.size() ? where.position - where.token.size()
                                                                         : where.position > 0 ? where.position - 1 : 0;
  const auto [line, column] = line_column(text, start);
  std::string reason = where.reason;
  if (where.id == 406) {
    reason = "the number " + where.token + " is beyond the range of a double (about 1.8e308)";
  } else {
    const auto colon = reason.find(": ", reason.find("column"));
    if (reason.find("column") != std::string::npos && colon != std::string::npos) reason = reason.substr(colon + 2);
    else if (const auto bracket = reason.find("] "); bracket != std::string::npos) reason = reason.substr(bracket + 2);
  }
  throw InvalidInput(where.path(), what + " is not valid JSON at line " + std::to_string(line) + ", column " +
                                       std::to_string(column) + ": " + reason);
}

void require_regular_file(const std::filesystem::path& file, const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(file, ec);
  if (ec || st.type() == fs::file_type::not_found) throw InvalidInput(path, what + " not found: " + file.string());
  if (st.type() == fs::file_type::directory) throw InvalidInput(path, what + " " + file.string() + " is a directory, not a file");
  if (st.type() != fs::file_type::regular)
    throw InvalidInput(path, what + " " + file.string() + " is not a regular file (a FIFO, device or socket cannot be read as one)");
  std::ifstream in(file, std::ios::binary);
  if (!in.good()) throw InvalidInput(path, "cannot read " + what + " " + file.string() + " (permissions?)");
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
