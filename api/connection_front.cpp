#include "api/connection_front.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace doppel::api {

namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t, Clock::time_point now) { return std::chrono::duration<double>(now - t).count(); }

int timeout_ms(double seconds) { return seconds <= 0 ? 0 : static_cast<int>(std::min(seconds * 1000.0 + 0.999, 3.6e6)); }

// The end of a request head ("\r\n\r\n", or bare "\n\n" as lenient parsers accept) at or after
// `from`, as the offset just past it; npos while incomplete.
size_t head_end(const std::string& b, size_t from) {
  for (size_t i = from; i < b.size(); ++i) {
    if (b[i] != '\n') continue;
    if (i + 1 < b.size() && b[i + 1] == '\n') return i + 2;
    if (i + 2 < b.size() && b[i + 1] == '\r' && b[i + 2] == '\n') return i + 3;
  }
  return std::string::npos;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// What a request head says of its body.
struct HeadFacts {
  long long content_length = -1;  // -1: none
  bool chunked = false, expect_continue = false, malformed_length = false;
};

HeadFacts head_facts(const std::string& head) {
  HeadFacts f;
  const std::string h = lower(head);
  auto value = [&](size_t at) {
    size_t i = h.find(':', at) + 1, e = h.find('\n', i);
    std::string v = h.substr(i, e == std::string::npos ? std::string::npos : e - i);
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    size_t b = 0;
    while (b < v.size() && std::isspace(static_cast<unsigned char>(v[b]))) ++b;
    return v.substr(b);
  };
  for (size_t at = h.find("\ntransfer-encoding:"); at != std::string::npos; at = h.find("\ntransfer-encoding:", at + 1))
    f.chunked = true;  // any transfer coding: framed by chunks (httplib reads chunked only)
  for (size_t at = h.find("\nexpect:"); at != std::string::npos; at = h.find("\nexpect:", at + 1))
    if (value(at + 1) == "100-continue") f.expect_continue = true;
  for (size_t at = h.find("\ncontent-length:"); at != std::string::npos; at = h.find("\ncontent-length:", at + 1)) {
    const std::string v = value(at + 1);
    if (v.empty() || v.size() > 15 || v.find_first_not_of("0123456789") != std::string::npos) {
      f.malformed_length = true;
      continue;
    }
    const long long n = std::stoll(v);
    if (f.content_length >= 0 && f.content_length != n) f.malformed_length = true;
    f.content_length = n;
  }
  return f;
}

const char* reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t n = sizeof a;
  const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  if (r != 0) return;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&a), n, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    ip = host;
    port = std::atoi(serv);
  }
}
}  // namespace

struct ConnectionFront::Impl {
  FrontOptions options;
  std::function<bool(Connection&)> serve;
  int epoll_fd = -1, wake_fd = -1;
  mutable std::mutex m;
  std::condition_variable work;
  std::unordered_map<int, std::unique_ptr<Connection>> connections;
  std::deque<Connection*> light, heavy;  // complete requests waiting for a worker
  std::vector<Connection*> paused;       // waiting for body budget
  size_t body_charged = 0;               // buffered body bytes past the free allowances
  int heavy_active = 0, heavy_cap = 1;
  uint64_t sequence = 0;
  FrontStats stats;
  std::atomic<bool> stopping{false};
  bool started = false;
  std::thread loop;
  std::vector<std::thread> workers;

  // Sends a refusal of the front's own and closes (with m held, or before the connection is
  // shared). Best effort: the socket is not waited on.
  void refuse_and_close(Connection& c, int status, const std::string& type, const std::string& message) {
    const std::string body = options.refusal ? options.refusal(status, type, message) : message + "\n";
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\nContent-Type: " +
                      (options.refusal ? "application/json" : "text/plain") + "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n";
    if (status == 503) out += "Retry-After: 1\r\n";
    out += "\r\n" + body;
    (void)::send(c.fd_, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    close_locked(c, true);
  }

  void close_locked(Connection& c, bool graceful) {
    const int fd = c.fd_;
    if (c.paused_) paused.erase(std::remove(paused.begin(), paused.end(), &c), paused.end());
    c.paused_ = false;
    release(c);
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    if (graceful) {
      // Unread input would make the close a reset that can destroy the answer just sent.
      ::shutdown(fd, SHUT_WR);
      char sink[4096];
      for (int i = 0; i < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
      }
    }
    ::close(fd);
    connections.erase(fd);  // destroys c
  }

  void arm(Connection& c, int op) {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    e.data.ptr = &c;
    ::epoll_ctl(epoll_fd, op, c.fd_, &e);
  }

  // With m held: gives back what a connection's buffered body held of the budget, and lets the
  // connections that waited for it read again.
  void release(Connection& c) {
    if (c.charged_ == 0) return;
    body_charged -= c.charged_;
    c.charged_ = 0;
    std::vector<Connection*> waiting;
    waiting.swap(paused);
    for (Connection* p : waiting) {
      p->paused_ = false;
      if (p->expect_) settle(*p, false);  // its client sends nothing until answered
      else arm(*p, EPOLL_CTL_MOD);
    }
  }

  // The body stays charged while the request waits in the queue: the budget bounds those too.
  void dispatch(Connection& c) {
    c.state_ = Connection::State::ready;
    c.sequence_ = ++sequence;
    (c.heavy_ ? heavy : light).push_back(&c);
    work.notify_one();
  }

  // With m held: where the connection stands once new bytes are in (or after a request): a
  // complete request goes to the workers, anything else back to the loop.
  void settle(Connection& c, bool fresh) {
    if (!c.head_complete_) {
      // Scan only what is new (a head trickling in byte by byte is not rescanned from its start).
      const size_t end = head_end(c.buffer_, c.scanned_ > 2 ? c.scanned_ - 2 : 0);
      c.scanned_ = c.buffer_.size();
      if (end == std::string::npos) {
        if (c.buffer_.size() > options.max_head_bytes) {
          ++stats.oversized_heads;
          return refuse_and_close(c, 431, "header_too_large",
                                  "the request line and headers exceed " + std::to_string(options.max_head_bytes) + " bytes");
        }
        if (c.peer_done_) return close_locked(c, false);
        c.state_ = Connection::State::idle;
        return arm(c, fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD);
      }
      c.head_complete_ = true;
      c.head_end_ = end;
      c.body_from_ = Clock::now();
      const HeadFacts f = head_facts(c.buffer_.substr(0, end));
      if (f.malformed_length) {
        // Two parsers that frame the body differently are how requests get smuggled: refuse.
        ++stats.malformed_heads;
        return refuse_and_close(c, 400, "invalid_request",
                                "Content-Length is not a decimal number, or is given twice with different values");
      }
      c.heavy_ = f.chunked || f.content_length > 0;
      c.body_ = Connection::Body::none;
      if (f.chunked) c.body_ = Connection::Body::chunked;
      else if (f.content_length > 0) c.body_ = Connection::Body::length;
      c.content_length_ = f.content_length;
      // What the body may hold in memory, to reserve past the free allowance: its length, or
      // for chunked bodies the most they may be.
      const bool refused = f.malformed_length || (f.content_length > 0 && static_cast<size_t>(f.content_length) > options.max_body_bytes);
      c.reserve_ = refused ? 0 : f.content_length > 0 ? static_cast<size_t>(f.content_length) : f.chunked ? options.max_body_bytes : 0;
      // Read by the worker as it comes: a body the handler refuses unread (too large, or a
      // length that is no number), and the body of a client waiting for "100 Continue" (once
      // its reservation is granted).
      c.expect_ = f.expect_continue && !refused;
      if (refused || c.expect_) c.body_ = Connection::Body::streamed;
      c.chunk_at_ = end;
      c.chunk_state_ = 0;
    }
    c.state_ = Connection::State::idle;
    if (c.expect_ && !may_read(c)) return;  // settled again by release()
    if (body_complete(c)) return dispatch(c);
    if (c.peer_done_) return close_locked(c, false);
    if (!may_read(c)) return;  // resumed by release() (a fresh connection has no head yet)
    arm(c, fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD);
  }

  // Whether the buffer holds the whole request (a streamed body: as soon as the head is in).
  bool body_complete(Connection& c) {
    switch (c.body_) {
      case Connection::Body::none:
      case Connection::Body::streamed:
        return true;
      case Connection::Body::length:
        return c.buffer_.size() - c.head_end_ >= static_cast<size_t>(c.content_length_);
      case Connection::Body::chunked:
        break;
    }
    // Chunked framing, resumed where the last look stopped: size line, data, CRLF, ...; a zero
    // size, trailers, an empty line. Anything malformed is handed on for the parser to refuse.
    const std::string& b = c.buffer_;
    for (;;) {
      if (c.chunk_state_ == 3) return true;  // found before: asking again changes nothing
      if (c.chunk_state_ == 1) {  // data and its CRLF
        if (b.size() - c.chunk_at_ < c.chunk_left_ + 2) return false;
        c.chunk_at_ += c.chunk_left_ + 2;
        c.chunk_state_ = 0;
        continue;
      }
      const size_t eol = b.find("\r\n", c.chunk_at_);
      if (eol == std::string::npos) {
        if (b.size() - c.chunk_at_ > 4096) return hand_on(c);
        return false;
      }
      const std::string line = b.substr(c.chunk_at_, eol - c.chunk_at_);
      c.chunk_at_ = eol + 2;
      if (c.chunk_state_ == 2) {  // trailers
        if (line.empty()) c.chunk_state_ = 3;
        continue;
      }
      size_t size = 0, digits = 0;
      for (char ch : line) {
        if (ch == ';' || ch == ' ' || ch == '\t') break;
        const int v = std::isdigit(static_cast<unsigned char>(ch)) ? ch - '0'
                      : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
        if (v < 0 || ++digits > 15) return hand_on(c);
        size = size * 16 + static_cast<size_t>(v);
      }
      if (digits == 0) return hand_on(c);
      if (size == 0) {
        c.chunk_state_ = 2;
        continue;
      }
      if (c.chunk_at_ - c.head_end_ + size > options.max_body_bytes) return hand_on(c);  // the handler answers 413
      c.chunk_left_ = size;
      c.chunk_state_ = 1;
    }
  }
  bool hand_on(Connection& c) {
    c.body_ = Connection::Body::streamed;
    return true;
  }

  // With m held: whether the loop may read the connection's body now. A body that may hold
  // more than the free allowance is read (or, waiting for "100 Continue", handed on) only once
  // it holds a reservation of that size in the budget - a Content-Length body at once, a
  // chunked one when it passes the allowance. A reservation is granted when it fits, or when no
  // other is held (so one always proceeds and reservations cannot deadlock); it is given back
  // when the request has been answered. Otherwise the connection waits, unread (TCP holds the
  // client back), until one is released.
  bool may_read(Connection& c) {
    if (!c.head_complete_ || c.charged_ > 0 || c.reserve_ <= options.free_body_bytes) return true;
    const bool needed = c.expect_ || c.body_ == Connection::Body::length ||
                        (c.body_ == Connection::Body::chunked && c.buffer_.size() - c.head_end_ > options.free_body_bytes);
    if (!needed) return true;
    if (body_charged == 0 || body_charged + c.reserve_ <= options.body_budget_bytes) {
      c.charged_ = c.reserve_;
      body_charged += c.reserve_;
      return true;
    }
    if (!c.paused_) {
      c.paused_ = true;
      paused.push_back(&c);
    }
    return false;
  }

  // With m held: reads what the socket has for a connection in the loop.
  void on_readable(Connection& c) {
    if (!may_read(c)) return;
    char chunk[16384];
    for (;;) {
      const ssize_t r = ::recv(c.fd_, chunk, sizeof chunk, MSG_DONTWAIT);
      if (r > 0) {
        if (!c.head_started_) {
          c.head_started_ = true;
          c.since_ = Clock::now();
        }
        c.buffer_.append(chunk, static_cast<size_t>(r));
        if (c.head_complete_) {
          // A chunked body past the allowance is read by its worker, within its reservation.
          if (c.body_ == Connection::Body::chunked && c.buffer_.size() - c.head_end_ > options.free_body_bytes) {
            if (!may_read(c)) return;  // paused
            hand_on(c);
          }
          if (body_complete(c)) break;
        } else {
          // settle() takes it from here once the head is whole (then perhaps its body).
          if (c.buffer_.size() > options.max_head_bytes || head_end(c.buffer_, c.scanned_ > 2 ? c.scanned_ - 2 : 0) != std::string::npos)
            break;
          c.scanned_ = c.buffer_.size();
        }
        continue;
      }
      if (r == 0) {
        c.peer_done_ = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return close_locked(c, false);
    }
    settle(c, false);
  }

  void sweep(Clock::time_point now) {
    std::vector<Connection*> late_heads, late_bodies, idle;
    for (auto& [fd, c] : connections) {
      if (c->state_ != Connection::State::idle) continue;
      if (c->head_complete_) {
        if (seconds_since(c->body_from_, now) > options.body_timeout_s) late_bodies.push_back(c.get());
      } else if (c->head_started_) {
        if (seconds_since(c->since_, now) > options.header_timeout_s) late_heads.push_back(c.get());
      } else if (seconds_since(c->since_, now) > options.idle_timeout_s) {
        idle.push_back(c.get());
      }
    }
    for (Connection* c : late_heads) {
      ++stats.head_timeouts;
      refuse_and_close(*c, 408, "request_timeout",
                       "the request head did not arrive within " + std::to_string(options.header_timeout_s) + " s");
    }
    for (Connection* c : late_bodies) {
      ++stats.body_timeouts;
      refuse_and_close(*c, 408, "request_timeout",
                       "the request body did not arrive within " + std::to_string(options.body_timeout_s) + " s of its head");
    }
    for (Connection* c : idle) {
      ++stats.idle_closed;
      close_locked(*c, false);
    }
  }

  void run_loop() {
    std::vector<epoll_event> events(256);
    auto last_sweep = Clock::now();
    while (!stopping) {
      const int n = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 100);
      std::lock_guard<std::mutex> lock(m);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.ptr == nullptr) {  // the wake-up
          uint64_t v;
          (void)::read(wake_fd, &v, sizeof v);
          continue;
        }
        auto* c = static_cast<Connection*>(events[i].data.ptr);
        if (c->state_ == Connection::State::idle) on_readable(*c);
      }
      const auto now = Clock::now();
      if (seconds_since(last_sweep, now) >= 0.1) {
        sweep(now);
        last_sweep = now;
      }
    }
  }

  void run_worker() {
    for (;;) {
      Connection* c = nullptr;
      {
        std::unique_lock<std::mutex> lock(m);
        work.wait(lock, [&] { return stopping || !light.empty() || (!heavy.empty() && heavy_active < heavy_cap); });
        if (stopping && light.empty() && heavy.empty()) return;
        const bool heavy_ok = !heavy.empty() && heavy_active < heavy_cap;
        if (!light.empty() && (!heavy_ok || light.front()->sequence_ < heavy.front()->sequence_)) {
          c = light.front();
          light.pop_front();
        } else if (heavy_ok) {
          c = heavy.front();
          heavy.pop_front();
          ++heavy_active;
        } else {
          continue;
        }
        c->state_ = Connection::State::busy;
      }
      bool keep = false;
      c->begin_request();
      try {
        keep = serve(*c);
      } catch (...) {
        keep = false;
      }
      std::lock_guard<std::mutex> lock(m);
      release(*c);  // the body and what was made of it are gone
      if (c->heavy_) {
        --heavy_active;
        work.notify_one();
      }
      if (!keep || c->must_close()) {
        close_locked(*c, keep);
        continue;
      }
      // Keep-alive: what was read of the next request stays; the rest comes through the loop.
      if (c->consumed_ >= c->buffer_.size()) {
        c->buffer_.clear();
      } else {
        c->buffer_.erase(0, c->consumed_);
      }
      c->consumed_ = 0;
      c->scanned_ = 0;
      c->head_started_ = !c->buffer_.empty();
      c->head_complete_ = false;
      c->since_ = Clock::now();
      c->heavy_ = false;
      c->expect_ = false;
      c->reserve_ = 0;
      c->close_after_ = false;
      c->response_head_seen_ = false;
      settle(*c, false);
    }
  }
};

Connection::Connection(ConnectionFront& front, int fd) : front_(front), fd_(fd), since_(Clock::now()) {
  address_of(fd, true, peer_ip_, peer_port_);
  address_of(fd, false, local_ip_, local_port_);
}

void Connection::begin_request() { body_deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(front_.options().body_timeout_s)); }

bool Connection::must_close() const { return close_after_ || peer_done_ || front_.impl_->stopping; }

bool Connection::wait(short events, double timeout_s) {
  pollfd p{fd_, events, 0};
  for (;;) {
    const int r = ::poll(&p, 1, timeout_ms(timeout_s));
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

bool Connection::readable() {
  if (consumed_ < buffer_.size() || peer_done_) return true;
  return wait(POLLIN, front_.options().read_timeout_s);
}

bool Connection::writable() {
  pollfd p{fd_, POLLOUT, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms(front_.options().write_timeout_s));
  } while (r < 0 && errno == EINTR);
  return r > 0 && !(p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

ssize_t Connection::read(char* data, size_t size) {
  if (consumed_ < buffer_.size()) {
    const size_t n = std::min(size, buffer_.size() - consumed_);
    std::memcpy(data, buffer_.data() + consumed_, n);
    consumed_ += n;
    if (consumed_ == buffer_.size()) {
      buffer_.clear();
      consumed_ = 0;
      scanned_ = 0;
    }
    return static_cast<ssize_t>(n);
  }
  if (peer_done_) return 0;
  const FrontOptions& o = front_.options();
  for (;;) {
    const double left = std::min(o.read_timeout_s, std::chrono::duration<double>(body_deadline_ - Clock::now()).count());
    if (left <= 0 || !wait(POLLIN, left)) {
      std::lock_guard<std::mutex> lock(front_.impl_->m);
      ++front_.impl_->stats.io_timeouts;
      return -1;
    }
    const ssize_t r = ::recv(fd_, data, size, MSG_DONTWAIT);
    if (r > 0) return r;
    if (r == 0) {
      peer_done_ = true;
      return 0;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
  }
}

ssize_t Connection::write(const char* data, size_t size) {
  if (!response_head_seen_ && !(size >= 10 && std::memcmp(data, "HTTP/1.1 1", 10) == 0)) {
    // The response head comes in one write (httplib buffers it): does it close the connection?
    response_head_seen_ = true;
    std::string head(data, size);
    const size_t end = head.find("\r\n\r\n");
    if (end != std::string::npos) head.resize(end + 2);
    if (lower(head).find("\r\nconnection: close\r\n") != std::string::npos) close_after_ = true;
  }
  size_t sent = 0;
  while (sent < size) {
    const ssize_t r = ::send(fd_, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      sent += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait(POLLOUT, front_.options().write_timeout_s)) continue;
      std::lock_guard<std::mutex> lock(front_.impl_->m);
      ++front_.impl_->stats.io_timeouts;
    }
    return -1;
  }
  return static_cast<ssize_t>(size);
}

ConnectionFront::ConnectionFront(FrontOptions options, std::function<bool(Connection&)> serve) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->serve = std::move(serve);
  FrontOptions& o = impl_->options;
  o.workers = std::max(1, o.workers);
  if (o.reserved_light <= 0) o.reserved_light = std::max(2, o.workers / 8);
  impl_->heavy_cap = std::max(1, o.workers - o.reserved_light);
  o.max_connections = std::max<size_t>(1, o.max_connections);
}

ConnectionFront::~ConnectionFront() { stop(); }

const FrontOptions& ConnectionFront::options() const { return impl_->options; }

void ConnectionFront::start() {
  Impl& d = *impl_;
  if (d.started) return;
  // Each connection is a descriptor: make room for max_connections (the soft limit is often 1024).
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    const rlim_t want = static_cast<rlim_t>(d.options.max_connections + 256);
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
      lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
  }
  d.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  d.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (d.epoll_fd < 0 || d.wake_fd < 0) throw std::runtime_error(std::string("connection front: ") + std::strerror(errno));
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.ptr = nullptr;
  ::epoll_ctl(d.epoll_fd, EPOLL_CTL_ADD, d.wake_fd, &e);
  d.started = true;
  d.loop = std::thread([&d] { d.run_loop(); });
  for (int i = 0; i < d.options.workers; ++i) d.workers.emplace_back([&d] { d.run_worker(); });
}

void ConnectionFront::adopt(int fd) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.m);
  if (!d.started || d.stopping) {
    ::close(fd);
    return;
  }
  ++d.stats.accepted;
  auto owned = std::unique_ptr<Connection>(new Connection(*this, fd));
  Connection& c = *owned;
  d.connections[fd] = std::move(owned);
  if (d.connections.size() > d.options.max_connections) {
    ++d.stats.refused;
    return d.refuse_and_close(c, 503, "unavailable",
                              "too many open connections (" + std::to_string(d.options.max_connections) + "): retry later");
  }
  d.settle(c, true);
}

void ConnectionFront::stop() {
  Impl& d = *impl_;
  if (!d.started) return;
  d.stopping = true;
  uint64_t one = 1;
  (void)::write(d.wake_fd, &one, sizeof one);
  if (d.loop.joinable()) d.loop.join();
  {
    std::lock_guard<std::mutex> lock(d.m);
    d.light.clear();
    d.heavy.clear();
    std::vector<Connection*> waiting;
    for (auto& [fd, c] : d.connections)
      if (c->state_ != Connection::State::busy) waiting.push_back(c.get());
    for (Connection* c : waiting) d.close_locked(*c, false);
    d.work.notify_all();
  }
  for (auto& t : d.workers)
    if (t.joinable()) t.join();
  d.workers.clear();
  std::lock_guard<std::mutex> lock(d.m);
  for (auto& [fd, c] : d.connections) ::close(fd);
  d.connections.clear();
  ::close(d.epoll_fd);
  ::close(d.wake_fd);
  d.started = false;
}

FrontStats ConnectionFront::stats() const {
  std::lock_guard<std::mutex> lock(impl_->m);
  FrontStats s = impl_->stats;
  s.open = impl_->connections.size();
  s.waiting = impl_->light.size() + impl_->heavy.size();
  s.paused = impl_->paused.size();
  s.buffered_body_bytes = impl_->body_charged;
  return s;
}

}  // namespace doppel::api
