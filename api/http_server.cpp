#include "api/http_server.hpp"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <regex>

#include <sys/socket.h>

#include "api/connection_front.hpp"
#include "spec/errors.hpp"

namespace doppel::api {

namespace {
// An httplib stream over a connection of the front (connection_front.hpp): the request head is
// already buffered there, the body and the answer go through its deadlines.
class FrontStream : public httplib::Stream {
 public:
  explicit FrontStream(Connection& c) : c_(c) {}
  bool is_readable() const override { return c_.readable(); }
  bool is_writable() const override { return c_.writable(); }
  ssize_t read(char* ptr, size_t size) override { return c_.read(ptr, size); }
  ssize_t write(const char* ptr, size_t size) override { return c_.write(ptr, size); }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.peer_ip();
    port = c_.peer_port();
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.local_ip();
    port = c_.local_port();
  }
  socket_t socket() const override { return c_.fd(); }

 private:
  Connection& c_;
};

// httplib's server with its per-connection threads replaced by the front: every accepted socket
// is handed over at once (the task queue runs the hand-over inline, on the accepting thread), and
// the front's workers call back to answer one request at a time.
class FrontServer : public httplib::Server {
 public:
  std::function<void(int)> adopt;
  // One request on the stream; false: the connection is to close.
  bool serve_one(httplib::Stream& stream) {
    bool closed = false;
    const bool ok = process_request(stream, false, closed, nullptr);
    return ok && !closed;
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    adopt(static_cast<int>(sock));
    return true;
  }
};

class InlineQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

using Clock = std::chrono::steady_clock;
thread_local Clock::time_point request_start;
thread_local std::string request_route;
thread_local std::string request_principal;

// How much of a body over the limit is read (and dropped) so that the connection's next request
// starts where it should: httplib keeps a connection whose body was cut off, and would read the
// rest of it as requests. Past this the reading stops and the connection ends in 400s.
size_t drain_limit(size_t max_body) { return max_body + std::max<size_t>(max_body, 64u << 20); }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
}  // namespace

std::string Request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpServer::Impl {
  ServerOptions options;
  std::unique_ptr<httplib::Server> server;
  std::unique_ptr<ConnectionFront> front;  // plain HTTP; TLS keeps httplib's thread per connection
  int port = -1;
  int listen_fd = -1;
  // stop() may come from another thread before run() listens: never lose it.
  std::atomic<bool> stop_requested{false}, run_entered{false}, run_exited{false};
  struct Route {
    std::string method, pattern;
    std::vector<std::string> names;
    std::regex regex;
  };
  std::vector<Route> routes;
  bool catch_all = false;  // the handlers of unrouted bodies (bind)

  void fill(const Response& r, httplib::Response& out) {
    out.status = r.status;
    for (const auto& [k, v] : r.headers) out.set_header(k, v);
    out.set_content(r.body, r.content_type.c_str());
  }
  // An answer of the server's own (the one error body), with Connection: close: a body it did
  // not read whole.
  void refuse(httplib::Response& out, int status, const std::string& type, const std::string& message) {
    fill(options.error ? options.error(status, type, message) : Response{status, "text/plain", message + "\n", {}, {}, {}}, out);
    out.set_header("Connection", "close");
  }
};

HttpServer::HttpServer(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  Impl& d = *impl_;
  if (!d.options.tls_cert.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(d.options.tls_cert.c_str(), d.options.tls_key.c_str());
    if (!tls->is_valid())
      throw InvalidInput("tls", "cannot use the certificate " + d.options.tls_cert + " with the key " + d.options.tls_key +
                                    " (PEM files of one key pair expected)");
    d.server = std::move(tls);
  } else {
    auto plain = std::make_unique<FrontServer>();
    FrontOptions f;
    f.workers = std::max(1, d.options.threads);
    f.max_connections = d.options.max_connections;
    f.max_body_bytes = d.options.max_body_bytes;
    f.idle_timeout_s = d.options.idle_timeout_s;
    f.header_timeout_s = d.options.header_timeout_s;
    f.body_timeout_s = d.options.body_timeout_s;
    f.read_timeout_s = d.options.io_timeout_s;
    f.write_timeout_s = d.options.io_timeout_s;
    f.refusal = [this](int status, const std::string& type, const std::string& message) {
      const ServerOptions& o = impl_->options;
      return o.error ? o.error(status, type, message).body : message + "\n";
    };
    FrontServer* raw = plain.get();
    d.front = std::make_unique<ConnectionFront>(std::move(f), [raw](Connection& c) {
      FrontStream stream(c);
      return raw->serve_one(stream);
    });
    ConnectionFront* front = d.front.get();
    plain->adopt = [front](int fd) { front->adopt(fd); };
    plain->new_task_queue = [] { return new InlineQueue; };
    d.server = std::move(plain);
  }
  if (!d.front) {
    const int threads = std::max(1, d.options.threads);
    d.server->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  }
  d.server->set_keep_alive_max_count(100000);
  d.server->set_tcp_nodelay(true);  // headers and body go out as separate writes: no Nagle stall
  // httplib listens with a backlog of 5: a burst of new connections (64 clients at once)
  // overflows it and the kernel drops them. Remember the socket to widen the backlog after bind.
  d.server->set_socket_options([&d](socket_t sock) {
    httplib::default_socket_options(sock);
    d.listen_fd = static_cast<int>(sock);
  });
  d.server->set_payload_max_length(d.options.max_body_bytes);
  // Idle keep-alive connections close after 2 s, so a shutdown waits at most that long for them.
  d.server->set_keep_alive_timeout(2);
  d.server->set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    request_start = Clock::now();
    request_route = "unmatched";
    request_principal.clear();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  d.server->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    Impl& i = *impl_;
    if (!res.body.empty() || !i.options.error) return;
    std::string type = "error", message = "HTTP error " + std::to_string(res.status);
    if (res.status == 404) {
      // A known path with another method is a 405.
      for (const auto& r : i.routes)
        if (std::regex_match(req.path, r.regex)) {
          res.status = 405;
          type = "method_not_allowed";
          message = req.method + " is not allowed on " + req.path;
        }
      if (res.status == 404) {
        type = "not_found";
        message = "no route " + req.method + " " + req.path;
      }
    } else if (res.status == 413) {
      type = "payload_too_large";
      message = "the request body exceeds " + std::to_string(i.options.max_body_bytes) + " bytes";
    } else if (res.status == 400) {
      type = "invalid_request";
      message = "malformed HTTP request";
    }
    i.fill(i.options.error(res.status, type, message), res);
  });
  // Whatever escapes a route's handler (an error body that cannot be formatted, a stream that
  // throws) answers the one documented error body. httplib's own default would copy the
  // exception's text into an EXCEPTION_WHAT response header.
  d.server->set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    Impl& i = *impl_;
    res = httplib::Response{};
    res.status = 500;
    try {
      if (i.options.error) return i.fill(i.options.error(500, "internal", "internal error"), res);
    } catch (...) {
    }
    res.set_content("{\"error\": {\"code\": 500, \"type\": \"internal\", \"message\": \"internal error\", \"path\": \"\"}}\n",
                    "application/json");
  });
  d.server->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (!impl_->options.log) return;
    RequestLog l;
    l.method = req.method;
    l.path = req.path;
    l.remote_addr = req.remote_addr;
    l.status = res.status;
    l.route = request_route;
    l.principal = request_principal;
    l.bytes = res.body.size();
    l.seconds = std::chrono::duration<double>(Clock::now() - request_start).count();
    impl_->options.log(l);
  });
}

HttpServer::~HttpServer() { stop(); }

FrontStats HttpServer::connections() const { return impl_->front ? impl_->front->stats() : FrontStats{}; }

void HttpServer::route(const std::string& method, const std::string& pattern, Handler handler) {
  Impl& d = *impl_;
  Impl::Route r;
  r.method = method;
  r.pattern = pattern;
  std::string re;
  std::regex param(R"(\{([a-z_]+)\})");
  size_t last = 0;
  for (auto it = std::sregex_iterator(pattern.begin(), pattern.end(), param); it != std::sregex_iterator(); ++it) {
    re += std::regex_replace(pattern.substr(last, static_cast<size_t>(it->position()) - last), std::regex(R"([.^$|()\[\]*+?\\])"), R"(\$&)");
    re += "([^/]+)";
    r.names.push_back((*it)[1]);
    last = static_cast<size_t>(it->position() + it->length());
  }
  re += pattern.substr(last);
  r.regex = std::regex(re);
  d.routes.push_back(r);
  const std::vector<std::string> names = r.names;
  auto wrapped = [this, names, handler, pattern](const httplib::Request& req, std::string body, httplib::Response& res) {
    Impl& i = *impl_;
    request_route = pattern;
    Request q;
    q.method = req.method;
    q.path = req.path;
    q.body = std::move(body);
    q.remote_addr = req.remote_addr;
    for (size_t k = 0; k < names.size() && k + 1 < req.matches.size(); ++k) q.params[names[k]] = req.matches[k + 1];
    // The URL's query only: httplib also files form-encoded bodies under params, and clients
    // such as `curl -d` label JSON bodies that way.
    const auto mark = req.target.find('?');
    if (mark != std::string::npos) {
      httplib::Params params;
      httplib::detail::parse_query_text(req.target.substr(mark + 1), params);
      for (const auto& [k, v] : params) q.query.emplace(k, v);
    }
    for (const auto& [k, v] : req.headers) q.headers[lower(k)] = v;
    Response out;
    try {
      out = handler(q);
    } catch (const std::exception& e) {
      out = i.options.exception ? i.options.exception(e) : Response{500, "text/plain", e.what(), {}, {}, {}};
    } catch (...) {
      out = i.options.error ? i.options.error(500, "internal", "unknown error") : Response{500, "text/plain", "error", {}, {}, {}};
    }
    request_principal = out.principal;
    if (out.stream) {
      res.status = out.status;
      for (const auto& [k, v] : out.headers) res.set_header(k, v);
      Stream stream = out.stream;
      res.set_chunked_content_provider(out.content_type.c_str(), [stream](size_t, httplib::DataSink& sink) {
        // httplib calls this outside its handler's try: an exception here would end the
        // process. A stream that fails part-way closes the connection instead, so the client
        // sees a truncated chunked body, never a complete-looking one.
        try {
          stream([&sink](const std::string& piece) { return sink.is_writable() && sink.write(piece.data(), piece.size()); });
        } catch (...) {
          return false;
        }
        sink.done();
        return true;
      });
      return;
    }
    i.fill(out, res);
  };
  // Bodies are read here, piece by piece, and refused with 413 once past max_body_bytes whether
  // they come with a Content-Length or chunked (httplib itself bounds only the former, and read
  // a 200 MB chunked body whole into memory). Past the limit nothing more is kept; the rest is
  // read and dropped up to drain_limit so that the connection stays in step.
  auto with_body = [this, wrapped, pattern](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    Impl& i = *impl_;
    if (req.is_multipart_form_data()) {  // httplib would call receivers doppel never gives it
      request_route = pattern;
      i.refuse(res, 415, "unsupported_media_type", "multipart bodies are not accepted: send JSON");
      return;
    }
    std::string body;
    bool too_large = false;
    size_t seen = 0;
    const bool read = reader([&](const char* data, size_t length) {
      seen += length;
      if (body.size() + length > i.options.max_body_bytes) too_large = true;
      if (too_large) {  // drop what is kept; read on (bounded) so the next request starts in step
        std::string().swap(body);
        return seen <= drain_limit(i.options.max_body_bytes);
      }
      body.append(data, length);
      return true;
    });
    if (too_large || (!read && res.status == 413)) {
      request_route = pattern;
      i.refuse(res, 413, "payload_too_large", "the request body exceeds " + std::to_string(i.options.max_body_bytes) + " bytes");
      return;
    }
    if (!read) {
      request_route = pattern;
      i.refuse(res, 400, "invalid_request", "the request body could not be read (malformed chunked encoding?)");
      return;
    }
    wrapped(req, std::move(body), res);
  };
  auto without_body = [wrapped](const httplib::Request& req, httplib::Response& res) { wrapped(req, req.body, res); };
  if (method == "GET") d.server->Get(re, without_body);
  else if (method == "POST") d.server->Post(re, with_body);
  else if (method == "PUT") d.server->Put(re, with_body);
  else if (method == "DELETE") d.server->Delete(re, with_body);
  else throw std::logic_error("HttpServer::route: unsupported method " + method);
}

int HttpServer::bind() {
  Impl& d = *impl_;
  // Requests with a body that no route takes (an unknown path, another method) are read within
  // the same bound, then answered 404 or 405 by the error handler: httplib would read such a
  // body whole.
  if (!d.catch_all) {
    d.catch_all = true;
    auto drain = [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      Impl& i = *impl_;
      size_t seen = 0;
      const bool read = req.is_multipart_form_data() ||
                        reader([&](const char*, size_t length) { return (seen += length) <= drain_limit(i.options.max_body_bytes); });
      res.status = 404;
      if (!read || seen > i.options.max_body_bytes || req.is_multipart_form_data()) res.set_header("Connection", "close");
    };
    d.server->Post(".*", drain);
    d.server->Put(".*", drain);
    d.server->Patch(".*", drain);
    d.server->Delete(".*", drain);
  }
  if (d.options.port == 0) {
    d.port = d.server->bind_to_any_port(d.options.host);
  } else {
    d.port = d.server->bind_to_port(d.options.host, d.options.port) ? d.options.port : -1;
  }
  if (d.port < 0)
    throw Unavailable("cannot listen on " + d.options.host + ":" + std::to_string(d.options.port) +
                      " (address in use or not permitted)");
  if (d.listen_fd >= 0) ::listen(d.listen_fd, SOMAXCONN);  // a listening socket takes a new backlog
  return d.port;
}

void HttpServer::run() {
  Impl& d = *impl_;
  d.run_entered = true;
  bool listened = true;
  int error = 0;
  if (!d.stop_requested) {
    if (d.front) d.front->start();
    listened = d.server->listen_after_bind();
    error = errno;
    if (d.front) d.front->stop();  // requests being answered finish; waiting connections close
  }
  d.run_exited = true;
  // httplib ends its accept loop on any accept() error but EMFILE, closing the socket: the
  // process would live on without listening. Say so, so that it exits and is restarted.
  if (!listened && !d.stop_requested)
    throw Unavailable("the listening socket on port " + std::to_string(d.port) + " failed (accept: " + std::strerror(error) + ")");
}

void HttpServer::stop() {
  Impl& d = *impl_;
  d.stop_requested = true;
  if (!d.run_entered) return;  // run() will not listen
  // run() is listening or about to: stop it once it runs, until it has returned.
  while (!d.run_exited) {
    if (d.server->is_running()) d.server->stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

struct HttpClient::Impl {
  httplib::Client client;
  Impl(const std::string& host, int port, bool tls)
      : client((tls ? "https://" : "http://") + host + ":" + std::to_string(port)) {}
};

HttpClient::HttpClient(const std::string& host, int port, double timeout_seconds, const ClientTls& tls)
    : impl_(std::make_unique<Impl>(host, port, tls.enabled)) {
  if (tls.enabled) {
    if (!tls.ca_file.empty()) impl_->client.set_ca_cert_path(tls.ca_file.c_str());
    impl_->client.enable_server_certificate_verification(!tls.ca_file.empty());
  }
  const auto secs = static_cast<time_t>(timeout_seconds);
  const auto usecs = static_cast<time_t>((timeout_seconds - static_cast<double>(secs)) * 1e6);
  impl_->client.set_keep_alive(true);
  impl_->client.set_tcp_nodelay(true);
  impl_->client.set_read_timeout(secs, usecs);
  impl_->client.set_write_timeout(secs, usecs);
  impl_->client.set_connection_timeout(secs, usecs);
}

HttpClient::~HttpClient() = default;

Response HttpClient::request(const std::string& method, const std::string& path, const std::string& body,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
  httplib::Headers h;
  std::string type = "application/json";
  for (const auto& [k, v] : headers) {
    if (lower(k) == "content-type") type = v;
    else h.emplace(k, v);
  }
  auto& c = impl_->client;
  auto send = [&]() {
    if (method == "GET") return c.Get(path, h);
    if (method == "POST") return c.Post(path, h, body, type.c_str());
    if (method == "PUT") return c.Put(path, h, body, type.c_str());
    if (method == "DELETE") return c.Delete(path, h, body, type.c_str());
    throw std::logic_error("HttpClient: unsupported method " + method);
  };
  httplib::Result res = send();
  Response out;
  if (!res) {
    out.status = -1;
    out.body = "no answer: " + httplib::to_string(res.error());
    return out;
  }
  out.status = res->status;
  out.body = res->body;
  out.content_type = res->get_header_value("Content-Type");
  for (const auto& [k, v] : res->headers) out.headers.emplace_back(k, v);
  return out;
}

}  // namespace doppel::api
