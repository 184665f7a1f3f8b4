#include "api/auth.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

std::string Authenticator::authorize(const Request& r, Scope needed, Scope or_scope) const {
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
  const bool alternative = or_scope != Scope::none && match->scopes.count(or_scope);
  if (!match->scopes.count(needed) && !alternative && !match->scopes.count(Scope::admin))
    throw HttpError(403, "forbidden",
                    std::string("token '") + match->name + "' lacks the scope '" + scope_name(needed) + "'" +
                        (or_scope != Scope::none ? std::string(" or '") + scope_name(or_scope) + "'" : std::string()),
                    "Authorization");
  return match->name;
}

bool is_loopback(const std::string& host) {
  // Every address the name resolves to (the listener binds one of them), not its text:
  // "127.0.0.1.example.com" is a name anywhere. A name that does not resolve is not loopback.
  if (host.empty()) return false;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* list = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &list) != 0 || !list) return false;
  bool all = true;
  for (const addrinfo* a = list; a; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      all = all && (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr;
      const bool mapped_127 = IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
      all = all && (IN6_IS_ADDR_LOOPBACK(&v6) || mapped_127);
    } else {
      all = false;
    }
  }
  freeaddrinfo(list);
  return all;
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
