// One compute worker per twin: it owns the twin's device work. Concurrent scenario requests are
// queued and gathered into one batch (up to max_batch scenarios, waiting at most
// max_queue_delay for others to join the first), as inference servers do; between batches it
// runs one chunk of the twin's background jobs, so interactive requests wait at most one chunk
// behind a large optimization job. The wait only lasts while requests that announced
// themselves (expect()) are still on their way to the queue: a lone client never waits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "api/metrics.hpp"
#include "surrogate/fidelity.hpp"

namespace doppel::api {

struct BatchingOptions {
  size_t max_batch = 4096;
  double max_queue_delay_s = 0.002;
};

class TwinWorker {
 public:
  // background: runs one unit of job work; false when there is none.
  TwinWorker(std::string twin, std::function<AnswerSet(const std::vector<spec::Scenario>&, const AnswerOptions&)> answer,
             BatchingOptions options, Metrics& metrics, std::function<bool()> background);
  ~TwinWorker();
  TwinWorker(const TwinWorker&) = delete;
  TwinWorker& operator=(const TwinWorker&) = delete;

  // A request for this twin has arrived and will (probably) call answer(): the batch being
  // gathered waits for it. Destroy the token when the request does not call answer().
  class Arrival {
   public:
    explicit Arrival(TwinWorker& w);
    ~Arrival();
    Arrival(const Arrival&) = delete;
    Arrival& operator=(const Arrival&) = delete;
    // Queues the scenarios and waits for their answers; rethrows what answering them threw.
    AnswerSet answer(std::vector<spec::Scenario> scenarios, const AnswerOptions& options);

   private:
    TwinWorker& w_;
    bool queued_ = false;
  };
  AnswerSet answer(std::vector<spec::Scenario> scenarios, const AnswerOptions& options) {
    return Arrival(*this).answer(std::move(scenarios), options);
  }
  void wake();  // new background work
  void stop();  // finishes queued requests, then returns
  size_t queued_requests() const;
  size_t queued_scenarios() const;

 private:
  struct Pending {
    std::vector<spec::Scenario> scenarios;
    AnswerOptions options;
    std::promise<AnswerSet> result;
    std::chrono::steady_clock::time_point since;
  };
  void loop();
  void run_batch(std::vector<std::unique_ptr<Pending>>& batch);

  std::string twin_;
  std::function<AnswerSet(const std::vector<spec::Scenario>&, const AnswerOptions&)> answer_;
  BatchingOptions options_;
  Metrics& metrics_;
  std::function<bool()> background_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Pending>> queue_;
  size_t queued_scenarios_ = 0;
  size_t arriving_ = 0;  // announced requests not queued yet
  unsigned long wakes_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

// The answers of scenarios [first, first + count) of a set, as their own set.
AnswerSet slice_answers(const AnswerSet& set, size_t first, size_t count);

}  // namespace doppel::api
