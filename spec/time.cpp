#include "spec/time.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <regex>

namespace doppel::spec {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string format_rfc3339(double seconds) {
  double whole = std::floor(seconds);
  long ms = std::lround((seconds - whole) * 1000.0);
  if (ms == 1000) {
    whole += 1;
    ms = 0;
  }
  const std::time_t t = static_cast<std::time_t>(whole);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03ldZ", buf, ms);
  return out;
}

std::string utc_now() { return format_rfc3339(now_seconds()); }

std::optional<double> parse_rfc3339(const std::string& text) {
  static const std::regex re(
      R"(^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) return std::nullopt;
  const int year = std::stoi(m[1]), month = std::stoi(m[2]), day = std::stoi(m[3]);
  const int hour = std::stoi(m[4]), minute = std::stoi(m[5]), second = std::stoi(m[6]);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > days[month - 1] + (month == 2 && leap ? 1 : 0)) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = std::min(second, 59);  // a leap second counts as the last second of its minute
  double t = static_cast<double>(timegm(&tm));
  if (m[7].matched) t += std::stod("0" + m[7].str());
  if (m[9].matched) {
    const int oh = std::stoi(m[10]), om = std::stoi(m[11]);
    if (oh > 23 || om > 59) return std::nullopt;
    const double offset = 3600.0 * oh + 60.0 * om;
    t += m[9].str() == "+" ? -offset : offset;
  }
  return t;
}

}  // namespace doppel::spec
