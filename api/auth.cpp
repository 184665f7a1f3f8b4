#include "api/auth.hpp"

#include <algorithm>

#include "api/errors.hpp"

namespace doppel::api {

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Every byte of the longer string is visited whatever the content; no early exit.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string Authenticator::authorize(const Request& r, Scope needed) const {
  if (!enabled() || needed == Scope::none) return "";
  const std::string h = r.header("authorization");
  const std::string prefix = "Bearer ";
  if (h.size() <= prefix.size() || h.compare(0, prefix.size(), prefix) != 0)
    throw HttpError(401, "unauthorized",
                    h.empty() ? "this route needs a bearer token (Authorization: Bearer <token>)"
                              : "the Authorization header must be \"Bearer <token>\"",
                    "Authorization");
  const std::string presented = h.substr(prefix.size());
  const TokenConfig* match = nullptr;
  for (const auto& t : tokens_)  // compare with every token: the time does not say which matched
    if (constant_time_equal(presented, t.secret)) match = &t;
  if (!match) throw HttpError(401, "unauthorized", "unknown bearer token", "Authorization");
  if (!match->scopes.count(needed) && !match->scopes.count(Scope::admin))
    throw HttpError(403, "forbidden",
                    std::string("token '") + match->name + "' lacks the scope '" + scope_name(needed) + "'",
                    "Authorization");
  return match->name;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

void check_exposure(const std::string& host, const std::vector<TokenConfig>& tokens) {
  if (is_loopback(host)) return;
  std::string missing;
  for (Scope s : {Scope::ingest, Scope::control, Scope::admin}) {
    bool granted = false;
    for (const auto& t : tokens) granted = granted || t.scopes.count(s) || t.scopes.count(Scope::admin);
    if (!granted) missing += std::string(missing.empty() ? "" : ", ") + scope_name(s);
  }
  if (!missing.empty())
    throw InvalidInput("--host", "listening on " + host +
                                     " exposes the service beyond this machine; configure bearer tokens granting " +
                                     missing + " in --config server.json ({\"tokens\": [{\"name\": ..., \"token_env\": ..., "
                                     "\"scopes\": [\"admin\"]}]}) or listen on 127.0.0.1");
}

}  // namespace doppel::api
