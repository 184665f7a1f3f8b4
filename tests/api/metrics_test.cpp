// Prometheus exposition helpers (api/metrics.cpp).
#include <gtest/gtest.h>

#include "api/metrics.hpp"

namespace doppel::api {
namespace {

// A label value with a quote broke the exposition format (the text format 0.0.4 escapes
// backslash, double quote and newline in label values, and nothing else).
TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(label_value("plain-name_1.2"), "plain-name_1.2");
  EXPECT_EQ(label_value("we\"ird"), "we\\\"ird");
  EXPECT_EQ(label_value("back\\slash"), "back\\\\slash");
  EXPECT_EQ(label_value("two\nlines"), "two\\nlines");
  Metrics m;
  m.request("/v1/\"x\"", "GET", 200, 0.001);
  const std::string text = m.render();
  EXPECT_NE(text.find("route=\"/v1/\\\"x\\\"\""), std::string::npos) << text;
}

// The process metrics read from /proc name themselves as Prometheus' client libraries do.
TEST(Metrics, ProcessMetricsFromProc) {
  std::string out;
  render_process_metrics(out);
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
                           "process_threads ", "process_start_time_seconds "}) {
    const size_t at = out.find(std::string("\n") + name);
    ASSERT_NE(at, std::string::npos) << name << "\n" << out;
    const double v = std::stod(out.substr(at + 1 + std::string(name).size()));
    if (std::string(name) == "process_cpu_seconds_total ") {
      EXPECT_GE(v, 0.0);  // counted in 10 ms ticks
    } else {
      EXPECT_GT(v, 0.0) << name;
    }
  }
}

}  // namespace
}  // namespace doppel::api
