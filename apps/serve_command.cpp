#include "apps/serve_command.hpp"

#include <malloc.h>

#include <csignal>
#include <ctime>
#include <iostream>
#include <mutex>
#include <cerrno>
#include <unistd.h>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/auth.hpp"
#include "api/config.hpp"
#include "api/errors.hpp"
#include "api/time.hpp"
#include "api/service.hpp"
#include "apps/solve_command.hpp"
#include "apps/train_command.hpp"
#include "kernels/backend.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel::app {

namespace {

// SIGTERM / SIGINT: the handler (any thread may run it: libraries start threads before main)
// only writes the signal number to a pipe; a thread reading it stops the server.
int signal_pipe[2] = {-1, -1};
extern "C" void on_signal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] const auto n = write(signal_pipe[1], &c, 1);
}

std::mutex log_mutex;
void log_line(const nlohmann::ordered_json& j) {
  std::lock_guard<std::mutex> lock(log_mutex);
  std::cerr << api::dump_text(j) << std::endl;
}

}  // namespace

int run_serve(const ServeArgs& args) {
  // glibc gives every thread that allocates its own malloc arena (up to 8 per core), and keeps
  // what each one grew to: with 64 HTTP threads each large body left ~380 MB behind in a new
  // arena. Four arenas bound that, at little cost in contention.
  mallopt(M_ARENA_MAX, 4);
  if (args.threads > 0) set_host_threads(args.threads);
  DOPPEL_VERIFY(!args.twins.empty(), "--twin", "at least one twin is required");
  DOPPEL_VERIFY(args.port >= 0 && args.port <= 65535, "--port", "must lie in [0, 65535]");
  api::ServerConfig config = args.config.empty() ? api::ServerConfig{} : api::load_server_config(args.config);
  if (args.max_sync) {
    DOPPEL_VERIFY(*args.max_sync >= 1, "--max-sync", "must be at least 1");
    config.max_sync_scenarios = *args.max_sync;
  }
  if (args.max_body_mb) {
    DOPPEL_VERIFY(*args.max_body_mb >= 1 && *args.max_body_mb <= 4096, "--max-body-mb", "must lie in [1, 4096]");
    config.max_body_mb = *args.max_body_mb;
  }
  if (args.batching) {
    DOPPEL_VERIFY(*args.batching == "on" || *args.batching == "off", "--batching", "must be on or off");
    config.batching = *args.batching == "on";
  }
  if (args.max_batch) {
    DOPPEL_VERIFY(*args.max_batch >= 1, "--max-batch", "must be at least 1");
    config.max_batch = *args.max_batch;
  }
  if (args.max_queue_delay_ms) {
    DOPPEL_VERIFY(*args.max_queue_delay_ms >= 0 && *args.max_queue_delay_ms <= 10000, "--max-queue-delay-ms",
                  "must lie in [0, 10000]");
    config.max_queue_delay_ms = *args.max_queue_delay_ms;
  }
  if (args.database) config.database = *args.database;
  DOPPEL_VERIFY(config.max_sync_scenarios <= config.max_job_scenarios, "--max-sync",
                "must not exceed limits.max_job_scenarios (" + std::to_string(config.max_job_scenarios) + ")");
  api::check_exposure(args.host, config.tokens);
  const Backend backend = select_backend(args.backend);
  const std::string device = inference_device(args.device, backend == Backend::cuda);

  if (pipe(signal_pipe) != 0) throw std::runtime_error("cannot create the signal pipe");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  api::TwinRegistry twins;
  api::ServiceOptions so;
  so.max_sync_scenarios = config.max_sync_scenarios;
  so.max_job_scenarios = config.max_job_scenarios;
  so.batching = config.batching;
  so.batching_options.max_batch = config.max_batch;
  so.batching_options.max_queue_delay_s = config.max_queue_delay_ms * 1e-3;
  so.jobs.chunk = config.job_chunk;
  so.jobs.fem_chunk = config.job_fem_chunk ? config.job_fem_chunk : backend == Backend::cuda ? 1024 : 64;
  so.database = config.database;
  so.max_readings = config.max_readings;
  so.max_clock_skew_s = config.max_clock_skew_s;
  so.live.estimator.members = config.members;
  so.live.estimator.inflation = config.inflation;
  so.live.estimator.drift = config.drift;
  so.live.estimator.outlier_gate = config.outlier_gate;
  so.live.silent_after_s = config.silent_after_s;
  so.live.max_compute_s = config.max_compute_s;
  so.live.alert_probability = config.alert_probability;
  so.live.alert_horizon_s = config.alert_horizon_s;
  so.live.drift_threshold = config.drift_threshold;
  so.tokens = config.tokens;
  so.gpu_metrics = backend == Backend::cuda || device == "cuda";
  so.log = log_line;
  so.batch = batch_options_for(backend, "auto", 1e-10);
  so.batch.keep_first_fields = false;
  api::Service service(twins, so);
  api::ServerOptions options;
  options.host = args.host;
  options.port = args.port;
  options.max_body_bytes = config.max_body_mb << 20;
  options.threads = config.http_threads;
  options.max_connections = config.max_connections;
  options.idle_timeout_s = config.idle_timeout_s;
  options.header_timeout_s = config.header_timeout_s;
  options.body_timeout_s = config.body_timeout_s;
  options.io_timeout_s = config.io_timeout_s;
  options.tls_cert = config.tls_cert;
  options.tls_key = config.tls_key;
  options.error = [](int status, const std::string& type, const std::string& message) {
    return api::error_response(status, type, message);
  };
  options.exception = [](const std::exception& e) { return api::response_for(e); };
  const bool quiet = args.quiet;
  options.log = [&service, quiet](const api::RequestLog& l) {
    service.metrics().request(l.route, l.method, l.status, l.seconds);
    if (!quiet) {
      nlohmann::ordered_json line = {{"time", api::utc_now()}, {"method", l.method}, {"path", l.path}, {"status", l.status},
                                      {"latency_ms", l.seconds * 1e3}, {"bytes", l.bytes}, {"remote", l.remote_addr}};
      if (!l.principal.empty()) line["token"] = l.principal;  // the token's name, never its secret
      log_line(line);
    }
  };
  api::HttpServer server(options);
  service.add_routes(server);
  const int port = server.bind();
  log_line({{"time", api::utc_now()}, {"event", "listening"}, {"host", args.host}, {"port", port},
            {"tls", !config.tls_cert.empty()}, {"auth", !config.tokens.empty()}, {"batching", config.batching},
            {"database", config.database}});

  int exit_code = 0;
  std::thread loader([&] {
    try {
      twins.load(args.twins, args.bundles, device);
      for (const auto& e : twins.entries())
        for (const auto& w : e->model->warnings())
          log_line({{"time", api::utc_now()}, {"event", "twin_warning"}, {"twin", e->id}, {"message", w}});
      service.start();
      log_line({{"time", api::utc_now()}, {"event", "ready"}, {"twins", twins.entries().size()}});
    } catch (const std::exception& e) {
      log_line({{"time", api::utc_now()}, {"event", "load_failed"}, {"error", e.what()}});
      exit_code = dynamic_cast<const InvalidInput*>(&e) ? 2 : 1;
      server.stop();
    }
  });
  std::thread waiter([&] {
    char c = 0;
    while (read(signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    if (c == SIGTERM || c == SIGINT) {
      log_line({{"time", api::utc_now()}, {"event", "shutdown"}, {"signal", c == SIGTERM ? "SIGTERM" : "SIGINT"}});
      service.begin_shutdown();
      server.stop();
    }
  });
  try {
    server.run();
  } catch (const std::exception& e) {
    // The listener failed: stop cleanly and exit non-zero, so that a supervisor restarts us.
    log_line({{"time", api::utc_now()}, {"event", "listener_failed"}, {"error", e.what()}});
    exit_code = 1;
    service.begin_shutdown();
  }
  loader.join();
  // Wake the signal thread if the server stopped for another reason.
  const char zero = 0;
  [[maybe_unused]] const auto n = write(signal_pipe[1], &zero, 1);
  waiter.join();
  service.stop();
  log_line({{"time", api::utc_now()}, {"event", "stopped"}});
  return exit_code;
}

}  // namespace doppel::app
