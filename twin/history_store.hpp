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

  // The state estimate after each analysis: the estimator's serialized ensemble (latest kept,
  // for restarts) and, when `estimate` is not empty, its summary (a JSON object: means, spreads,
  // sensor statistics) appended to the estimate history, both in one transaction.
  struct SavedState {
    long revision = 0;
    double time = 0;
    std::string state;
    std::string estimate;
  };
  void save_state(const std::string& twin, const SavedState& state);
  struct Estimate {
    long id = 0;  // the paging cursor
    long revision = 0;
    double time = 0;
    std::string summary;
  };
  // Estimate summaries with from <= time <= to in the order they were made, at most `limit`,
  // after the one with id `after` (0: from the start).
  std::vector<Estimate> estimates(const std::string& twin, double from, double to, size_t limit, long after) const;

  // Controls: desired and reported values of the control parameters (JSON objects), one
  // version counter for both; every change is in the audit log.
  struct Controls {
    long version = 0;
    std::string desired = "{}", reported = "{}";
    double updated = 0;
  };
  Controls controls(const std::string& twin) const;
  // Applies the change if `expected_version` matches (or is negative: no check); returns the new
  // controls, or nullopt on a version mismatch. kind: "desired" | "reported"; values: the JSON
  // object written (merged into the current one by the caller).
  std::optional<Controls> set_controls(const std::string& twin, long expected_version, const std::string& kind,
                                       const std::string& merged, const std::string& change, const std::string& actor,
                                       double time);
  struct ControlChange {
    long id = 0;  // the paging cursor
    long version = 0;
    std::string kind, values, actor;
    double time = 0;
  };
  // Newest first, changed within [from, to], at most `limit`, older than the change with id
  // `before` (0: from the newest).
  std::vector<ControlChange> control_log(const std::string& twin, double from, double to, size_t limit,
                                         long before = 0) const;

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
  // Newest first; state "active", "cleared" or "" for all; raised within [from, to]; older than
  // the alert with id `before` (0: from the newest).
  std::vector<AlertRecord> alerts(const std::string& twin, const std::string& state, double from, double to,
                                  size_t limit, long before = 0) const;
  std::optional<SavedState> load_state(const std::string& twin) const;

 private:
  Database db_;
  mutable std::mutex mutex_;
};

}  // namespace doppel::twin
