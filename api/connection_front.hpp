// The connection front of doppel's HTTP server: it owns every accepted socket and decides when a
// worker thread may spend time on it, so that slow, idle or abusive clients cannot take the
// workers away from everyone else.
//
// - A connection waits in one epoll loop (not on a thread) until its request head - request line
//   and headers - has arrived whole. Heads have a deadline (header_timeout_s, slowloris) and a
//   size bound (max_head_bytes, answered 431); idle keep-alive connections close after
//   idle_timeout_s.
// - A complete head goes to the worker pool. Requests with a body ("heavy") may take at most
//   workers - reserved_light workers at once, so bodyless requests (/healthz, /metrics, state
//   reads) always find a worker. A body must arrive within body_timeout_s of its head, and every
//   read or write waits at most read_timeout_s / write_timeout_s for progress.
// - Past max_connections open connections, a new one is answered 503 at once and closed.
// - After a request the connection returns to the loop (keep-alive), with any bytes already read
//   of the next request kept; it closes when the answer said "Connection: close".
// It knows nothing of HTTP beyond finding the end of a head: the serve callback (http_server.cpp,
// over cpp-httplib) parses and answers requests through the Connection it is given.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace doppel::api {

struct FrontOptions {
  int workers = 64;              // threads that serve requests
  int reserved_light = 0;        // of those, kept for bodyless requests (0: max(2, workers / 8))
  size_t max_connections = 1024; // open at once; more are answered 503 and closed
  double idle_timeout_s = 5;     // a keep-alive connection with no new request closes
  double header_timeout_s = 10;  // from a request's first byte to the end of its head (408)
  double body_timeout_s = 60;    // from the end of the head to the end of the body
  double read_timeout_s = 5;     // longest wait for any progress while reading a body
  double write_timeout_s = 10;   // longest wait for any progress while writing an answer
  size_t max_head_bytes = 64 << 10;  // request line and headers (431 past it)
  // Bodies are read in the loop and the request handed on whole, so a slow body holds no
  // worker. A body up to free_body_bytes is read at once. A longer one first reserves what it
  // may hold - its Content-Length, or max_body_bytes when chunked - in body_budget_bytes, which
  // all connections share; the reservation is granted when it fits or when no other is held,
  // and given back once the request is answered, so the bodies in memory (waiting or being
  // served) never pass the budget plus the allowances. Without one, the connection waits
  // unread: TCP holds its client back. Chunked bodies past the allowance and clients waiting
  // for "100 Continue" are then read by their worker (within body_timeout_s); bodies over
  // max_body_bytes too, kept by nobody, so the handler refuses them early.
  size_t max_body_bytes = 64u << 20;
  size_t free_body_bytes = 64 << 10;
  size_t body_budget_bytes = 256u << 20;
  // The JSON body of a refusal the front itself sends (408, 431, 503).
  std::function<std::string(int status, const std::string& type, const std::string& message)> refusal;
};

struct FrontStats {
  size_t open = 0;                 // connections now open
  size_t waiting = 0;              // with a complete request, waiting for a worker
  size_t paused = 0;               // reading stopped: the body budget is spent
  size_t buffered_body_bytes = 0;  // charged to the body budget
  uint64_t accepted = 0;           // since start
  uint64_t refused = 0;            // answered 503: max_connections reached
  uint64_t head_timeouts = 0;      // answered 408: head not complete in header_timeout_s
  uint64_t body_timeouts = 0;      // answered 408: body not complete in body_timeout_s
  uint64_t idle_closed = 0;        // keep-alive connections closed after idle_timeout_s
  uint64_t oversized_heads = 0;    // answered 431
  uint64_t malformed_heads = 0;    // answered 400: a Content-Length that frames no body
  uint64_t io_timeouts = 0;        // reads or writes that made no progress in time (closed)
};

class ConnectionFront;

// One client connection as a worker sees it while serving a request on it.
class Connection {
 public:
  // Up to size bytes of the request (what the loop already read first); 0 at the end of the
  // stream, -1 on a timeout (read_timeout_s without progress, or past the body's deadline) or an
  // error.
  ssize_t read(char* data, size_t size);
  // The whole buffer, or -1 (timeout or error). The first write of a response head is checked
  // for "Connection: close".
  ssize_t write(const char* data, size_t size);
  bool readable();  // a read would not block (waits up to read_timeout_s)
  bool writable();  // the peer is there and a write would not block (waits up to write_timeout_s)
  int fd() const { return fd_; }
  const std::string& peer_ip() const { return peer_ip_; }
  int peer_port() const { return peer_port_; }
  const std::string& local_ip() const { return local_ip_; }
  int local_port() const { return local_port_; }
  // After the request: the answer asked to close, or the front is stopping.
  bool must_close() const;

 private:
  friend class ConnectionFront;
  using Clock = std::chrono::steady_clock;
  enum class State { idle, ready, busy };
  enum class Body { none, length, chunked, streamed };  // streamed: read by the worker
  Connection(ConnectionFront& front, int fd);
  bool wait(short events, double timeout_s);
  void begin_request();

  ConnectionFront& front_;
  int fd_;
  std::string peer_ip_, local_ip_;
  int peer_port_ = 0, local_port_ = 0;
  std::string buffer_;  // read from the socket, not yet consumed
  size_t consumed_ = 0;
  size_t scanned_ = 0;            // of buffer_, searched for the end of the head
  State state_ = State::idle;
  bool heavy_ = false;
  bool head_started_ = false;
  bool head_complete_ = false;
  size_t head_end_ = 0;           // offset in buffer_ just past the head
  Body body_ = Body::none;
  long long content_length_ = -1;
  size_t chunk_at_ = 0, chunk_left_ = 0;  // chunked framing scanned so far
  int chunk_state_ = 0;           // 0 size line, 1 data, 2 trailers, 3 complete
  size_t reserve_ = 0;            // what the body may hold, to reserve past the allowance
  bool expect_ = false;           // the client waits for "100 Continue"
  size_t charged_ = 0;            // of the body budget (until the request is answered)
  bool paused_ = false;           // waiting for body budget
  Clock::time_point body_from_;   // the head's end
  bool peer_done_ = false;        // the client shut down its side (half-close)
  bool close_after_ = false;      // the answer said "Connection: close"
  bool response_head_seen_ = false;
  uint64_t sequence_ = 0;
  Clock::time_point since_;       // idle since, or the head's first byte
  Clock::time_point body_deadline_;
};

class ConnectionFront {
 public:
  // serve: answers one request on the connection; false closes it.
  ConnectionFront(FrontOptions options, std::function<bool(Connection&)> serve);
  ~ConnectionFront();
  ConnectionFront(const ConnectionFront&) = delete;
  ConnectionFront& operator=(const ConnectionFront&) = delete;

  void start();
  // Takes an accepted socket (any thread); it is closed by the front.
  void adopt(int fd);
  // Closes every waiting connection, lets the requests being served finish, joins the threads.
  void stop();
  FrontStats stats() const;
  const FrontOptions& options() const;

 private:
  friend class Connection;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::api
