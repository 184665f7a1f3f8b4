#include "api/jobs.hpp"

#include <chrono>
#include <random>

#include "api/answer_format.hpp"
#include "api/errors.hpp"
#include "api/time.hpp"

namespace doppel::api {

using OJson = nlohmann::ordered_json;

namespace {
std::string new_job_id() {
  static std::mutex m;
  static std::random_device rd;
  std::lock_guard<std::mutex> lock(m);
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i) {
    unsigned v = rd();
    for (int k = 0; k < 8; ++k, v >>= 4) id += hex[v & 15u];
  }
  return id;
}
}  // namespace

std::string result_lines(const FemModel& model, const std::vector<spec::Scenario>& scenarios, const AnswerSet& set,
                         const std::vector<size_t>& outputs, size_t first) {
  const OJson doc = answers_json(model, scenarios, set, outputs);
  std::string out;
  size_t i = first;
  for (const auto& item : doc["scenarios"]) {
    OJson line = {{"index", i++}};
    for (auto it = item.begin(); it != item.end(); ++it) line[it.key()] = it.value();
    if (!doc["times"].is_null()) line["times"] = doc["times"];
    out += dump_text(line);
    out += '\n';
  }
  return out;
}

OJson job_json(const JobRecord& j) {
  OJson doc = {{"id", j.id},
               {"twin", j.twin},
               {"state", j.state},
               {"scenarios", j.total},
               {"completed", j.completed},
               {"progress", j.total ? static_cast<double>(j.completed) / static_cast<double>(j.total) : 1.0},
               {"answered", {{"surrogate", j.surrogate}, {"fem", j.fem}}},
               {"created", j.created},
               {"started", j.started.empty() ? OJson(nullptr) : OJson(j.started)},
               {"finished", j.finished.empty() ? OJson(nullptr) : OJson(j.finished)},
               {"restarts", j.restarts},
               {"results", "/v1/jobs/" + j.id + "/results"}};
  if (!j.error.empty()) doc["error"] = j.error;
  if (!j.owner.empty()) doc["owner"] = j.owner;
  return doc;
}

JobManager::JobManager(JobStore& store, TwinRegistry& twins, Metrics& metrics, JobOptions options, Parser parse,
                       Answer answer, Log log)
    : store_(store), twins_(twins), metrics_(metrics), options_(options), parse_(std::move(parse)),
      answer_(std::move(answer)), log_(std::move(log)) {}

void JobManager::changed() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++changes_;
  }
  cv_.notify_all();
}

JobRecord JobManager::submit(const TwinRegistry::Entry& twin, const std::string& body, ScenarioRequest request,
                             const std::string& owner) {
  JobRecord j;
  j.id = new_job_id();
  j.twin = twin.id;
  j.twin_hash = twin.model->twin().content_hash;
  j.state = "queued";
  j.request = body;
  j.total = request.scenarios.size();
  j.created = utc_now();
  j.owner = owner;
  store_.insert(j);  // on disk (synchronous=FULL) before the 202 goes out
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_[j.id] = std::make_shared<const ScenarioRequest>(std::move(request));
    queues_[twin.id].push_back(j.id);
  }
  if (log_) log_({{"time", utc_now()}, {"event", "job_submitted"}, {"job", j.id}, {"twin", j.twin}, {"scenarios", j.total}});
  changed();
  if (wake_) wake_(twin.id);
  j.request.clear();
  return j;
}

void JobManager::fail(const std::string& id, const std::string& why) {
  store_.finish(id, "failed", why, utc_now());
  if (log_) log_({{"time", utc_now()}, {"event", "job_failed"}, {"job", id}, {"error", why}});
  changed();
}

void JobManager::recover() {
  for (const JobRecord& j : store_.active()) {
    const TwinRegistry::Entry* twin = twins_.try_find(j.twin);
    if (!twin) {
      fail(j.id, "the server restarted without twin '" + j.twin + "'");
      continue;
    }
    if (twin->model->twin().content_hash != j.twin_hash) {
      fail(j.id, "twin '" + j.twin + "' changed while the server was down (content hash " + j.twin_hash + " -> " +
                     twin->model->twin().content_hash + ")");
      continue;
    }
    try {
      auto request = std::make_shared<const ScenarioRequest>(parse_(*twin, j.request));
      if (j.state == "running") store_.requeue_after_restart(j.id);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_[j.id] = std::move(request);
        queues_[j.twin].push_back(j.id);
      }
      if (log_)
        log_({{"time", utc_now()}, {"event", "job_resumed"}, {"job", j.id}, {"twin", j.twin}, {"completed", j.completed},
              {"scenarios", j.total}});
      if (wake_) wake_(j.twin);
    } catch (const std::exception& e) {
      fail(j.id, std::string("cannot resume after a restart: ") + e.what());
    }
  }
}

std::shared_ptr<const ScenarioRequest> JobManager::request_of(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second;
}

bool JobManager::step(TwinRegistry::Entry& twin) {
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return false;
    auto& q = queues_[twin.id];
    if (q.empty()) return false;
    id = q.front();
  }
  auto pop = [&] {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& q = queues_[twin.id];
    if (!q.empty() && q.front() == id) q.pop_front();
    requests_.erase(id);
  };
  const auto job = store_.get(id);
  const auto request = request_of(id);
  if (!job || !job->active() || !request) {  // cancelled or deleted meanwhile
    pop();
    changed();
    return true;
  }
  if (job->state == "queued") store_.start(id, utc_now());
  const bool fem_may_answer = request->options.fidelity != Fidelity::surrogate;
  const size_t size = std::max<size_t>(1, fem_may_answer ? options_.fem_chunk : options_.chunk);
  const size_t first = job->completed;
  const size_t count = std::min(size, job->total - first);
  const std::vector<spec::Scenario> part(request->scenarios.begin() + static_cast<std::ptrdiff_t>(first),
                                         request->scenarios.begin() + static_cast<std::ptrdiff_t>(first + count));
  AnswerSet set;
  try {
    set = answer_(twin, part, request->options);
  } catch (const std::exception& e) {
    fail(id, "scenarios " + std::to_string(first) + ".." + std::to_string(first + count - 1) + ": " + e.what());
    pop();
    return true;
  }
  ResultChunk chunk{first, count, result_lines(*twin.model, part, set, request->outputs, first)};
  const bool stored = store_.append(id, chunk, set.surrogate_answers, set.fem_answers, utc_now());
  metrics_.scenarios("surrogate", set.surrogate_answers);
  metrics_.scenarios("fem", set.fem_answers);
  if (!stored || first + count >= job->total) {
    pop();
    if (stored && log_) log_({{"time", utc_now()}, {"event", "job_done"}, {"job", id}, {"scenarios", job->total}});
  }
  changed();
  return true;
}

JobRecord JobManager::get(const std::string& id) const {
  auto j = store_.get(id);
  if (!j) throw HttpError(404, "not_found", "no job '" + id + "'", "id");
  return *j;
}

JobRecord JobManager::cancel_or_delete(const std::string& id, bool& deleted) {
  JobRecord j = get(id);
  deleted = false;
  if (j.active() && store_.finish(id, "cancelled", "", utc_now())) {
    if (log_) log_({{"time", utc_now()}, {"event", "job_cancelled"}, {"job", id}, {"completed", j.completed}});
    changed();
    return get(id);
  }
  j = get(id);  // finished meanwhile, or already finished: delete it and its results
  deleted = store_.remove(id);
  if (!deleted) throw HttpError(404, "not_found", "no job '" + id + "'", "id");
  changed();
  return j;
}

void JobManager::stream(const std::string& id, size_t from, bool wait,
                        const std::function<bool(const std::string&)>& write) {
  size_t next = from;
  while (true) {
    unsigned long seen;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seen = changes_;
    }
    const auto chunks = store_.chunks(id, next, 1);
    if (!chunks.empty()) {
      const ResultChunk& c = chunks.front();
      size_t offset = 0;
      for (size_t skip = next > c.first ? next - c.first : 0; skip > 0 && offset < c.lines.size(); --skip)
        offset = c.lines.find('\n', offset) + 1;
      if (!write(c.lines.substr(offset))) return;
      next = c.first + c.count;
      continue;
    }
    const auto job = store_.get(id);
    if (!job) return;                             // deleted meanwhile
    if (job->completed > next) continue;          // a chunk landed after the read above
    if (!job->active() || !wait) return;
    std::unique_lock<std::mutex> lock(mutex_);
    if (shutting_down_) return;
    cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return shutting_down_ || changes_ != seen; });
  }
}

void JobManager::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutting_down_ = true;
  }
  cv_.notify_all();
}

}  // namespace doppel::api
