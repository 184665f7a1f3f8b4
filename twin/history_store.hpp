// The live twins' history in SQLite: sensor readings and the latest saved state estimate.
// Sensor readings (WAL, synchronous=FULL): append() returns after
// the readings are on disk, so an acknowledged reading survives a crash. A reading is keyed by
// (twin, sensor, time): sending it again is harmless (duplicate); another value for the same
// key is a conflict and is not stored. Readings may arrive out of time order.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "twin/sqlite.hpp"

namespace doppel::twin {

struct Reading {
  std::string sensor;
  double time = 0;  // seconds since the Unix epoch (UTC)
  double value = 0;
};

enum class Stored { inserted, duplicate, conflict };

class HistoryStore {
 public:
  explicit HistoryStore(const std::string& path);
  // One transaction for the whole batch; `received` is recorded with each new reading.
  std::vector<Stored> append(const std::string& twin, const std::vector<Reading>& readings, double received);

  struct Cursor {
    double time = 0;
    std::string sensor;
  };
  struct Page {
    std::vector<Reading> readings;
    std::optional<Cursor> next;  // pass as `after` for the following page
  };
  // Readings with from <= time <= to (optionally of one sensor), ordered by (time, sensor),
  // at most `limit`, starting after `after`.
  Page query(const std::string& twin, const std::string& sensor, double from, double to, size_t limit,
             const std::optional<Cursor>& after) const;
  size_t count(const std::string& twin) const;

  // The state estimate after each analysis (the estimator's serialized ensemble), latest kept.
  struct SavedState {
    long revision = 0;
    double time = 0;
    std::string state;
  };
  void save_state(const std::string& twin, const SavedState& state);

  // Alerts: a condition (kind, subject) that holds is raised once, updated while it holds and
  // its message or severity changes, and cleared when it no longer holds.
  struct AlertCondition {
    std::string kind, subject, severity, message;
    std::string details;  // JSON object
  };
  struct AlertRecord {
    long id = 0;
    std::string kind, subject, severity, message, details;
    std::string state;  // active | cleared
    double raised = 0, updated = 0;
    std::optional<double> cleared;
  };
  struct AlertEvent {
    std::string event;  // raised | updated | cleared
    AlertRecord alert;
  };
  // Makes the active alerts of the twin match `holding` at `time`; returns what changed.
  std::vector<AlertEvent> sync_alerts(const std::string& twin, const std::vector<AlertCondition>& holding, double time);
  // Newest first; state "active", "cleared" or "" for all; raised within [from, to].
  std::vector<AlertRecord> alerts(const std::string& twin, const std::string& state, double from, double to,
                                  size_t limit) const;
  std::optional<SavedState> load_state(const std::string& twin) const;

 private:
  Database db_;
  mutable std::mutex mutex_;
};

}  // namespace doppel::twin
