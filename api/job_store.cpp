#include "api/job_store.hpp"

#include "spec/errors.hpp"

namespace doppel::api {

namespace {

using twin::Statement;

const char* kColumns =
    "id, twin, twin_hash, state, total, completed, surrogate, fem, created, started, finished, error, owner, "
    "restarts";

JobRecord read_job(const Statement& s, bool with_request) {
  JobRecord j;
  j.id = s.text(0);
  j.twin = s.text(1);
  j.twin_hash = s.text(2);
  j.state = s.text(3);
  j.total = s.count(4);
  j.completed = s.count(5);
  j.surrogate = s.count(6);
  j.fem = s.count(7);
  j.created = s.text(8);
  j.started = s.text(9);
  j.finished = s.text(10);
  j.error = s.text(11);
  j.owner = s.text(12);
  j.restarts = static_cast<int>(s.count(13));
  if (with_request) j.request = s.text(14);
  return j;
}

}  // namespace

JobStore::JobStore(const std::string& path) : db_(path) {
  db_.exec("CREATE TABLE IF NOT EXISTS jobs ("
           " id TEXT PRIMARY KEY, twin TEXT NOT NULL, twin_hash TEXT NOT NULL, state TEXT NOT NULL,"
           " total INTEGER NOT NULL, completed INTEGER NOT NULL DEFAULT 0,"
           " surrogate INTEGER NOT NULL DEFAULT 0, fem INTEGER NOT NULL DEFAULT 0,"
           " created TEXT NOT NULL, started TEXT, finished TEXT, error TEXT, owner TEXT,"
           " restarts INTEGER NOT NULL DEFAULT 0, request TEXT NOT NULL)");
  db_.exec("CREATE TABLE IF NOT EXISTS results ("
           " job TEXT NOT NULL, first INTEGER NOT NULL, count INTEGER NOT NULL, lines TEXT NOT NULL,"
           " PRIMARY KEY (job, first))");
  db_.exec("CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, created)");
}

void JobStore::insert(const JobRecord& j) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_,
              "INSERT INTO jobs (id, twin, twin_hash, state, total, created, owner, request)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  s.bind(1, j.id).bind(2, j.twin).bind(3, j.twin_hash).bind(4, j.state).bind(5, j.total).bind(6, j.created)
      .bind(7, j.owner).bind(8, j.request);
  s.step();
}

std::optional<JobRecord> JobStore::get(const std::string& id, bool with_request) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string sql = std::string("SELECT ") + kColumns + (with_request ? ", request" : "") + " FROM jobs WHERE id = ?1";
  Statement s(db_, sql.c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_job(s, with_request);
}

std::vector<JobRecord> JobStore::list(const std::string& twin, size_t limit) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string sql = std::string("SELECT ") + kColumns + " FROM jobs WHERE (?1 = '' OR twin = ?1)" +
                          " ORDER BY created DESC, rowid DESC LIMIT ?2";
  Statement s(db_, sql.c_str());
  s.bind(1, twin).bind(2, limit);
  std::vector<JobRecord> out;
  while (s.step()) out.push_back(read_job(s, false));
  return out;
}

std::vector<JobRecord> JobStore::active() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string sql = std::string("SELECT ") + kColumns +
                          ", request FROM jobs WHERE state IN ('queued', 'running') ORDER BY created, rowid";
  Statement s(db_, sql.c_str());
  std::vector<JobRecord> out;
  while (s.step()) out.push_back(read_job(s, true));
  return out;
}

void JobStore::start(const std::string& id, const std::string& time) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "UPDATE jobs SET state = 'running', started = COALESCE(started, ?2) WHERE id = ?1 AND state = 'queued'");
  s.bind(1, id).bind(2, time);
  s.step();
}

bool JobStore::append(const std::string& id, const ResultChunk& chunk, size_t surrogate, size_t fem,
                      const std::string& time) {
  std::lock_guard<std::mutex> lock(mutex_);
  twin::Database::Transaction tx(db_);
  size_t total = 0, completed = 0;
  {
    Statement s(db_, "SELECT total, completed FROM jobs WHERE id = ?1 AND state = 'running'");
    s.bind(1, id);
    if (!s.step()) return false;  // rolled back: nothing written
    total = s.count(0);
    completed = s.count(1);
  }
  if (chunk.first != completed) throw Unavailable("job store: chunk out of order for job " + id);
  {
    Statement s(db_, "INSERT INTO results (job, first, count, lines) VALUES (?1, ?2, ?3, ?4)");
    s.bind(1, id).bind(2, chunk.first).bind(3, chunk.count).bind(4, chunk.lines);
    s.step();
  }
  const bool last = completed + chunk.count >= total;
  {
    Statement s(db_,
                "UPDATE jobs SET completed = completed + ?2, surrogate = surrogate + ?3, fem = fem + ?4,"
                " state = CASE WHEN ?5 THEN 'done' ELSE state END, finished = CASE WHEN ?5 THEN ?6 ELSE finished END"
                " WHERE id = ?1");
    s.bind(1, id).bind(2, chunk.count).bind(3, surrogate).bind(4, fem).bind(5, static_cast<size_t>(last)).bind(6, time);
    s.step();
  }
  tx.commit();
  return true;
}

bool JobStore::finish(const std::string& id, const std::string& state, const std::string& error,
                      const std::string& time) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_,
              "UPDATE jobs SET state = ?2, error = NULLIF(?3, ''), finished = ?4"
              " WHERE id = ?1 AND state IN ('queued', 'running')");
  s.bind(1, id).bind(2, state).bind(3, error).bind(4, time);
  s.step();
  return db_.changes() > 0;
}

void JobStore::requeue_after_restart(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "UPDATE jobs SET state = 'queued', restarts = restarts + 1 WHERE id = ?1 AND state = 'running'");
  s.bind(1, id);
  s.step();
}

bool JobStore::remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  twin::Database::Transaction tx(db_);
  {
    Statement r(db_, "DELETE FROM results WHERE job = ?1");
    r.bind(1, id);
    r.step();
  }
  Statement s(db_, "DELETE FROM jobs WHERE id = ?1");
  s.bind(1, id);
  s.step();
  const bool removed = db_.changes() > 0;
  tx.commit();
  return removed;
}

std::vector<ResultChunk> JobStore::chunks(const std::string& id, size_t from_index, size_t max_chunks) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_,
              "SELECT first, count, lines FROM results WHERE job = ?1 AND first + count > ?2 ORDER BY first LIMIT ?3");
  s.bind(1, id).bind(2, from_index).bind(3, max_chunks);
  std::vector<ResultChunk> out;
  while (s.step()) out.push_back({s.count(0), s.count(1), s.text(2)});
  return out;
}

std::map<std::string, size_t> JobStore::count_by_state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  std::map<std::string, size_t> out;
  while (s.step()) out[s.text(0)] = s.count(1);
  return out;
}

}  // namespace doppel::api
