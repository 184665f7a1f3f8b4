// Times on the API: RFC 3339 UTC strings (spec/time.hpp).
#pragma once

#include "spec/time.hpp"

namespace doppel::api {
using spec::format_rfc3339;
using spec::now_seconds;
using spec::parse_rfc3339;
using spec::utc_now;
}  // namespace doppel::api
