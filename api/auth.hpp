// Bearer-token authorization. With no tokens configured every route is open (the server then
// only listens on loopback, see check_exposure); with tokens, every route that needs a scope
// needs "Authorization: Bearer <token>" of a token holding that scope (admin holds all).
// Tokens are compared in constant time and never logged.
#pragma once

#include <string>
#include <vector>

#include "api/config.hpp"
#include "api/http_server.hpp"

namespace doppel::api {

// Equal strings, in time that depends only on the lengths (not on where they differ).
bool constant_time_equal(const std::string& a, const std::string& b);

class Authenticator {
 public:
  explicit Authenticator(std::vector<TokenConfig> tokens = {}) : tokens_(std::move(tokens)) {}
  bool enabled() const { return !tokens_.empty(); }
  // The name of the token allowed `needed` ("" when auth is off or the route is public).
  // HttpError 401 (missing, malformed or unknown token; WWW-Authenticate in the response) or
  // 403 (a valid token without the scope). or_scope: a second scope that also admits.
  std::string authorize(const Request& r, Scope needed, Scope or_scope = Scope::none) const;

 private:
  std::vector<TokenConfig> tokens_;
};

bool is_loopback(const std::string& host);
// Refuses (InvalidInput naming --host) to listen beyond loopback unless tokens grant ingest,
// control and admin: an open server must not be reachable from other machines.
void check_exposure(const std::string& host, const std::vector<TokenConfig>& tokens);

}  // namespace doppel::api
