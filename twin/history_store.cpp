#include "twin/history_store.hpp"

namespace doppel::twin {

HistoryStore::HistoryStore(const std::string& path) : db_(path) {
  db_.exec("CREATE TABLE IF NOT EXISTS observations ("
           " twin TEXT NOT NULL, sensor TEXT NOT NULL, time REAL NOT NULL, value REAL NOT NULL,"
           " received REAL NOT NULL, PRIMARY KEY (twin, sensor, time))");
  db_.exec("CREATE INDEX IF NOT EXISTS observations_by_time ON observations(twin, time, sensor)");
  db_.exec("CREATE TABLE IF NOT EXISTS alerts ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT, twin TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,"
           " severity TEXT NOT NULL, message TEXT NOT NULL, details TEXT NOT NULL, state TEXT NOT NULL,"
           " raised REAL NOT NULL, updated REAL NOT NULL, cleared REAL)");
  db_.exec("CREATE INDEX IF NOT EXISTS alerts_by_twin ON alerts(twin, state, raised)");
  db_.exec("CREATE TABLE IF NOT EXISTS controls ("
           " twin TEXT PRIMARY KEY, version INTEGER NOT NULL, desired TEXT NOT NULL, reported TEXT NOT NULL,"
           " updated REAL NOT NULL)");
  db_.exec("CREATE TABLE IF NOT EXISTS control_log ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT, twin TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL,"
           " change TEXT NOT NULL, actor TEXT NOT NULL, time REAL NOT NULL)");
  db_.exec("CREATE TABLE IF NOT EXISTS twin_state ("
           " twin TEXT PRIMARY KEY, revision INTEGER NOT NULL, time REAL NOT NULL, state TEXT NOT NULL)");
  db_.exec("CREATE TABLE IF NOT EXISTS estimates ("
           " id INTEGER PRIMARY KEY AUTOINCREMENT, twin TEXT NOT NULL, revision INTEGER NOT NULL, time REAL NOT NULL,"
           " summary TEXT NOT NULL)");
  db_.exec("CREATE INDEX IF NOT EXISTS estimates_by_twin ON estimates(twin, id)");
}

std::vector<Stored> HistoryStore::append(const std::string& twin, const std::vector<Reading>& readings,
                                             double received) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Stored> out;
  out.reserve(readings.size());
  Database::Transaction tx(db_);
  // Prepared once for the whole batch (up to max_readings per request).
  Statement insert(db_, "INSERT OR IGNORE INTO observations (twin, sensor, time, value, received) VALUES (?1, ?2, ?3, ?4, ?5)");
  Statement stored(db_, "SELECT value FROM observations WHERE twin = ?1 AND sensor = ?2 AND time = ?3");
  for (const Reading& r : readings) {
    insert.reset();
    insert.bind(1, twin).bind(2, r.sensor).bind(3, r.time).bind(4, r.value).bind(5, received);
    insert.step();
    if (db_.changes() > 0) {
      out.push_back(Stored::inserted);
      continue;
    }
    stored.reset();
    stored.bind(1, twin).bind(2, r.sensor).bind(3, r.time);
    stored.step();
    out.push_back(stored.real(0) == r.value ? Stored::duplicate : Stored::conflict);
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
  Database::Transaction tx(db_);
  {
    Statement s(db_, "INSERT OR REPLACE INTO twin_state (twin, revision, time, state) VALUES (?1, ?2, ?3, ?4)");
    s.bind(1, twin).bind(2, static_cast<int64_t>(state.revision)).bind(3, state.time).bind(4, state.state);
    s.step();
  }
  if (!state.estimate.empty()) {
    Statement s(db_, "INSERT INTO estimates (twin, revision, time, summary) VALUES (?1, ?2, ?3, ?4)");
    s.bind(1, twin).bind(2, static_cast<int64_t>(state.revision)).bind(3, state.time).bind(4, state.estimate);
    s.step();
  }
  tx.commit();
}

std::vector<HistoryStore::Estimate> HistoryStore::estimates(const std::string& twin, double from, double to, size_t limit,
                                                            long after) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_,
              "SELECT id, revision, time, summary FROM estimates WHERE twin = ?1 AND id > ?2 AND time >= ?3 AND time <= ?4"
              " ORDER BY id LIMIT ?5");
  s.bind(1, twin).bind(2, static_cast<int64_t>(after)).bind(3, from).bind(4, to).bind(5, limit);
  std::vector<Estimate> out;
  while (s.step()) out.push_back({static_cast<long>(s.integer(0)), static_cast<long>(s.integer(1)), s.real(2), s.text(3)});
  return out;
}

std::optional<HistoryStore::SavedState> HistoryStore::load_state(const std::string& twin) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT revision, time, state FROM twin_state WHERE twin = ?1");
  s.bind(1, twin);
  if (!s.step()) return std::nullopt;
  return SavedState{static_cast<long>(s.integer(0)), s.real(1), s.text(2), ""};
}

HistoryStore::Controls HistoryStore::controls(const std::string& twin) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT version, desired, reported, updated FROM controls WHERE twin = ?1");
  s.bind(1, twin);
  Controls c;
  if (s.step()) c = {static_cast<long>(s.integer(0)), s.text(1), s.text(2), s.real(3)};
  return c;
}

std::optional<HistoryStore::Controls> HistoryStore::set_controls(const std::string& twin, long expected_version,
                                                                 const std::string& kind, const std::string& merged,
                                                                 const std::string& change, const std::string& actor,
                                                                 double time) {
  std::lock_guard<std::mutex> lock(mutex_);
  Database::Transaction tx(db_);
  Controls c;
  {
    Statement s(db_, "SELECT version, desired, reported, updated FROM controls WHERE twin = ?1");
    s.bind(1, twin);
    if (s.step()) c = {static_cast<long>(s.integer(0)), s.text(1), s.text(2), s.real(3)};
  }
  if (expected_version >= 0 && expected_version != c.version) return std::nullopt;
  ++c.version;
  (kind == "desired" ? c.desired : c.reported) = merged;
  c.updated = time;
  {
    Statement s(db_, "INSERT OR REPLACE INTO controls (twin, version, desired, reported, updated) VALUES (?1, ?2, ?3, ?4, ?5)");
    s.bind(1, twin).bind(2, static_cast<int64_t>(c.version)).bind(3, c.desired).bind(4, c.reported).bind(5, time);
    s.step();
  }
  Statement s(db_, "INSERT INTO control_log (twin, version, kind, change, actor, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  s.bind(1, twin).bind(2, static_cast<int64_t>(c.version)).bind(3, kind).bind(4, change).bind(5, actor).bind(6, time);
  s.step();
  tx.commit();
  return c;
}

std::vector<HistoryStore::ControlChange> HistoryStore::control_log(const std::string& twin, double from, double to,
                                                                   size_t limit, long before) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_,
              "SELECT id, version, kind, change, actor, time FROM control_log WHERE twin = ?1 AND time >= ?2 AND time <= ?3"
              " AND (?5 = 0 OR id < ?5) ORDER BY id DESC LIMIT ?4");
  s.bind(1, twin).bind(2, from).bind(3, to).bind(4, limit).bind(5, static_cast<int64_t>(before));
  std::vector<ControlChange> out;
  while (s.step())
    out.push_back({static_cast<long>(s.integer(0)), static_cast<long>(s.integer(1)), s.text(2), s.text(3), s.text(4), s.real(5)});
  return out;
}

namespace {
HistoryStore::AlertRecord read_alert(const Statement& s) {
  HistoryStore::AlertRecord a;
  a.id = static_cast<long>(s.integer(0));
  a.kind = s.text(1);
  a.subject = s.text(2);
  a.severity = s.text(3);
  a.message = s.text(4);
  a.details = s.text(5);
  a.state = s.text(6);
  a.raised = s.real(7);
  a.updated = s.real(8);
  if (!s.null(9)) a.cleared = s.real(9);
  return a;
}
const char* kAlertColumns = "id, kind, subject, severity, message, details, state, raised, updated, cleared";
}  // namespace

std::vector<HistoryStore::AlertEvent> HistoryStore::sync_alerts(const std::string& twin,
                                                                const std::vector<AlertCondition>& holding, double time) {
  std::lock_guard<std::mutex> lock(mutex_);
  Database::Transaction tx(db_);
  std::vector<AlertRecord> active;
  {
    const std::string sql = std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE twin = ?1 AND state = 'active'";
    Statement s(db_, sql.c_str());
    s.bind(1, twin);
    while (s.step()) active.push_back(read_alert(s));
  }
  std::vector<AlertEvent> events;
  std::vector<bool> still(active.size(), false);
  for (const auto& c : holding) {
    size_t k = 0;
    while (k < active.size() && !(active[k].kind == c.kind && active[k].subject == c.subject)) ++k;
    if (k < active.size()) {
      still[k] = true;
      AlertRecord& a = active[k];
      // An alert keeps its identity and message while it holds; its values move in details,
      // stored without an event. "updated" is a change of severity or of what it says.
      const bool changed = a.message != c.message || a.severity != c.severity;
      if (!changed && a.details == c.details) continue;
      if (!changed) {
        Statement d(db_, "UPDATE alerts SET details = ?2 WHERE id = ?1");
        d.bind(1, static_cast<int64_t>(a.id)).bind(2, c.details);
        d.step();
        continue;
      }
      Statement u(db_, "UPDATE alerts SET severity = ?2, message = ?3, details = ?4, updated = ?5 WHERE id = ?1");
      u.bind(1, static_cast<int64_t>(a.id)).bind(2, c.severity).bind(3, c.message).bind(4, c.details).bind(5, time);
      u.step();
      a.severity = c.severity;
      a.message = c.message;
      a.details = c.details;
      a.updated = time;
      events.push_back({"updated", a});
      continue;
    }
    Statement i(db_,
                "INSERT INTO alerts (twin, kind, subject, severity, message, details, state, raised, updated)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?7)");
    i.bind(1, twin).bind(2, c.kind).bind(3, c.subject).bind(4, c.severity).bind(5, c.message).bind(6, c.details).bind(7, time);
    i.step();
    AlertRecord a;
    a.id = static_cast<long>(db_.last_insert_rowid());
    a.kind = c.kind;
    a.subject = c.subject;
    a.severity = c.severity;
    a.message = c.message;
    a.details = c.details;
    a.state = "active";
    a.raised = a.updated = time;
    events.push_back({"raised", a});
  }
  for (size_t k = 0; k < active.size(); ++k) {
    if (still[k]) continue;
    Statement u(db_, "UPDATE alerts SET state = 'cleared', cleared = ?2, updated = ?2 WHERE id = ?1");
    u.bind(1, static_cast<int64_t>(active[k].id)).bind(2, time);
    u.step();
    active[k].state = "cleared";
    active[k].cleared = time;
    active[k].updated = time;
    events.push_back({"cleared", active[k]});
  }
  tx.commit();
  return events;
}

std::vector<HistoryStore::AlertRecord> HistoryStore::alerts(const std::string& twin, const std::string& state, double from,
                                                            double to, size_t limit, long before) const {
  std::lock_guard<std::mutex> lock(mutex_);
  // Ids follow the order alerts are raised in (analyses move forward in time).
  const std::string sql = std::string("SELECT ") + kAlertColumns +
                          " FROM alerts WHERE twin = ?1 AND (?2 = '' OR state = ?2) AND raised >= ?3 AND raised <= ?4"
                          " AND (?6 = 0 OR id < ?6) ORDER BY id DESC LIMIT ?5";
  Statement s(db_, sql.c_str());
  s.bind(1, twin).bind(2, state).bind(3, from).bind(4, to).bind(5, limit).bind(6, static_cast<int64_t>(before));
  std::vector<AlertRecord> out;
  while (s.step()) out.push_back(read_alert(s));
  return out;
}

}  // namespace doppel::twin
