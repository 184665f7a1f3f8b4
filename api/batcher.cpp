#include "api/batcher.hpp"

#include "spec/errors.hpp"

namespace doppel::api {

using Clock = std::chrono::steady_clock;

AnswerSet slice_answers(const AnswerSet& set, size_t first, size_t count) {
  AnswerSet out;
  out.times = set.times;
  out.answers.assign(set.answers.begin() + static_cast<std::ptrdiff_t>(first),
                     set.answers.begin() + static_cast<std::ptrdiff_t>(first + count));
  for (const auto& a : out.answers) (a.surrogate ? out.surrogate_answers : out.fem_answers) += 1;
  if (first == 0) {
    out.factorizations = set.factorizations;
    out.first_fields = set.first_fields;
  }
  return out;
}

TwinWorker::TwinWorker(std::string twin,
                       std::function<AnswerSet(const std::vector<spec::Scenario>&, const AnswerOptions&)> answer,
                       BatchingOptions options, Metrics& metrics, std::function<bool()> background)
    : twin_(std::move(twin)), answer_(std::move(answer)), options_(options), metrics_(metrics),
      background_(std::move(background)) {
  thread_ = std::thread([this] { loop(); });
}

TwinWorker::~TwinWorker() { stop(); }

void TwinWorker::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TwinWorker::wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++wakes_;
  }
  cv_.notify_all();
}

size_t TwinWorker::queued_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

size_t TwinWorker::queued_scenarios() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queued_scenarios_;
}

TwinWorker::Arrival::Arrival(TwinWorker& w) : w_(w) {
  std::lock_guard<std::mutex> lock(w_.mutex_);
  ++w_.arriving_;
}

TwinWorker::Arrival::~Arrival() {
  if (queued_) return;
  {
    std::lock_guard<std::mutex> lock(w_.mutex_);
    --w_.arriving_;
  }
  w_.cv_.notify_all();  // a batch may be waiting for this request
}

AnswerSet TwinWorker::Arrival::answer(std::vector<spec::Scenario> scenarios, const AnswerOptions& options) {
  auto p = std::make_unique<Pending>();
  p->scenarios = std::move(scenarios);
  p->options = options;
  p->since = Clock::now();
  std::future<AnswerSet> done = p->result.get_future();
  {
    std::lock_guard<std::mutex> lock(w_.mutex_);
    if (w_.stopping_) throw Unavailable("the server is shutting down");
    w_.queued_scenarios_ += p->scenarios.size();
    w_.queue_.push_back(std::move(p));
    --w_.arriving_;
    queued_ = true;
  }
  w_.cv_.notify_all();
  return done.get();
}

void TwinWorker::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    if (queue_.empty()) {
      if (stopping_) return;
      // No interactive work: one unit of background work, or sleep until there is some.
      const unsigned long seen = wakes_;
      lock.unlock();
      bool worked = false;
      try {
        worked = background_ && background_();
      } catch (...) {
        worked = false;  // the job runner records its own failures
      }
      lock.lock();
      if (!worked) cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || wakes_ != seen; });
      continue;
    }
    // Gather: wait until the batch is full or the oldest request has waited max_queue_delay.
    const auto deadline =
        queue_.front()->since + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.max_queue_delay_s));
    cv_.wait_until(lock, deadline,
                   [&] { return stopping_ || queued_scenarios_ >= options_.max_batch || arriving_ == 0; });
    std::vector<std::unique_ptr<Pending>> batch;
    size_t n = 0;
    while (!queue_.empty() && (batch.empty() || n + queue_.front()->scenarios.size() <= options_.max_batch)) {
      n += queue_.front()->scenarios.size();
      queued_scenarios_ -= queue_.front()->scenarios.size();
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    run_batch(batch);
    lock.lock();
  }
}

void TwinWorker::run_batch(std::vector<std::unique_ptr<Pending>>& batch) {
  const auto now = Clock::now();
  for (const auto& p : batch) metrics_.queue_wait(std::chrono::duration<double>(now - p->since).count());
  // Requests asking for the same fidelity and tolerances share one device batch; a request for
  // one fidelity over its batch is answered alone (another's fallback must not decide its own).
  std::vector<bool> taken(batch.size(), false);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (taken[i]) continue;
    std::vector<size_t> group;
    for (size_t k = i; k < batch.size(); ++k)
      if (!taken[k] && (k == i || (!batch[i]->options.one_fidelity && !batch[k]->options.one_fidelity &&
                                   batch[k]->options.fidelity == batch[i]->options.fidelity &&
                                   batch[k]->options.tolerance == batch[i]->options.tolerance &&
                                   batch[k]->options.output_tolerances == batch[i]->options.output_tolerances))) {
        taken[k] = true;
        group.push_back(k);
      }
    std::vector<spec::Scenario> all;
    for (size_t k : group) all.insert(all.end(), batch[k]->scenarios.begin(), batch[k]->scenarios.end());
    metrics_.batch(all.size(), group.size());
    try {
      const AnswerSet set = answer_(all, batch[i]->options);
      size_t first = 0;
      for (size_t k : group) {
        batch[k]->result.set_value(slice_answers(set, first, batch[k]->scenarios.size()));
        first += batch[k]->scenarios.size();
      }
    } catch (...) {
      if (group.size() == 1) {
        batch[i]->result.set_exception(std::current_exception());
        continue;
      }
      // One request's scenarios must not fail the others: answer each on its own.
      for (size_t k : group) {
        try {
          batch[k]->result.set_value(answer_(batch[k]->scenarios, batch[k]->options));
        } catch (...) {
          batch[k]->result.set_exception(std::current_exception());
        }
      }
    }
  }
}

}  // namespace doppel::api
