// The HTTP wrapper on its own (api/http_server.cpp): whatever a handler lets escape, the client
// gets the one documented error body and the process keeps serving.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
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

// A raw HTTP/1.1 exchange on a new connection: the request's head, then `body_pieces` chunks
// of `piece` bytes in chunked transfer encoding (stopping early if the server closes); returns
// everything the server sent until it closed the connection or 5 s passed.
std::string chunked_exchange(int port, const std::string& head, size_t body_pieces, size_t piece) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::signal(SIGPIPE, SIG_IGN);
  auto send_all = [&](const std::string& s) {
    size_t sent = 0;
    while (sent < s.size()) {
      const ssize_t n = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  };
  bool open = send_all(head);
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", piece);
  const std::string chunk = std::string(size) + std::string(piece, ' ') + "\r\n";
  for (size_t i = 0; open && i < body_pieces; ++i) open = send_all(chunk);
  if (open) send_all("0\r\n\r\n");
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return got;
}

// httplib bounds a body by its Content-Length only: a chunked body was read whole (200 MB
// against a 64 MB limit) and answered 400. Now it is read piece by piece and refused with 413
// as soon as it passes the limit, and that connection closes.
TEST(HttpServer, ChunkedBodiesAreBoundedLikeOthers) {
  ServerOptions o = options();
  o.max_body_bytes = 1 << 20;
  Served s(o);
  s.server.route("POST", "/echo", [](Request& r) { return Response{200, "text/plain", std::to_string(r.body.size()), {}, {}, {}}; });
  s.start();
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
  HttpClient c("127.0.0.1", s.port);
  const std::string small = chunked_exchange(s.port, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                                                    "Transfer-Encoding: chunked\r\n\r\n", 4, 1000);
  EXPECT_EQ(small.rfind("HTTP/1.1 200", 0), 0u) << small.substr(0, 200);
  EXPECT_NE(small.find("\r\n\r\n4000"), std::string::npos) << small.substr(0, 300);
  const std::string big = chunked_exchange(s.port, head, 64, 64 << 10);  // 4 MB
  EXPECT_EQ(big.rfind("HTTP/1.1 413", 0), 0u) << big.substr(0, 200);
  EXPECT_NE(big.find("payload_too_large"), std::string::npos);
  EXPECT_NE(big.find("Connection: close"), std::string::npos) << big.substr(0, 300);
  EXPECT_EQ(big.find("HTTP/1.1", 1), std::string::npos) << "the rest of the body was read as another request";
  // A body no route takes (an unknown path, a method the path lacks) is read within the same
  // bound and answered 404 / 405 with the one error body; multipart bodies are refused (415).
  const std::string lost = chunked_exchange(s.port, "POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 64, 64 << 10);
  EXPECT_EQ(lost.rfind("HTTP/1.1 404", 0), 0u) << lost.substr(0, 200);
  EXPECT_NE(lost.find("not_found"), std::string::npos) << lost.substr(0, 300);
  const std::string patch = chunked_exchange(s.port, "PATCH /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 10);
  EXPECT_EQ(patch.rfind("HTTP/1.1 405", 0), 0u) << patch.substr(0, 200);
  const auto multipart = c.request("POST", "/echo", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n",
                                   {{"Content-Type", "multipart/form-data; boundary=b"}});
  EXPECT_EQ(multipart.status, 415) << multipart.body;
  EXPECT_EQ(c.request("POST", "/echo", std::string(1000, 'x'), {{"Content-Type", "text/plain"}}).body, "1000");
  EXPECT_EQ(c.request("POST", "/echo", std::string(2 << 20, 'x'), {{"Content-Type", "text/plain"}}).status, 413);
}

}  // namespace
}  // namespace doppel::api
