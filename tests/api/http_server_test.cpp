// The HTTP wrapper on its own (api/http_server.cpp): whatever a handler lets escape, the client
// gets the one documented error body and the process keeps serving.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <thread>

#include "api/errors.hpp"
#include "api/http_server.hpp"

namespace doppel::api {
namespace {

struct Served {
  explicit Served(ServerOptions o) : server(std::move(o)) {}
  void start() {
    port = server.bind();
    ASSERT_GT(port, 0);
    thread = std::thread([this] { server.run(); });
  }
  ~Served() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
  HttpServer server;
  int port = -1;
  std::thread thread;
};

ServerOptions options() {
  ServerOptions o;
  o.port = 0;
  o.threads = 4;
  o.error = [](int status, const std::string& type, const std::string& message) { return error_response(status, type, message); };
  o.exception = [](const std::exception& e) { return response_for(e); };
  return o;
}

// A handler's exception whose error body cannot be formatted (here the formatter itself
// throws) escaped to httplib, which answered 500 with the exception's text in an
// EXCEPTION_WHAT header. Now: the documented JSON body, type "internal", no internal text.
TEST(HttpServer, EscapingExceptionsAnswerTheDocumentedBodyWithoutLeakingTheirText) {
  ServerOptions o = options();
  o.exception = [](const std::exception&) -> Response { throw std::runtime_error("formatter broke: secret"); };
  Served s(o);
  s.server.route("GET", "/boom", [](Request&) -> Response { throw std::runtime_error("secret internal detail"); });
  s.server.route("GET", "/ok", [](Request&) { return Response{200, "application/json", "{}\n", {}, {}, {}}; });
  s.start();
  HttpClient c("127.0.0.1", s.port);
  for (int i = 0; i < 3; ++i) {
    const Response r = c.request("GET", "/boom");
    ASSERT_EQ(r.status, 500) << r.body;
    for (const auto& [k, v] : r.headers) {
      EXPECT_NE(k, "EXCEPTION_WHAT") << v;
      EXPECT_EQ(v.find("secret"), std::string::npos) << k << ": " << v;
    }
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << r.body;
    const auto body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["error"]["type"], "internal");
    EXPECT_EQ(body["error"]["code"], 500);
  }
  EXPECT_EQ(c.request("GET", "/ok").status, 200);
}

// A streamed body that throws part-way was called by httplib outside any try: the process
// ended (std::terminate). Now the connection closes (a truncated chunked body, never a
// complete-looking one) and the server goes on serving.
TEST(HttpServer, AStreamThatThrowsClosesItsConnectionAndTheServerGoesOn) {
  Served s(options());
  s.server.route("GET", "/stream", [](Request&) {
    Response r;
    r.content_type = "application/x-ndjson";
    r.stream = [](const BodyWriter& write) {
      write("{\"line\": 1}\n");
      throw std::runtime_error("the store went away");
    };
    return r;
  });
  s.server.route("GET", "/ok", [](Request&) { return Response{200, "application/json", "{}\n", {}, {}, {}}; });
  s.start();
  {
    HttpClient c("127.0.0.1", s.port, 10);
    const Response r = c.request("GET", "/stream");
    EXPECT_NE(r.status, 200) << r.body;  // no complete answer
  }
  HttpClient c("127.0.0.1", s.port, 10);
  EXPECT_EQ(c.request("GET", "/ok").status, 200);
}

}  // namespace
}  // namespace doppel::api
