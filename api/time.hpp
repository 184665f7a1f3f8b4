// Times on the API: RFC 3339 UTC strings with milliseconds ("2026-11-25T10:00:00.250Z").
#pragma once

#include <string>

namespace doppel::api {

std::string utc_now();

}  // namespace doppel::api
