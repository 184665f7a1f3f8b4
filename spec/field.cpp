#include "spec/field.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "spec/errors.hpp"
#include "spec/json_reader.hpp"

namespace doppel::spec {

// ---------------------------------------------------------------------------------------
// Expressions: a small recursive-descent parser into a tree, evaluated by walking it.

namespace {

struct Node;
using NodePtr = std::shared_ptr<const Node>;

enum class Op { number, x, y, z, t, param, table, add, sub, mul, div, neg, pow, less, greater, less_eq,
                greater_eq, equal, not_equal, call1, call2, cond };

using Fn1 = double (*)(double);
using Fn2 = double (*)(double, double);

struct Node {
  Op op = Op::number;
  double value = 0;                              // number
  int parameter = -1;                            // param
  std::shared_ptr<const SpaceFunction> table;    // table
  Fn1 f1 = nullptr;
  Fn2 f2 = nullptr;
  std::string name;                              // function or parameter name (messages)
  std::vector<NodePtr> kids;
};

NodePtr make(Op op, std::vector<NodePtr> kids) {
  auto n = std::make_shared<Node>();
  n->op = op;
  n->kids = std::move(kids);
  return n;
}
NodePtr number(double v) {
  auto n = std::make_shared<Node>();
  n->value = v;
  return n;
}

double eval(const Node& n, const double* x) {
  auto k = [&](size_t i) { return eval(*n.kids[i], x); };
  switch (n.op) {
    case Op::number: return n.value;
    case Op::x: return x[0];
    case Op::y: return x[1];
    case Op::z: return x[2];
    case Op::t: return x[3];  // only in a time factor (evaluated with x = {0, 0, 0, t})
    case Op::param: break;  // never left in a shape (decompose() takes them out)
    case Op::table: return (*n.table)(x);
    case Op::add: return k(0) + k(1);
    case Op::sub: return k(0) - k(1);
    case Op::mul: return k(0) * k(1);
    case Op::div: return k(0) / k(1);
    case Op::neg: return -k(0);
    case Op::pow: return std::pow(k(0), k(1));
    case Op::less: return k(0) < k(1) ? 1.0 : 0.0;
    case Op::greater: return k(0) > k(1) ? 1.0 : 0.0;
    case Op::less_eq: return k(0) <= k(1) ? 1.0 : 0.0;
    case Op::greater_eq: return k(0) >= k(1) ? 1.0 : 0.0;
    case Op::equal: return k(0) == k(1) ? 1.0 : 0.0;
    case Op::not_equal: return k(0) != k(1) ? 1.0 : 0.0;
    case Op::call1: return n.f1(k(0));
    case Op::call2: return n.f2(k(0), k(1));
    case Op::cond: return k(0) != 0.0 ? k(1) : k(2);
  }
  return 0.0;
}

bool depends_on_position(const Node& n) {
  if (n.op == Op::x || n.op == Op::y || n.op == Op::z || n.op == Op::table) return true;
  for (const auto& k : n.kids)
    if (depends_on_position(*k)) return true;
  return false;
}

bool depends_on_time(const Node& n) {
  if (n.op == Op::t) return true;
  for (const auto& k : n.kids)
    if (depends_on_time(*k)) return true;
  return false;
}

// An expression's shape. A value that is not a finite number at a point (sqrt or log of a
// negative number, a division by zero somewhere on the mesh) is InvalidInput naming the field
// and the point, wherever it is evaluated (quadrature points, nodes).
class ExpressionFunction final : public SpaceFunction {
 public:
  ExpressionFunction(NodePtr root, std::string path) : root_(std::move(root)), path_(std::move(path)) {}
  double operator()(const double* x) const override {
    const double v = eval(*root_, x);
    if (!std::isfinite(v)) {
      std::ostringstream os;
      os << "is not a finite number at (" << x[0] << ", " << x[1] << ", " << x[2] << ") (it evaluates to " << v << ")";
      throw InvalidInput(path_, os.str());
    }
    return v;
  }

 private:
  NodePtr root_;
  std::string path_;
};

// A time factor: an expression of t alone, finite at every time it is read.
class ExpressionTime final : public TimeFunction {
 public:
  ExpressionTime(NodePtr root, std::string path) : root_(std::move(root)), path_(std::move(path)) {}
  double operator()(double t) const override {
    const double x[4] = {0, 0, 0, t};
    const double v = eval(*root_, x);
    if (!std::isfinite(v)) {
      std::ostringstream os;
      os << "is not a finite number at t = " << t << " s (its factor of t evaluates to " << v << ")";
      throw InvalidInput(path_, os.str());
    }
    return v;
  }

 private:
  NodePtr root_;
  std::string path_;
};

double sign(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; }
double heaviside(double v) { return v >= 0 ? 1.0 : 0.0; }
double min2(double a, double b) { return std::min(a, b); }
double max2(double a, double b) { return std::max(a, b); }

struct Function {
  const char* name;
  Fn1 f1;
  Fn2 f2;
};
const Function kFunctions[] = {
    {"sin", [](double v) { return std::sin(v); }, nullptr},
    {"cos", [](double v) { return std::cos(v); }, nullptr},
    {"tan", [](double v) { return std::tan(v); }, nullptr},
    {"asin", [](double v) { return std::asin(v); }, nullptr},
    {"acos", [](double v) { return std::acos(v); }, nullptr},
    {"atan", [](double v) { return std::atan(v); }, nullptr},
    {"sinh", [](double v) { return std::sinh(v); }, nullptr},
    {"cosh", [](double v) { return std::cosh(v); }, nullptr},
    {"tanh", [](double v) { return std::tanh(v); }, nullptr},
    {"exp", [](double v) { return std::exp(v); }, nullptr},
    {"log", [](double v) { return std::log(v); }, nullptr},
    {"log10", [](double v) { return std::log10(v); }, nullptr},
    {"sqrt", [](double v) { return std::sqrt(v); }, nullptr},
    {"abs", [](double v) { return std::fabs(v); }, nullptr},
    {"floor", [](double v) { return std::floor(v); }, nullptr},
    {"ceil", [](double v) { return std::ceil(v); }, nullptr},
    {"sign", sign, nullptr},
    {"step", heaviside, nullptr},
    {"atan2", nullptr, [](double a, double b) { return std::atan2(a, b); }},
    {"pow", nullptr, [](double a, double b) { return std::pow(a, b); }},
    {"min", nullptr, min2},
    {"max", nullptr, max2},
    {"hypot", nullptr, [](double a, double b) { return std::hypot(a, b); }},
};

class Parser {
 public:
  Parser(const std::string& text, std::string path, const std::vector<Parameter>* parameters)
      : s_(text), path_(std::move(path)), parameters_(parameters) {}

  NodePtr parse() {
    if (s_.size() > kMaxLength)
      throw InvalidInput(path_, "the expression is " + std::to_string(s_.size()) + " characters long; at most " +
                                    std::to_string(kMaxLength) + " are accepted");
    NodePtr n = comparison();
    skip();
    if (pos_ < s_.size()) fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return n;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InvalidInput(path_, "in the expression \"" + s_ + "\" at character " + std::to_string(pos_ + 1) + ": " + what);
  }
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool accept(const char* token) {
    skip();
    const size_t n = std::char_traits<char>::length(token);
    if (s_.compare(pos_, n, token) != 0) return false;
    pos_ += n;
    return true;
  }
  void expect(char c) {
    skip();
    if (pos_ >= s_.size() || s_[pos_] != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  // Nesting (parentheses, unary signs, powers, function calls) deeper than kMaxDepth is refused:
  // the parser, the decomposition and the evaluation all recurse once per level.
  static constexpr size_t kMaxLength = 4096;
  static constexpr int kMaxDepth = 400;  // about 200 parentheses (each costs two levels)
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~Nest() { --p.depth_; }
  };

  NodePtr comparison() {
    Nest nest(*this);
    NodePtr a = sum();
    struct { const char* tok; Op op; } ops[] = {{"<=", Op::less_eq}, {">=", Op::greater_eq}, {"==", Op::equal},
                                                {"!=", Op::not_equal}, {"<", Op::less}, {">", Op::greater}};
    for (const auto& o : ops)
      if (accept(o.tok)) return make(o.op, {a, sum()});
    return a;
  }
  NodePtr sum() {
    NodePtr a = product();
    for (;;) {
      if (accept("+")) a = make(Op::add, {a, product()});
      else if (accept("-")) a = make(Op::sub, {a, product()});
      else return a;
    }
  }
  NodePtr product() {
    NodePtr a = unary();
    for (;;) {
      if (accept("*")) a = make(Op::mul, {a, unary()});
      else if (accept("/")) a = make(Op::div, {a, unary()});
      else return a;
    }
  }
  NodePtr unary() {
    Nest nest(*this);
    if (accept("-")) return make(Op::neg, {unary()});
    if (accept("+")) return unary();
    return power();
  }
  NodePtr power() {
    NodePtr a = primary();
    if (accept("^")) return make(Op::pow, {a, unary()});  // right-associative; -x^2 = -(x^2)
    return a;
  }
  std::string name() {
    skip();
    const size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  NodePtr primary() {
    skip();
    if (pos_ >= s_.size()) fail("the expression ends too early");
    const char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      NodePtr n = comparison();
      expect(')');
      return n;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      // Decimal numbers only (digits, a point, an exponent): strtod alone would also take hex
      // ("0x10") and "inf"/"nan" spellings.
      auto digit = [&](size_t i) { return i < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i])); };
      size_t end = pos_;
      while (digit(end)) ++end;
      if (end < s_.size() && s_[end] == '.') ++end;
      while (digit(end)) ++end;
      if (end < s_.size() && (s_[end] == 'e' || s_[end] == 'E')) {
        size_t e = end + 1;
        if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
        if (digit(e)) {
          while (digit(e)) ++e;
          end = e;
        }
      }
      const std::string text = s_.substr(pos_, end - pos_);
      if (text == ".") fail("malformed number");
      const double v = std::strtod(text.c_str(), nullptr);
      if (!std::isfinite(v)) fail("the number " + text + " is too large");
      pos_ = end;
      return number(v);
    }
    if (c == '$') {
      ++pos_;
      const std::string n = name();
      if (n.empty()) fail("expected a parameter name after '$'");
      int index = -1;
      if (parameters_)
        for (size_t i = 0; i < parameters_->size(); ++i)
          if ((*parameters_)[i].name == n) index = static_cast<int>(i);
      if (index < 0) throw InvalidInput(path_, "references undefined parameter '" + n + "'");
      auto node = std::make_shared<Node>();
      node->op = Op::param;
      node->parameter = index;
      node->name = n;
      return node;
    }
    const size_t at = pos_;
    const std::string n = name();
    if (n.empty()) fail("unexpected '" + std::string(1, c) + "'");
    skip();
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      std::vector<NodePtr> args{comparison()};
      while (accept(",")) args.push_back(comparison());
      expect(')');
      auto node = std::make_shared<Node>();
      node->name = n;
      if (n == "if") {
        if (args.size() != 3) fail("if(condition, then, else) takes 3 arguments");
        node->op = Op::cond;
        node->kids = std::move(args);
        return node;
      }
      for (const auto& f : kFunctions) {
        if (n != f.name) continue;
        const size_t want = f.f1 ? 1 : 2;
        if (args.size() != want) fail(n + "() takes " + std::to_string(want) + " argument" + (want > 1 ? "s" : ""));
        node->op = f.f1 ? Op::call1 : Op::call2;
        node->f1 = f.f1;
        node->f2 = f.f2;
        node->kids = std::move(args);
        return node;
      }
      pos_ = at;
      fail("unknown function '" + n + "'");
    }
    if (n == "x") return make(Op::x, {});
    if (n == "y") return make(Op::y, {});
    if (n == "z") return make(Op::z, {});
    if (n == "t") return make(Op::t, {});
    if (n == "pi") return number(3.14159265358979323846);
    if (n == "e") return number(2.71828182845904523536);
    pos_ = at;
    fail("unknown name '" + n + "' (variables are x, y, z and, in a transient analysis, t; parameters are written $name)");
  }

  const std::string& s_;
  std::string path_;
  const std::vector<Parameter>* parameters_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// The expression as sum_k p_k shape_k(x) (key -1: the part without a parameter).
using Affine = std::map<int, NodePtr>;

const char* op_text(const Node& n) {
  switch (n.op) {
    case Op::pow: return "a power";
    case Op::call1:
    case Op::call2: return "a function";
    case Op::cond: return "if()";
    case Op::div: return "a denominator";
    default: return "a comparison";
  }
}

std::string first_parameter(const Affine& a, const std::vector<Parameter>& parameters) {
  for (const auto& [k, v] : a)
    if (k >= 0) return "$" + parameters[static_cast<size_t>(k)].name;
  return "";
}

Affine decompose(const NodePtr& n, const std::string& path, const std::vector<Parameter>& parameters,
                 bool transient) {
  auto rec = [&](const NodePtr& k) { return decompose(k, path, parameters, transient); };
  auto only_space = [&](const Affine& a, const Node& where) {
    if (a.size() == 1 && a.count(-1)) return;
    const std::string what = where.op == Op::call1 || where.op == Op::call2 ? where.name + "()" : op_text(where);
    throw InvalidInput(path, "is not affine in the parameters: " + first_parameter(a, parameters) + " appears inside " +
                                 what + " (a parameter may only multiply a function of x, y, z and t, or be added to one)");
  };
  switch (n->op) {
    case Op::number:
    case Op::x:
    case Op::y:
    case Op::z:
    case Op::table: return {{-1, n}};
    case Op::t:
      if (!transient) throw InvalidInput(path, "depends on t, but the analysis is steady");
      return {{-1, n}};
    case Op::param: return {{n->parameter, number(1.0)}};
    case Op::add:
    case Op::sub: {
      Affine a = rec(n->kids[0]);
      for (auto& [k, v] : rec(n->kids[1])) {
        auto it = a.find(k);
        if (it == a.end()) a[k] = n->op == Op::add ? v : make(Op::neg, {v});
        else it->second = make(n->op, {it->second, v});
      }
      return a;
    }
    case Op::neg: {
      Affine a = rec(n->kids[0]);
      for (auto& [k, v] : a) v = make(Op::neg, {v});
      return a;
    }
    case Op::mul: {
      Affine a = rec(n->kids[0]), b = rec(n->kids[1]);
      const bool a_space = a.size() == 1 && a.count(-1), b_space = b.size() == 1 && b.count(-1);
      if (!a_space && !b_space)
        throw InvalidInput(path, "is not affine in the parameters: " + first_parameter(a, parameters) + " multiplies " +
                                     first_parameter(b, parameters) +
                                     " (each term may hold one parameter as a factor)");
      const NodePtr s = a_space ? a[-1] : b[-1];
      Affine& other = a_space ? b : a;
      for (auto& [k, v] : other) v = make(Op::mul, {a_space ? s : v, a_space ? v : s});
      return other;
    }
    case Op::div: {
      Affine a = rec(n->kids[0]), b = rec(n->kids[1]);
      only_space(b, *n);
      for (auto& [k, v] : a) v = make(Op::div, {v, b[-1]});
      return a;
    }
    default: {
      for (const auto& k : n->kids) only_space(rec(k), *n);
      return {{-1, n}};
    }
  }
}

// A shape of x, y, z and t as a sum of products time_i(t) * space_i(x) (null: 1), exactly: sums
// and products distribute, a quotient divides by a function of t alone or of x, y, z alone, and
// every other operation (a function, a power, a comparison, if()) must take t alone or x, y, z
// alone. Otherwise InvalidInput naming where time and space meet.
using Pieces = std::vector<std::pair<NodePtr, NodePtr>>;
constexpr size_t kMaxPieces = 64;

NodePtr times(const NodePtr& a, const NodePtr& b) {
  if (!a) return b;
  if (!b) return a;
  return make(Op::mul, {a, b});
}

Pieces separate(const NodePtr& n, const std::string& path) {
  const bool in_time = depends_on_time(*n), in_space = depends_on_position(*n);
  if (!in_time) return {{nullptr, n}};
  if (!in_space) return {{n, nullptr}};
  auto negate = [](Pieces p) {
    for (auto& [tp, xp] : p) xp = make(Op::neg, {xp ? xp : number(1.0)});
    return p;
  };
  auto too_many = [&](size_t count) {
    if (count > kMaxPieces)
      throw InvalidInput(path, "expands into more than " + std::to_string(kMaxPieces) +
                                   " products of a function of t and a function of x, y, z; simplify it");
  };
  switch (n->op) {
    case Op::add:
    case Op::sub: {
      Pieces a = separate(n->kids[0], path), b = separate(n->kids[1], path);
      if (n->op == Op::sub) b = negate(std::move(b));
      a.insert(a.end(), b.begin(), b.end());
      too_many(a.size());
      return a;
    }
    case Op::neg: return negate(separate(n->kids[0], path));
    case Op::mul: {
      const Pieces a = separate(n->kids[0], path), b = separate(n->kids[1], path);
      too_many(a.size() * b.size());
      Pieces out;
      for (const auto& [ta, xa] : a)
        for (const auto& [tb, xb] : b) out.emplace_back(times(ta, tb), times(xa, xb));
      return out;
    }
    case Op::div: {
      const NodePtr& d = n->kids[1];
      const bool d_time = depends_on_time(*d), d_space = depends_on_position(*d);
      if (!(d_time && d_space)) {
        Pieces a = separate(n->kids[0], path);
        for (auto& [tp, xp] : a) {
          NodePtr& part = d_time ? tp : xp;
          part = make(Op::div, {part ? part : number(1.0), d});
        }
        return a;
      }
      break;
    }
    default: break;
  }
  const std::string what = n->op == Op::call1 || n->op == Op::call2 ? n->name + "()" : op_text(*n);
  throw InvalidInput(path, "depends on t and on x, y, z together inside " + what +
                               ": a value that changes in time must be a sum of products of a function of t and a "
                               "function of x, y, z (\"(1 - exp(-t / 30)) * x\"); a shape that moves in time is "
                               "not supported");
}

Field field_from(const NodePtr& root, const std::string& path, const FieldContext& cx) {
  static const std::vector<Parameter> none;
  const std::vector<Parameter>& parameters = cx.parameters ? *cx.parameters : none;
  Field f;
  f.path = path;
  for (const auto& [k, whole] : decompose(root, path, parameters, cx.transient)) {
    for (const auto& [time, shape] : separate(whole, path)) {
      FieldTerm t;
      t.parameter = k;
      if (time) {
        t.time = std::make_shared<ExpressionTime>(time, path);
        t.clock = static_cast<int>(parameters.size());
      }
      if (shape && depends_on_position(*shape)) {
        t.shape = std::make_shared<ExpressionFunction>(shape, path);
      } else {
        const double zero[4] = {0, 0, 0, 0};
        t.constant = shape ? eval(*shape, zero) : 1.0;
        DOPPEL_VERIFY(std::isfinite(t.constant), path, "evaluates to a value that is not finite");
        if (t.constant == 0.0) continue;
      }
      f.terms.push_back(std::move(t));
    }
  }
  return f;
}

// ---------------------------------------------------------------------------------------
// Tabulated nodal data.

class NodalTable final : public SpaceFunction {
 public:
  NodalTable(std::vector<std::array<double, 3>> pts, std::vector<double> values, int dim, std::string file,
             std::string path)
      : pts_(std::move(pts)), values_(std::move(values)), dim_(dim), file_(std::move(file)), path_(std::move(path)) {
    order_.resize(pts_.size());
    std::iota(order_.begin(), order_.end(), 0);
    build(0, order_.size(), 0);
    for (int a = 0; a < 3; ++a) {
      lo_[a] = hi_[a] = pts_[0][static_cast<size_t>(a)];
      for (const auto& p : pts_) {
        lo_[a] = std::min(lo_[a], p[static_cast<size_t>(a)]);
        hi_[a] = std::max(hi_[a], p[static_cast<size_t>(a)]);
      }
    }
    double d2 = 0;
    for (int a = 0; a < 3; ++a) d2 += (hi_[a] - lo_[a]) * (hi_[a] - lo_[a]);
    slack_ = 0.01 * std::sqrt(d2);
  }

  double operator()(const double* x) const override {
    for (int a = 0; a < dim_; ++a)
      if (x[a] < lo_[a] - slack_ || x[a] > hi_[a] + slack_) {
        std::ostringstream os;
        os << "the data in " << file_ << " does not cover the point (" << x[0] << ", " << x[1];
        if (dim_ == 3) os << ", " << x[2];
        os << ") of the mesh (it spans " << axis_names[a] << " in [" << lo_[a] << ", " << hi_[a] << "])";
        throw InvalidInput(path_, os.str());
      }
    // The k nearest and one more: the (k+1)-th sets the support radius, so a point's weight
    // falls to zero as it leaves the neighbourhood and the interpolant stays continuous.
    const size_t k = dim_ == 3 ? 12 : 8;
    const size_t want = std::min<size_t>(pts_.size(), k + 1);
    std::vector<std::pair<double, size_t>> best;  // (squared distance, index), a max-heap of the nearest
    best.reserve(want + 1);
    search(0, order_.size(), 0, x, want, best);
    std::sort(best.begin(), best.end());
    double R2 = best.back().first;
    if (best.size() > k) best.pop_back();
    else R2 = 2.0 * R2 + 1e-300;  // fewer points than a neighbourhood: all of them, none at zero weight
    const double h2 = std::max(best.back().first, 1e-300);
    if (best.front().first <= 1e-24 * std::max(h2, 1e-300) || best.front().first == 0.0) return values_[best.front().second];
    // Weighted linear least squares: v ~ c0 + g . (p - x), weights 1 / (d^2 + eps) so that the fit is
    // local but smooth; the value at x is c0.
    const int m = dim_ + 1;
    double A[4][4] = {}, b[4] = {};
    for (const auto& [d2, i] : best) {
      const double taper = std::max(0.0, 1.0 - d2 / R2);
      const double w = taper * taper / (d2 + 1e-12 * h2);
      double row[4] = {1.0, 0, 0, 0};
      for (int a = 0; a < dim_; ++a) row[a + 1] = (pts_[i][static_cast<size_t>(a)] - x[a]) / std::sqrt(h2);
      for (int r = 0; r < m; ++r) {
        for (int c = 0; c < m; ++c) A[r][c] += w * row[r] * row[c];
        b[r] += w * row[r] * values_[i];
      }
    }
    // A small ridge on the gradient keeps data on a plane or a line (a boundary's surface data)
    // solvable: the gradient across it comes out zero.
    for (int r = 1; r < m; ++r) A[r][r] += 1e-8 * A[0][0];
    double c0 = 0;
    if (solve(A, b, m, c0)) return c0;
    // Degenerate neighbourhood (points on a line or a plane): inverse-distance weighting.
    double sw = 0, sv = 0;
    for (const auto& [d2, i] : best) {
      const double w = 1.0 / d2;
      sw += w;
      sv += w * values_[i];
    }
    return sv / sw;
  }

 private:
  static constexpr const char* axis_names[3] = {"x", "y", "z"};

  // Gaussian elimination with partial pivoting on the m x m normal equations; false when the
  // system is (numerically) singular.
  static bool solve(double (&A)[4][4], double (&b)[4], int m, double& c0) {
    double scale = 0;
    for (int r = 0; r < m; ++r) scale = std::max(scale, std::fabs(A[r][r]));
    for (int c = 0; c < m; ++c) {
      int piv = c;
      for (int r = c + 1; r < m; ++r)
        if (std::fabs(A[r][c]) > std::fabs(A[piv][c])) piv = r;
      if (std::fabs(A[piv][c]) <= 1e-12 * scale) return false;
      std::swap(A[piv], A[c]);
      std::swap(b[piv], b[c]);
      for (int r = c + 1; r < m; ++r) {
        const double f = A[r][c] / A[c][c];
        for (int k = c; k < m; ++k) A[r][k] -= f * A[c][k];
        b[r] -= f * b[c];
      }
    }
    double x[4];
    for (int r = m - 1; r >= 0; --r) {
      double v = b[r];
      for (int k = r + 1; k < m; ++k) v -= A[r][k] * x[k];
      x[r] = v / A[r][r];
    }
    c0 = x[0];
    return std::isfinite(c0);
  }

  // A k-d tree over order_ (median split on the axis cycling with depth), searched for the k nearest.
  void build(size_t lo, size_t hi, int depth) {
    if (hi - lo <= 1) return;
    const int a = depth % dim_;
    const size_t mid = (lo + hi) / 2;
    std::nth_element(order_.begin() + static_cast<long>(lo), order_.begin() + static_cast<long>(mid),
                     order_.begin() + static_cast<long>(hi), [&](size_t i, size_t j) {
                       return pts_[i][static_cast<size_t>(a)] < pts_[j][static_cast<size_t>(a)];
                     });
    build(lo, mid, depth + 1);
    build(mid + 1, hi, depth + 1);
  }
  void search(size_t lo, size_t hi, int depth, const double* x, size_t k,
              std::vector<std::pair<double, size_t>>& best) const {
    if (lo >= hi) return;
    const size_t mid = (lo + hi) / 2;
    const size_t i = order_[mid];
    double d2 = 0;
    for (int a = 0; a < dim_; ++a) d2 += (pts_[i][static_cast<size_t>(a)] - x[a]) * (pts_[i][static_cast<size_t>(a)] - x[a]);
    if (best.size() < k || d2 < best.front().first) {
      best.emplace_back(d2, i);
      std::push_heap(best.begin(), best.end());
      if (best.size() > k) {
        std::pop_heap(best.begin(), best.end());
        best.pop_back();
      }
    }
    const int a = depth % dim_;
    const double diff = x[a] - pts_[i][static_cast<size_t>(a)];
    const bool left_first = diff < 0;
    if (left_first) search(lo, mid, depth + 1, x, k, best);
    else search(mid + 1, hi, depth + 1, x, k, best);
    if (best.size() < k || diff * diff < best.front().first) {
      if (left_first) search(mid + 1, hi, depth + 1, x, k, best);
      else search(lo, mid, depth + 1, x, k, best);
    }
  }

  std::vector<std::array<double, 3>> pts_;
  std::vector<double> values_;
  std::vector<size_t> order_;
  int dim_;
  std::string file_, path_;
  double lo_[3] = {0, 0, 0}, hi_[3] = {0, 0, 0}, slack_ = 0;
};

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream is(line);
  while (std::getline(is, cell, ',')) {
    const auto b = cell.find_first_not_of(" \t\r"), e = cell.find_last_not_of(" \t\r");
    cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
  }
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

}  // namespace

std::shared_ptr<const SpaceFunction> load_nodal_table(const std::filesystem::path& file, const std::string& path,
                                                      int dim, int* table_dim_out) {
  std::ifstream in(file);
  DOPPEL_VERIFY(in.good(), path, "cannot read " + file.string());
  const std::string where = file.filename().string();
  std::vector<std::array<double, 3>> pts;
  std::vector<double> values;
  std::vector<size_t> lines;      // the file line of each data row
  int columns[4] = {0, 1, 2, 3};  // positions of x, y, z, value in a row
  int width = 0;                  // cells per row, fixed by the header or the first row
  bool has_z = true;
  std::string line;
  for (size_t lineno = 1; std::getline(in, line); ++lineno) {
    const std::string at = where + ":" + std::to_string(lineno);
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    if (lineno == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<std::string> cells = split_csv(line);
    for (std::string& cell : cells) {  // quotes around a cell go, then the blanks inside them
      cell.erase(std::remove(cell.begin(), cell.end(), '"'), cell.end());
      const auto b = cell.find_first_not_of(" \t\r"), e = cell.find_last_not_of(" \t\r");
      cell = b == std::string::npos ? "" : cell.substr(b, e - b + 1);
    }
    // The first row is a header when its first cell is not a number.
    auto is_number = [](const std::string& c) {
      char* end = nullptr;
      std::strtod(c.c_str(), &end);
      return !c.empty() && end && *end == '\0';
    };
    const bool header = pts.empty() && width == 0 && !cells.empty() && !is_number(cells[0]);
    if (header) {
      width = static_cast<int>(cells.size());
      const char* names[4] = {"x", "y", "z", "value"};
      for (int c = 0; c < 4; ++c) columns[c] = -1;
      for (int i = 0; i < width; ++i) {
        std::string n = cells[static_cast<size_t>(i)];
        std::transform(n.begin(), n.end(), n.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        for (int c = 0; c < 4; ++c)
          if (n == names[c]) {
            DOPPEL_VERIFY(columns[c] < 0, path, at + ": the header names column '" + n + "' twice");
            columns[c] = i;
          }
      }
      DOPPEL_VERIFY(columns[0] >= 0 && columns[1] >= 0 && columns[3] >= 0, path,
                    at + ": the header must name the columns x, y, (z,) value");
      has_z = columns[2] >= 0;
      continue;
    }
    if (width == 0) {
      width = static_cast<int>(cells.size());
      DOPPEL_VERIFY(width == 4 || width == 3, path,
                    at + ": expected the columns x, y, z, value (or x, y, value on a 2D mesh), got " +
                        std::to_string(width) + " columns");
      has_z = width == 4;
      if (!has_z) {
        columns[2] = -1;
        columns[3] = 2;
      }
    }
    DOPPEL_VERIFY(static_cast<int>(cells.size()) == width, path,
                  at + ": expected " + std::to_string(width) + " columns, got " + std::to_string(cells.size()));
    double v[4] = {0, 0, 0, 0};
    for (int c = 0; c < 4; ++c) {
      if (columns[c] < 0) continue;
      const std::string& cell = cells[static_cast<size_t>(columns[c])];
      char* end = nullptr;
      v[c] = std::strtod(cell.c_str(), &end);
      DOPPEL_VERIFY(!cell.empty() && end && *end == '\0', path, at + ": '" + cell + "' is not a number");
      DOPPEL_VERIFY(std::isfinite(v[c]), path, at + ": '" + cell + "' is not a finite number");
    }
    pts.push_back({v[0], v[1], v[2]});
    values.push_back(v[3]);
    lines.push_back(lineno);
  }
  DOPPEL_VERIFY(has_z || dim != 3, path, where + " has no z column, but the mesh is 3D");
  DOPPEL_VERIFY(!pts.empty(), path, where + " holds no data rows");
  const int table_dim = dim > 0 ? dim : (has_z ? 3 : 2);
  if (table_dim_out) *table_dim_out = table_dim;
  if (table_dim == 2)
    for (auto& p : pts) p[2] = 0.0;
  // Two rows at one point with different values make the data ambiguous.
  {
    std::vector<size_t> idx(pts.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return pts[a] < pts[b]; });
    for (size_t i = 1; i < idx.size(); ++i)
      DOPPEL_VERIFY(!(pts[idx[i]] == pts[idx[i - 1]]) || values[idx[i]] == values[idx[i - 1]], path,
                    where + " gives two different values at one point (lines " +
                        std::to_string(std::min(lines[idx[i]], lines[idx[i - 1]])) + " and " +
                        std::to_string(std::max(lines[idx[i]], lines[idx[i - 1]])) + ")");
  }
  return std::make_shared<NodalTable>(std::move(pts), std::move(values), table_dim, where, path);
}

std::shared_ptr<const SpaceFunction> parse_space_expression(const std::string& text, const std::string& path) {
  Parser parser(text, path, nullptr);
  const NodePtr root = parser.parse();
  (void)field_from(root, path, FieldContext{});  // refuses t, like a field would
  return std::make_shared<ExpressionFunction>(root, path);
}

Field parse_field(const nlohmann::json& j, const std::string& path, const FieldContext& cx) {
  if (j.is_number()) {
    const double v = j.get<double>();
    DOPPEL_VERIFY(std::isfinite(v), path, "must be a finite number");
    Field f;
    f.path = path;
    if (v != 0.0) {
      FieldTerm t;
      t.constant = v;
      f.terms.push_back(std::move(t));
    }
    return f;
  }
  if (j.is_string()) {
    const std::string text = j.get<std::string>();
    DOPPEL_VERIFY(!text.empty(), path, "expected a number, a parameter \"$name\" or an expression of x, y, z");
    Parser parser(text, path, cx.parameters);
    return field_from(parser.parse(), path, cx);
  }
  if (j.is_object()) {
    require_known_keys(j, path, {"file", "scale"});
    const std::string name = read_string(require_key(j, path, "file"), path + ".file");
    std::filesystem::path file(name);
    if (file.is_relative()) file = cx.base_dir / file;
    require_regular_file(file, path + ".file", "data file");
    if (cx.files) cx.files->push_back(file);
    auto table = std::make_shared<Node>();
    table->op = Op::table;
    int table_dim = 0;
    table->table = load_nodal_table(file, path + ".file", cx.dim, &table_dim);
    NodePtr root = table;
    if (j.contains("scale")) {
      const nlohmann::json& s = j["scale"];
      NodePtr scale;
      if (s.is_number()) {
        DOPPEL_VERIFY(std::isfinite(s.get<double>()), path + ".scale", "must be a finite number");
        scale = number(s.get<double>());
      } else if (s.is_string()) {
        Parser parser(s.get_ref<const std::string&>(), path + ".scale", cx.parameters);
        scale = parser.parse();
      } else {
        throw InvalidInput(path + ".scale", "expected a number, a parameter \"$name\" or an expression of x, y, z");
      }
      root = make(Op::mul, {scale, root});
    }
    Field f = field_from(root, path, cx);
    f.table_dim = table_dim;
    return f;
  }
  throw InvalidInput(path, "expected a number, a parameter \"$name\", an expression of x, y, z, or "
                           "{\"file\": \"data.csv\", \"scale\": ...}");
}

double FieldTerm::time_at(const std::vector<double>& p) const {
  if (clock < 0 || static_cast<size_t>(clock) >= p.size())
    throw std::logic_error("a value that varies in time was evaluated without the time (parameters without the clock "
                           "of Scenario::parameters_at)");
  return (*time)(p[static_cast<size_t>(clock)]);
}

bool Field::varies_in_time() const {
  return std::any_of(terms.begin(), terms.end(), [](const FieldTerm& t) { return static_cast<bool>(t.time); });
}

std::vector<std::vector<double>> Field::time_factors(const std::vector<double>& times) const {
  std::vector<std::vector<double>> out(times.size(), std::vector<double>(terms.size(), 1.0));
  for (size_t k = 0; k < times.size(); ++k)
    for (size_t j = 0; j < terms.size(); ++j)
      if (terms[j].time) out[k][j] = (*terms[j].time)(times[k]);
  return out;
}

bool Field::uniform() const {
  return std::all_of(terms.begin(), terms.end(), [](const FieldTerm& t) { return t.uniform(); });
}

double Field::eval(const std::vector<double>& p, const double* x) const {
  double v = 0;
  for (const auto& t : terms) v += t.factor(p) * t.shape_at(x);
  return v;
}

double Field::eval(const std::vector<double>& p) const {
  DOPPEL_VERIFY(uniform(), path, "varies in space where one value is needed");
  double v = 0;
  for (const auto& t : terms) v += t.factor(p) * t.constant;
  return v;
}

std::pair<double, double> Field::bounds(const std::vector<Parameter>& parameters, const double* x,
                                       const std::vector<std::vector<double>>& time_factors) const {
  if (varies_in_time() && time_factors.empty())
    throw std::logic_error("Field::bounds of a value that varies in time needs its time factors (" + path + ")");
  std::vector<double> shapes(terms.size());
  for (size_t j = 0; j < terms.size(); ++j) shapes[j] = terms[j].shape_at(x);
  // At one time: group the shapes by factor, then take each parameter's extreme ends.
  auto at = [&](const std::vector<double>* g) {
    std::map<int, double> by_factor;
    for (size_t j = 0; j < terms.size(); ++j) by_factor[terms[j].parameter] += (g ? (*g)[j] : 1.0) * shapes[j];
    double lo = 0, hi = 0;
    for (const auto& [k, s] : by_factor) {
      if (k < 0) {
        lo += s;
        hi += s;
        continue;
      }
      const Parameter& p = parameters[static_cast<size_t>(k)];
      const double a = p.min * s, b = p.max * s;
      lo += std::min(a, b);
      hi += std::max(a, b);
    }
    return std::pair<double, double>{lo, hi};
  };
  if (time_factors.empty()) return at(nullptr);
  std::pair<double, double> out{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  for (const auto& g : time_factors) {
    const auto [lo, hi] = at(&g);
    out.first = std::min(out.first, lo);
    out.second = std::max(out.second, hi);
  }
  return out;
}

}  // namespace doppel::spec
