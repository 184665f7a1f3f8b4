#include "twin/history_store.hpp"

namespace doppel::twin {

HistoryStore::HistoryStore(const std::string& path) : db_(path) {
  db_.exec("CREATE TABLE IF NOT EXISTS observations ("
           " twin TEXT NOT NULL, sensor TEXT NOT NULL, time REAL NOT NULL, value REAL NOT NULL,"
           " received REAL NOT NULL, PRIMARY KEY (twin, sensor, time))");
  db_.exec("CREATE INDEX IF NOT EXISTS observations_by_time ON observations(twin, time, sensor)");
  db_.exec("CREATE TABLE IF NOT EXISTS twin_state ("
           " twin TEXT PRIMARY KEY, revision INTEGER NOT NULL, time REAL NOT NULL, state TEXT NOT NULL)");
}

std::vector<Stored> HistoryStore::append(const std::string& twin, const std::vector<Reading>& readings,
                                             double received) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Stored> out;
  out.reserve(readings.size());
  Database::Transaction tx(db_);
  for (const Reading& r : readings) {
    {
      Statement s(db_, "INSERT OR IGNORE INTO observations (twin, sensor, time, value, received) VALUES (?1, ?2, ?3, ?4, ?5)");
      s.bind(1, twin).bind(2, r.sensor).bind(3, r.time).bind(4, r.value).bind(5, received);
      s.step();
    }
    if (db_.changes() > 0) {
      out.push_back(Stored::inserted);
      continue;
    }
    Statement s(db_, "SELECT value FROM observations WHERE twin = ?1 AND sensor = ?2 AND time = ?3");
    s.bind(1, twin).bind(2, r.sensor).bind(3, r.time);
    s.step();
    out.push_back(s.real(0) == r.value ? Stored::duplicate : Stored::conflict);
  }
  tx.commit();  // synchronous=FULL: on disk when this returns
  return out;
}

HistoryStore::Page HistoryStore::query(const std::string& twin, const std::string& sensor, double from,
                                               double to, size_t limit, const std::optional<Cursor>& after) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_,
              "SELECT sensor, time, value FROM observations WHERE twin = ?1 AND (?2 = '' OR sensor = ?2)"
              " AND time >= ?3 AND time <= ?4 AND (?5 = 0 OR time > ?6 OR (time = ?6 AND sensor > ?7))"
              " ORDER BY time, sensor LIMIT ?8");
  s.bind(1, twin).bind(2, sensor).bind(3, from).bind(4, to).bind(5, static_cast<int64_t>(after.has_value()));
  s.bind(6, after ? after->time : 0.0).bind(7, after ? after->sensor : std::string()).bind(8, limit + 1);
  Page page;
  while (s.step()) page.readings.push_back({s.text(0), s.real(1), s.real(2)});
  if (page.readings.size() > limit) {
    page.readings.pop_back();
    page.next = Cursor{page.readings.back().time, page.readings.back().sensor};
  }
  return page;
}

size_t HistoryStore::count(const std::string& twin) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT COUNT(*) FROM observations WHERE twin = ?1");
  s.bind(1, twin);
  s.step();
  return s.count(0);
}

void HistoryStore::save_state(const std::string& twin, const SavedState& state) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "INSERT OR REPLACE INTO twin_state (twin, revision, time, state) VALUES (?1, ?2, ?3, ?4)");
  s.bind(1, twin).bind(2, static_cast<int64_t>(state.revision)).bind(3, state.time).bind(4, state.state);
  s.step();
}

std::optional<HistoryStore::SavedState> HistoryStore::load_state(const std::string& twin) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT revision, time, state FROM twin_state WHERE twin = ?1");
  s.bind(1, twin);
  if (!s.step()) return std::nullopt;
  return SavedState{static_cast<long>(s.integer(0)), s.real(1), s.text(2)};
}

}  // namespace doppel::twin
