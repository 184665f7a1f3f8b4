// The HTTP server behind doppel's API: a flat route table over cpp-httplib (the one file that
// includes it is http_server.cpp). Handlers see plain structs, never throw past the table (the
// wrapper turns exceptions into the one error body), and every request is logged once.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/connection_front.hpp"

namespace doppel::api {

struct Request {
  std::string method;
  std::string path;
  std::string body;
  std::string remote_addr;
  std::map<std::string, std::string> params;   // path parameters ("id" of /v1/twins/{id})
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string principal;                       // the authorized token's name (set by the service)
  std::string header(const std::string& lower_name) const;
};

// A streamed body: called once, it writes pieces through `write` (false: the client is gone)
// and returns when done. Sent with chunked transfer encoding.
using BodyWriter = std::function<bool(const std::string&)>;
using Stream = std::function<void(const BodyWriter& write)>;

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  Stream stream;  // when set, the body is streamed instead of `body`
  std::string principal;  // who made the request (a token's name), for the request log
};

// Handlers may annotate the request they are given (the service sets `principal`); most take
// it as const.
using Handler = std::function<Response(Request&)>;

struct RequestLog {
  std::string method, path, remote_addr;
  std::string route;  // the matched route pattern ("/v1/twins/{id}"), or "unmatched"
  std::string principal;  // the authorized token's name ("" without auth)
  int status = 0;
  double seconds = 0;
  size_t bytes = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                     // 0: any free port (see HttpServer::bind)
  size_t max_body_bytes = 64u << 20;   // larger bodies get 413
  int threads = 64;                    // requests answered at once (workers of the front)
  // Connections (plain HTTP; api/connection_front.hpp). TLS connections keep cpp-httplib's own
  // thread per connection and its timeouts.
  size_t max_connections = 1024;       // open at once; more are answered 503
  double idle_timeout_s = 5;           // an idle keep-alive connection closes
  double header_timeout_s = 10;        // a request head must arrive whole within (408)
  double body_timeout_s = 60;          // a body must arrive within, after its head
  double io_timeout_s = 10;            // longest wait for progress reading a body or writing
  std::string tls_cert, tls_key;       // PEM files: HTTPS when set
  std::function<void(const RequestLog&)> log;
  // The body of every error the server itself produces (404, 405, 413, exceptions).
  std::function<Response(int status, const std::string& type, const std::string& message)> error;
  std::function<Response(const std::exception&)> exception;
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // pattern: a path with {name} segments ("/v1/twins/{id}"). Methods: GET POST PUT DELETE.
  void route(const std::string& method, const std::string& pattern, Handler handler);
  // Binds the socket; returns the bound port. Throws Unavailable when the address is taken.
  int bind();
  // Serves until stop() (from any thread); returns after in-flight requests finish. Throws
  // Unavailable when the listening socket fails (accept errors other than EMFILE end it).
  void run();
  void stop();
  // The front's counters (zeros under TLS).
  FrontStats connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ClientTls {
  bool enabled = false;
  std::string ca_file;  // the certificate to trust; empty: do not verify (self-signed test servers)
};

// A small blocking HTTP/1.1 client (keep-alive), for tests, benchmarks and the virtual plant.
class HttpClient {
 public:
  HttpClient(const std::string& host, int port, double timeout_seconds = 60, const ClientTls& tls = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  // status -1: no connection or no answer.
  Response request(const std::string& method, const std::string& path, const std::string& body = "",
                   const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::api
