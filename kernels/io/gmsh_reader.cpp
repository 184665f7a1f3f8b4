#include "kernels/io/gmsh_reader.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "spec/errors.hpp"
#include "spec/json_reader.hpp"

namespace doppel {
namespace {

struct RawElement {
  int type;
  std::vector<int> physical;  // physical tags (may be empty)
  std::vector<long> nodes;    // node tags
};

const char* element_type_name(int type) {
  switch (type) {
    case 1: return "2-node line";
    case 2: return "3-node triangle";
    case 3: return "4-node quadrangle";
    case 4: return "4-node tetrahedron";
    case 5: return "8-node hexahedron";
    case 6: return "6-node prism";
    case 7: return "5-node pyramid";
    case 8: return "3-node line";
    case 9: return "6-node triangle";
    case 10: return "9-node quadrangle";
    case 11: return "10-node tetrahedron";
    case 15: return "1-node point";
    case 16: return "8-node quadrangle";
    case 17: return "20-node hexahedron";
    default: return "element";
  }
}

// Element dimension and node count for the types we read; -1 for unsupported types.
int type_dim(int type) {
  switch (type) {
    case 15: return 0;
    case 1: case 8: return 1;
    case 2: case 9: return 2;
    case 4: case 11: return 3;
    case 3: case 10: case 16: return 2;  // quadrangles: dimension known, type unsupported
    case 5: case 6: case 7: case 17: return 3;
    default: return -1;
  }
}
int type_nodes(int type) {
  switch (type) {
    case 15: return 1;
    case 1: return 2;
    case 8: return 3;
    case 2: return 3;
    case 9: return 6;
    case 4: return 4;
    case 11: return 10;
    case 3: return 4;
    case 10: return 9;
    case 16: return 8;
    case 5: return 8;
    case 6: return 6;
    case 7: return 5;
    case 17: return 20;
    default: return -1;
  }
}
bool supported(int type) {
  return type == 15 || type == 1 || type == 8 || type == 2 || type == 9 || type == 4 ||
         type == 11;
}

// The file's words, with the line each came from: every error names the file's line.
class Tokens {
 public:
  Tokens(const std::string& text, std::string path) : text_(text), path_(std::move(path)) {}
  std::string word() {
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end of file");
    word_line_ = line_;
    const size_t start = pos_;
    while (pos_ < text_.size() && !std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  long integer() {
    const std::string w = word();
    try {
      size_t used = 0;
      long v = std::stol(w, &used);
      if (used == w.size()) return v;
    } catch (const std::exception&) {
    }
    fail("expected an integer, found \"" + w + "\"");
  }
  // An integer that fits an int (dimensions, tags, types).
  int small_integer() {
    const long v = integer();
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
      fail("the integer " + std::to_string(v) + " is out of range here");
    return static_cast<int>(v);
  }
  // A count of `what`, each taking at least `min_words` words of the file: refused when
  // negative or when the rest of the file cannot hold that many (before anything is allocated).
  long count(const std::string& what, long min_words) {
    const long n = integer();
    if (n < 0) fail("a count of " + what + " cannot be negative (" + std::to_string(n) + ")");
    const long left = static_cast<long>((text_.size() - pos_) / 2);  // a word and a separator each
    if (min_words > 0 && n > left / min_words)
      fail("declares " + std::to_string(n) + " " + what + ", more than the rest of the file can hold (" +
           std::to_string(text_.size() - pos_) + " bytes)");
    return n;
  }
  double real() {
    const std::string w = word();
    try {
      size_t used = 0;
      double v = std::stod(w, &used);
      if (used == w.size() && std::isfinite(v)) return v;
    } catch (const std::exception&) {
    }
    fail("expected a finite number, found \"" + w + "\"");
  }
  // A coordinate: finite and within 1e12 (m or whatever the unit: beyond it products of
  // coordinates in the element maps lose every digit, or overflow).
  double coordinate() {
    const double v = real();
    if (std::fabs(v) > 1e12) fail("the coordinate " + std::to_string(v) + " lies beyond 1e12");
    return v;
  }
  std::string rest_of_line() {
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
    return text_.substr(start, pos_ - start);
  }
  void expect(const std::string& w) {
    const std::string got = word();
    if (got != w) fail("expected " + w + ", found \"" + got + "\"");
  }
  void skip_section(const std::string& name) {
    const std::string end = "$End" + name.substr(1);
    const size_t opened = word_line_;
    for (skip_space(); pos_ < text_.size(); skip_space())
      if (word() == end) return;
    word_line_ = opened;
    fail("section " + name + " has no " + end);
  }
  bool next_section(std::string& name) {
    skip_space();
    if (pos_ >= text_.size()) return false;
    name = word();
    return true;
  }
  [[noreturn]] void fail(const std::string& msg) const {
    throw InvalidInput(path_, "Gmsh file, line " + std::to_string(word_line_) + ": " + msg);
  }
  // An error found after reading (duplicate tags, undefined nodes): no line to name.
  [[noreturn]] void fail_whole(const std::string& msg) const { throw InvalidInput(path_, "Gmsh file: " + msg); }

 private:
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) {
      if (text_[pos_] == '\n') ++line_;
      ++pos_;
    }
  }
  const std::string& text_;
  std::string path_;
  size_t pos_ = 0, line_ = 1, word_line_ = 1;
};

struct RawMesh {
  std::map<std::pair<int, int>, std::string> physical_names;  // (dim, tag) -> name
  std::vector<long> node_tags;
  std::vector<double> coords;
  std::vector<RawElement> elements;
};

void read_physical_names(Tokens& t, RawMesh& raw) {
  const long n = t.count("physical names", 3);
  for (long i = 0; i < n; ++i) {
    const int dim = t.small_integer();
    const int tag = t.small_integer();
    std::string name = t.rest_of_line();
    const auto a = name.find('"');
    const auto b = name.rfind('"');
    if (a == std::string::npos || b == a) t.fail("physical name without quotes");
    raw.physical_names[{dim, tag}] = name.substr(a + 1, b - a - 1);
  }
  t.expect("$EndPhysicalNames");
}

void read_v2(Tokens& t, RawMesh& raw, const std::string& first_section) {
  std::string section = first_section;
  do {
    if (section == "$PhysicalNames") {
      read_physical_names(t, raw);
    } else if (section == "$Nodes") {
      const long n = t.count("nodes", 4);
      raw.node_tags.reserve(static_cast<size_t>(n));
      raw.coords.reserve(3 * static_cast<size_t>(n));
      for (long i = 0; i < n; ++i) {
        raw.node_tags.push_back(t.integer());
        for (int d = 0; d < 3; ++d) raw.coords.push_back(t.coordinate());
      }
      t.expect("$EndNodes");
    } else if (section == "$Elements") {
      const long n = t.count("elements", 4);
      for (long i = 0; i < n; ++i) {
        t.integer();  // element tag
        RawElement e;
        e.type = t.small_integer();
        const long ntags = t.count("element tags", 1);
        for (long k = 0; k < ntags; ++k) {
          const long tag = t.integer();
          if (k == 0 && tag != 0) {
            if (tag < std::numeric_limits<int>::min() || tag > std::numeric_limits<int>::max())
              t.fail("the physical tag " + std::to_string(tag) + " is out of range");
            e.physical.push_back(static_cast<int>(tag));
          }
        }
        const int nn = type_nodes(e.type);
        if (nn < 0) t.fail("unsupported element type " + std::to_string(e.type));
        for (int k = 0; k < nn; ++k) e.nodes.push_back(t.integer());
        raw.elements.push_back(std::move(e));
      }
      t.expect("$EndElements");
    } else if (section.rfind("$", 0) == 0) {
      t.skip_section(section);
    } else {
      t.fail("unexpected token \"" + section + "\"");
    }
  } while (t.next_section(section));
}

void read_v4(Tokens& t, RawMesh& raw, const std::string& first_section) {
  std::map<std::pair<int, int>, std::vector<int>> entity_physicals;  // (dim, tag) -> physicals
  std::string section = first_section;
  do {
    if (section == "$PhysicalNames") {
      read_physical_names(t, raw);
    } else if (section == "$Entities") {
      long counts[4];
      for (long& c : counts) c = t.count("entities", 5);
      for (int dim = 0; dim < 4; ++dim) {
        for (long i = 0; i < counts[dim]; ++i) {
          const int tag = t.small_integer();
          const int nbox = dim == 0 ? 3 : 6;
          for (int k = 0; k < nbox; ++k) t.real();
          const long nphys = t.count("physical tags", 1);
          std::vector<int> phys;
          for (long k = 0; k < nphys; ++k) phys.push_back(t.small_integer());
          entity_physicals[{dim, tag}] = phys;
          if (dim > 0) {
            const long nb = t.count("bounding entities", 1);
            for (long k = 0; k < nb; ++k) t.integer();
          }
        }
      }
      t.expect("$EndEntities");
    } else if (section == "$Nodes") {
      const long blocks = t.count("node blocks", 4);
      const long total = t.count("nodes", 4);
      t.integer();
      t.integer();
      raw.node_tags.reserve(static_cast<size_t>(total));
      raw.coords.reserve(3 * static_cast<size_t>(total));
      for (long b = 0; b < blocks; ++b) {
        const long edim = t.integer();
        if (edim < 0 || edim > 3) t.fail("entity dimension " + std::to_string(edim) + " is not 0, 1, 2 or 3");
        t.integer();  // entity tag
        const long parametric = t.integer();
        const long n = t.count("nodes in the block", 4);
        for (long i = 0; i < n; ++i) raw.node_tags.push_back(t.integer());
        for (long i = 0; i < n; ++i) {
          for (int d = 0; d < 3; ++d) raw.coords.push_back(t.coordinate());
          if (parametric) for (long k = 0; k < edim; ++k) t.real();
        }
      }
      t.expect("$EndNodes");
    } else if (section == "$Elements") {
      const long blocks = t.count("element blocks", 4);
      t.count("elements", 2);
      t.integer();
      t.integer();
      for (long b = 0; b < blocks; ++b) {
        const int edim = t.small_integer();
        const int etag = t.small_integer();
        const int type = t.small_integer();
        const long n = t.count("elements in the block", 2);
        const int nn = type_nodes(type);
        if (nn < 0) t.fail("unsupported element type " + std::to_string(type));
        auto it = entity_physicals.find({edim, etag});
        const std::vector<int> phys = it == entity_physicals.end() ? std::vector<int>{} : it->second;
        for (long i = 0; i < n; ++i) {
          t.integer();  // element tag
          RawElement e;
          e.type = type;
          e.physical = phys;
          for (int k = 0; k < nn; ++k) e.nodes.push_back(t.integer());
          raw.elements.push_back(std::move(e));
        }
      }
      t.expect("$EndElements");
    } else if (section.rfind("$", 0) == 0) {
      t.skip_section(section);
    } else {
      t.fail("unexpected token \"" + section + "\"");
    }
  } while (t.next_section(section));
}

std::string group_name(const RawMesh& raw, int dim, int tag) {
  auto it = raw.physical_names.find({dim, tag});
  return it != raw.physical_names.end() ? it->second : std::to_string(tag);
}

}  // namespace

Mesh parse_gmsh(const std::string& text, const std::string& path) {
  Tokens t(text, path);
  std::string section;
  if (!t.next_section(section) || section != "$MeshFormat") t.fail("does not start with $MeshFormat");
  const std::string version = t.word();
  const long file_type = t.integer();
  t.integer();  // data size
  if (file_type != 0) t.fail("binary MSH files are not supported; save the mesh as ASCII");
  t.expect("$EndMeshFormat");
  RawMesh raw;
  const bool v2 = version.rfind("2.", 0) == 0;
  const bool v41 = version == "4.1";
  if (!v2 && !v41) t.fail("MSH version " + version + " is not supported (use 2.2 or 4.1)");
  if (!t.next_section(section)) t.fail("no $Nodes section");
  if (v2) read_v2(t, raw, section);
  else read_v4(t, raw, section);

  DOPPEL_VERIFY(!raw.node_tags.empty(), path, "the mesh has no nodes");
  int max_dim = -1;
  for (const auto& e : raw.elements) {
    const int d = type_dim(e.type);
    if (d < 0) t.fail_whole("unsupported element type " + std::to_string(e.type));
    max_dim = std::max(max_dim, d);
  }
  DOPPEL_VERIFY(max_dim >= 2, path, "the mesh has no triangles or tetrahedra (no cells)");
  for (const auto& e : raw.elements) {
    const int d = type_dim(e.type);
    if ((d == max_dim || d == max_dim - 1) && !supported(e.type))
      t.fail_whole(std::string("unsupported element type ") + std::to_string(e.type) + " (" +
             element_type_name(e.type) +
             "); doppel reads 3/6-node triangles and 4/10-node tetrahedra");
  }

  Mesh m;
  m.dim = max_dim;
  std::unordered_map<long, int> node_index;
  node_index.reserve(raw.node_tags.size());
  for (size_t i = 0; i < raw.node_tags.size(); ++i) {
    if (!node_index.emplace(raw.node_tags[i], static_cast<int>(i)).second)
      t.fail_whole("node tag " + std::to_string(raw.node_tags[i]) + " appears twice");
  }
  m.coords = raw.coords;
  if (m.dim == 2)
    for (size_t i = 0; i < m.num_nodes(); ++i)
      DOPPEL_VERIFY(std::fabs(m.coords[i * 3 + 2]) <= 1e-12 * (1 + std::fabs(m.coords[i * 3])), path,
                    "a 2D mesh must lie in the plane z = 0");

  int cell_type = -1;
  std::map<int, int> region_of_tag, boundary_of_tag;
  int untagged_region = -1;
  for (const auto& e : raw.elements) {
    const int d = type_dim(e.type);
    if (d != m.dim) continue;
    if (cell_type < 0) cell_type = e.type;
    if (e.type != cell_type)
      t.fail_whole(std::string("mixed cell types (") + element_type_name(cell_type) + " and " +
             element_type_name(e.type) + "); use one element order throughout");
    if (e.physical.size() > 1)
      t.fail_whole("a cell belongs to several physical groups; each cell needs exactly one region");
    int region = 0;
    if (e.physical.empty()) {
      if (untagged_region < 0) {
        untagged_region = static_cast<int>(m.region_names.size());
        m.region_names.push_back("domain");
      }
      region = untagged_region;
    } else {
      auto it = region_of_tag.find(e.physical[0]);
      if (it == region_of_tag.end()) {
        const std::string name = group_name(raw, m.dim, e.physical[0]);
        it = region_of_tag.emplace(e.physical[0], static_cast<int>(m.region_names.size())).first;
        m.region_names.push_back(name);
      }
      region = it->second;
    }
    for (long tag : e.nodes) {
      auto it = node_index.find(tag);
      if (it == node_index.end()) t.fail_whole("an element refers to undefined node " + std::to_string(tag));
      m.cells.push_back(it->second);
    }
    m.cell_region.push_back(region);
  }
  // Names must be unique: a region named like the fallback "domain" would be ambiguous.
  for (size_t i = 0; i < m.region_names.size(); ++i)
    for (size_t j = i + 1; j < m.region_names.size(); ++j)
      DOPPEL_VERIFY(m.region_names[i] != m.region_names[j], path,
                    "two cell groups are both named '" + m.region_names[i] + "'");
  m.cell_type = cell_type == 2 ? CellType::tri3 : cell_type == 9 ? CellType::tri6
              : cell_type == 4 ? CellType::tet4 : CellType::tet10;
  const int want_facet = m.dim == 2 ? (m.order() == 1 ? 1 : 8) : (m.order() == 1 ? 2 : 9);
  for (const auto& e : raw.elements) {
    if (type_dim(e.type) != m.dim - 1 || e.physical.empty()) continue;
    if (e.type != want_facet)
      t.fail_whole(std::string("boundary element type ") + element_type_name(e.type) +
             " does not match the cells (" + element_type_name(cell_type) + ")");
    for (int tag : e.physical) {
      auto it = boundary_of_tag.find(tag);
      if (it == boundary_of_tag.end()) {
        it = boundary_of_tag.emplace(tag, static_cast<int>(m.boundary_names.size())).first;
        m.boundary_names.push_back(group_name(raw, m.dim - 1, tag));
      }
      for (long nt : e.nodes) {
        auto ni = node_index.find(nt);
        if (ni == node_index.end()) t.fail_whole("an element refers to undefined node " + std::to_string(nt));
        m.facets.push_back(ni->second);
      }
      m.facet_boundary.push_back(it->second);
    }
  }
  // Drop nodes no cell uses (geometry points, unused mid nodes) and renumber.
  std::vector<int> used(m.num_nodes(), -1);
  int next = 0;
  for (int& v : m.cells) {
    if (used[static_cast<size_t>(v)] < 0) used[static_cast<size_t>(v)] = next++;
  }
  for (int v : m.facets)
    DOPPEL_VERIFY(used[static_cast<size_t>(v)] >= 0, path,
                  "a boundary element uses a node that no cell uses");
  std::vector<double> coords(static_cast<size_t>(next) * 3);
  for (size_t i = 0; i < used.size(); ++i)
    if (used[i] >= 0)
      for (int d = 0; d < 3; ++d) coords[static_cast<size_t>(used[i]) * 3 + d] = m.coords[i * 3 + d];
  m.coords.swap(coords);
  for (int& v : m.cells) v = used[static_cast<size_t>(v)];
  for (int& v : m.facets) v = used[static_cast<size_t>(v)];
  attach_facets(m, path);
  validate_mesh(m, path);
  return m;
}

Mesh read_gmsh(const std::filesystem::path& file, const std::string& path) {
  spec::require_regular_file(file, path, "mesh file");
  std::ifstream in(file);
  DOPPEL_VERIFY(in.good(), path, "cannot open " + file.string());
  std::ostringstream s;
  s << in.rdbuf();
  return parse_gmsh(s.str(), path);
}

}  // namespace doppel
