// Times on the API: RFC 3339 UTC strings with milliseconds ("2026-11-25T10:00:00.250Z").
#pragma once

#include <optional>
#include <string>

namespace doppel::spec {

std::string utc_now();
double now_seconds();  // seconds since the Unix epoch
// "2026-11-25T10:00:00Z", fractional seconds and numeric offsets ("+01:00") accepted;
// nullopt for anything else (including impossible dates such as February 30).
std::optional<double> parse_rfc3339(const std::string& text);
// UTC with milliseconds.
std::string format_rfc3339(double seconds);

}  // namespace doppel::spec
