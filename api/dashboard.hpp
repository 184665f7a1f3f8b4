// The dashboard page served at GET / (api/dashboard.html, embedded at build time): one
// self-contained HTML document that reads the public routes with the user's bearer token.
#pragma once

namespace doppel::api {

const char* dashboard_html();

}  // namespace doppel::api
