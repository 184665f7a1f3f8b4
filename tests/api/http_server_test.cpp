// The HTTP wrapper on its own (api/http_server.cpp): whatever a handler lets escape, the client
// gets the one documented error body and the process keeps serving.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <memory>
#include <thread>
#include <vector>

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

// A raw client connection, for what HttpClient cannot do: send part of a request, stay idle,
// pipeline, half-close. Every receive waits at most `wait_s`.
struct Raw {
  explicit Raw(int port, double wait_s = 15) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{static_cast<time_t>(wait_s), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Raw() { ::close(fd); }
  bool send(const std::string& s) const {
    size_t sent = 0;
    while (sent < s.size()) {
      const ssize_t n = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // Everything until the server closes (or the wait passes: then `closed` stays false).
  std::string until_closed() {
    std::string got;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) closed = true;
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  // Reads until `count` answers with Content-Length bodies are in (or the wait passes).
  std::string answers(size_t count) {
    std::string got;
    char buf[4096];
    auto complete = [&] {
      size_t at = 0;
      for (size_t k = 0; k < count; ++k) {
        const size_t head = got.find("\r\n\r\n", at);
        if (head == std::string::npos) return false;
        const size_t len = got.find("Content-Length: ", at);
        if (len == std::string::npos || len > head) return false;
        at = head + 4 + std::stoul(got.substr(len + 16));
        if (at > got.size()) return false;
      }
      return true;
    };
    while (!complete()) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  size_t count(const std::string& text, const std::string& what) const {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }
  int fd = -1;
  bool connected = false, closed = false;
};

ServerOptions quick_options() {
  ServerOptions o = options();
  o.idle_timeout_s = 1;
  o.header_timeout_s = 1;
  o.body_timeout_s = 1;
  o.io_timeout_s = 1;
  return o;
}

void add_health(HttpServer& server) {
  server.route("GET", "/healthz", [](Request&) { return Response{200, "application/json", "{\"ok\": true}\n", {}, {}, {}}; });
  server.route("POST", "/echo", [](Request& r) { return Response{200, "text/plain", std::to_string(r.body.size()), {}, {}, {}}; });
}

// Waits (bounded) until the front holds `open` connections.
void await_open(const HttpServer& server, size_t open) {
  for (int i = 0; i < 500 && server.connections().open != open; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(server.connections().open, open);
}

// With httplib's thread per connection, 4 threads were held by whoever connected first: idle
// keep-alive connections, heads sent a byte at a time (slowloris), bodies that never come.
// /healthz then waited behind them all (70 such connections denied 30 of 30 probes for 10 s).
// Now connections wait for a complete head without a thread, heads and bodies have deadlines,
// and bodyless requests keep workers of their own: every probe is answered while 100 idle, 100
// slowloris and 20 slow-body connections are open, and each of those is closed by its deadline.
TEST(HttpServer, SlowAndIdleConnectionsCannotStarveTheWorkers) {
  Served s(quick_options());
  add_health(s.server);
  s.start();
  std::vector<std::unique_ptr<Raw>> idle, loris, bodies;
  for (int i = 0; i < 100; ++i) idle.push_back(std::make_unique<Raw>(s.port));
  for (int i = 0; i < 100; ++i) {
    loris.push_back(std::make_unique<Raw>(s.port));
    ASSERT_TRUE(loris.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  }
  for (int i = 0; i < 20; ++i) {
    bodies.push_back(std::make_unique<Raw>(s.port));
    ASSERT_TRUE(bodies.back()->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nx"));
  }
  for (const auto& r : idle) ASSERT_TRUE(r->connected);
  for (int i = 0; i < 20; ++i) {
    HttpClient probe("127.0.0.1", s.port, 5);
    const Response r = probe.request("GET", "/healthz");
    ASSERT_EQ(r.status, 200) << "probe " << i << " starved";
    // Requests with a body too: a body that trickles is read in the loop, holding no worker.
    const Response e = probe.request("POST", "/echo", "abc", {{"Content-Type", "text/plain"}});
    ASSERT_EQ(e.status, 200) << "request with a body " << i << " starved";
    EXPECT_EQ(e.body, "3");
  }
  for (auto& r : loris) {
    r->send("a");  // still trickling
    const std::string got = r->until_closed();
    EXPECT_TRUE(r->closed) << "a slowloris connection stayed open";
    EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got.substr(0, 200);
    EXPECT_NE(got.find("\"request_timeout\""), std::string::npos) << got;
  }
  for (auto& r : idle) {
    EXPECT_EQ(r->until_closed(), "");
    EXPECT_TRUE(r->closed) << "an idle connection stayed open";
  }
  for (auto& r : bodies) {
    const std::string got = r->until_closed();
    EXPECT_TRUE(r->closed) << "a connection whose body never came stayed open";
    EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got.substr(0, 200);
  }
  const FrontStats st = s.server.connections();
  EXPECT_GE(st.head_timeouts, 100u);
  EXPECT_GE(st.idle_closed, 100u);
  EXPECT_GE(st.body_timeouts, 20u);
  HttpClient after("127.0.0.1", s.port, 5);
  EXPECT_EQ(after.request("GET", "/healthz").status, 200);
}

// Bodies buffered in the loop share one budget: with it spent, connections wait unread (their
// clients held back by TCP) and go on as others finish. Every body arrives whole and in order,
// and nothing stays charged once all are answered.
// (The front on its own, with a budget far below the bodies: each must wait for the one before.)
TEST(HttpServer, BodiesShareOneBudgetAndAllArrive) {
  FrontOptions f;
  f.workers = 2;
  f.free_body_bytes = 1024;
  f.body_budget_bytes = 8192;
  f.max_body_bytes = 1 << 20;
  std::atomic<int> served{0};
  ConnectionFront front(f, [&](Connection& c) {
    // Echo the byte count and sum of a Content-Length body, read through the connection.
    std::string got;
    char b[4096];
    while (got.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = c.read(b, 1);
      if (n <= 0) return false;
      got.append(b, 1);
    }
    const size_t len = std::stoul(got.substr(got.find("Content-Length: ") + 16));
    std::string body;
    while (body.size() < len) {
      const ssize_t n = c.read(b, std::min(sizeof b, len - body.size()));
      if (n <= 0) return false;
      body.append(b, static_cast<size_t>(n));
    }
    size_t sum = 0;
    for (unsigned char ch : body) sum += ch;
    const std::string text = std::to_string(body.size()) + " " + std::to_string(sum);
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
    ++served;
    return c.write(answer.data(), answer.size()) == static_cast<ssize_t>(answer.size());
  });
  front.start();
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t n = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &n);
  ::listen(listener, 64);
  const int port = ntohs(addr.sin_port);
  std::thread acceptor([&] {
    for (int i = 0; i < 12; ++i) {
      const int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      front.adopt(fd);
    }
  });
  std::vector<std::unique_ptr<Raw>> clients;
  std::vector<std::thread> senders;
  std::vector<size_t> sums(12);
  for (int i = 0; i < 12; ++i) {
    clients.push_back(std::make_unique<Raw>(port));
    std::string body(20000 + 1000 * i, '\0');
    for (size_t k = 0; k < body.size(); ++k) body[k] = static_cast<char>((k * 7 + static_cast<size_t>(i)) & 0xff);
    for (unsigned char ch : body) sums[static_cast<size_t>(i)] += ch;
    Raw* r = clients.back().get();
    senders.emplace_back([r, body] {
      r->send("POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
      for (size_t at = 0; at < body.size(); at += 5000) {  // in pieces, so that reads interleave
        r->send(body.substr(at, 5000));
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  for (int i = 0; i < 12; ++i) {
    const std::string got = clients[static_cast<size_t>(i)]->answers(1);
    EXPECT_NE(got.find("\r\n\r\n" + std::to_string(20000 + 1000 * i) + " " + std::to_string(sums[static_cast<size_t>(i)])), std::string::npos)
        << "client " << i << ": " << got;
  }
  for (auto& t : senders) t.join();
  acceptor.join();
  ::close(listener);
  EXPECT_EQ(served.load(), 12);
  const FrontStats st = front.stats();
  EXPECT_EQ(st.buffered_body_bytes, 0u);
  EXPECT_EQ(st.paused, 0u);
  front.stop();
}

// Past max_connections a new connection is answered 503 (the one error body, Retry-After) at
// once and closed, instead of waiting unseen in a queue; once others close, it is served again.
TEST(HttpServer, ConnectionsPastTheCapAreRefusedAtOnce) {
  ServerOptions o = options();
  o.max_connections = 8;
  Served s(o);
  add_health(s.server);
  s.start();
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 8; ++i) held.push_back(std::make_unique<Raw>(s.port));
  await_open(s.server, 8);
  Raw extra(s.port);
  extra.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string got = extra.until_closed();
  EXPECT_TRUE(extra.closed);
  ASSERT_EQ(got.rfind("HTTP/1.1 503", 0), 0u) << got.substr(0, 200);
  EXPECT_NE(got.find("Retry-After: 1"), std::string::npos);
  const auto body = nlohmann::json::parse(got.substr(got.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["error"]["type"], "unavailable");
  EXPECT_EQ(body["error"]["code"], 503);
  EXPECT_EQ(s.server.connections().refused, 1u);
  held.clear();
  await_open(s.server, 0);
  HttpClient c("127.0.0.1", s.port, 5);
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

// The front's own handling of a connection's requests: a head over the bound is 431;
// pipelined requests are answered in order on one connection; a request followed by a
// half-close is still answered; a handler's "Connection: close" now closes the connection
// (httplib kept it open, and read whatever followed as a new request).
TEST(HttpServer, HeadsPipelinesHalfClosesAndConnectionClose) {
  Served s(options());
  add_health(s.server);
  s.server.route("GET", "/bye", [](Request&) { return Response{200, "application/json", "{}\n", {{"Connection", "close"}}, {}, {}}; });
  s.start();
  {
    Raw r(s.port);
    r.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100000, 'a') + "\r\n\r\n");
    const std::string got = r.until_closed();
    EXPECT_EQ(got.rfind("HTTP/1.1 431", 0), 0u) << got.substr(0, 200);
    EXPECT_NE(got.find("\"header_too_large\""), std::string::npos);
  }
  {
    Raw r(s.port);
    r.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc"
           "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string got = r.answers(3);
    EXPECT_EQ(r.count(got, "HTTP/1.1 200"), 3u) << got;
    EXPECT_NE(got.find("\r\n\r\n3HTTP/1.1 200"), std::string::npos) << got;
    EXPECT_FALSE(r.closed);
  }
  {
    Raw r(s.port);
    r.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ::shutdown(r.fd, SHUT_WR);
    const std::string got = r.until_closed();
    EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
    EXPECT_TRUE(r.closed);
  }
  {
    Raw r(s.port);
    r.send("GET /bye HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string got = r.until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.count(got, "HTTP/1.1 "), 1u) << "the request after Connection: close was answered: " << got;
  }
  for (const std::string& lengths : {std::string("Content-Length: 3\r\nContent-Length: 4\r\n"), std::string("Content-Length: +3\r\n"),
                                     std::string("Content-Length: 3x\r\n")}) {
    // Lengths two parsers could read differently (request smuggling) are refused.
    Raw r(s.port);
    r.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n" + lengths + "\r\nabcd");
    const std::string got = r.until_closed();
    EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << lengths << got.substr(0, 200);
    EXPECT_TRUE(r.closed);
  }
  {
    // 100 requests in one packet: all answered, in order, on the one connection.
    Raw r(s.port);
    std::string many;
    for (int i = 0; i < 100; ++i)
      many += "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(i % 10) + "\r\n\r\n" +
              std::string(static_cast<size_t>(i % 10), 'z');
    r.send(many);
    const std::string got = r.answers(100);
    EXPECT_EQ(r.count(got, "HTTP/1.1 200"), 100u);
    std::string bodies;
    for (size_t at = got.find("\r\n\r\n"); at != std::string::npos; at = got.find("\r\n\r\n", at + 4)) bodies += got[at + 4];
    std::string expected;
    for (int i = 0; i < 100; ++i) expected += static_cast<char>('0' + i % 10);
    EXPECT_EQ(bodies, expected);
  }
  {
    // A chunked body whose last chunk comes in a later packet than its head and first chunk:
    // the end was found twice, and the second look (from past the end) said "not yet", so the
    // request waited in the loop for good.
    Raw r(s.port);
    r.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r.send("0\r\n\r\n");
    const std::string got = r.answers(1);
    EXPECT_NE(got.find("\r\n\r\n3"), std::string::npos) << got;
  }
  {
    // A client that waits for "100 Continue" before its body (curl does, for large bodies).
    Raw r(s.port);
    r.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    std::string got;
    char buf[1024];
    while (got.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(r.fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_EQ(got.rfind("HTTP/1.1 100", 0), 0u) << got;
    r.send("hello");
    while (got.find("\r\n\r\n5") == std::string::npos) {
      const ssize_t n = ::recv(r.fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
    EXPECT_NE(got.find("\r\n\r\n5"), std::string::npos) << got;
  }
  {
    Raw r(s.port);
    r.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string got = r.until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  }
}

}  // namespace
}  // namespace doppel::api
