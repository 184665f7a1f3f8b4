// One live twin: its state estimator, the statistics of each sensor, and their persistence.
// Readings come in through the service (already stored in the history) and queue for analysis;
// the twin's worker takes everything queued as one analysis at the latest reading's time (a
// transient twin: one analysis per distinct reading time, in time order, since its state moves
// between them), so acknowledging readings never waits for the computation (a caller may wait for it). Readings older than the last analysis
// are late: kept in the history, not assimilated. After a restart the saved state is restored
// and the readings stored after it are assimilated, so the estimate catches up.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "twin/estimator.hpp"
#include "twin/forecast.hpp"
#include "twin/readings.hpp"
#include "twin/recommend.hpp"
#include "twin/history_store.hpp"

namespace doppel::twin {

struct LiveOptions {
  EstimatorOptions estimator;
  double silent_after_s = 600;  // a sensor without readings for this long is silent
  int faulty_after = 3;         // consecutive outlier readings that make a sensor faulty
  double alert_probability = 0.2;  // limit alerts: probability of being (or getting) beyond the limit
  double alert_horizon_s = 3600;   // forecast alerts look this far ahead (0: none)
  double drift_threshold = 4;      // model drift: mean z^2 over healthy sensors above this
  int alert_clear_after = 2;       // analyses in a row without its condition before an alert clears
  double max_compute_s = 120;      // a recommendation search stops (Unavailable) past this
};

struct SensorStats {
  bool seen = false;
  double last_time = 0, last_value = 0;
  double z = 0;              // normalized innovation of its latest assimilated reading
  bool outlier = false;
  int outlier_streak = 0;
  double mean_z2 = 1;        // exponentially weighted mean of z^2 (expected near 1)
  size_t assimilated = 0;
};

// What /metrics shows of a live twin, as of its latest analysis (kept aside at each analysis,
// so reading it never waits for one).
struct LiveGauges {
  struct Output {
    std::string name;
    double mean = 0, std = 0;
  };
  struct SensorZ {
    std::string name;
    bool assimilated = false;
    double z = 0, mean_z2 = 1;
  };
  std::vector<Output> outputs;   // empty before the first prediction
  std::vector<SensorZ> sensors;
  long revision = 0;             // analyses so far (0: none)
  double analysis_time = 0;      // the twin's clock at the latest analysis (Unix seconds)
  bool analysed_here = false;    // it ran in this process (a restored state: not yet)
  std::chrono::steady_clock::time_point analysed_at{};  // when it ran (analysed_here)
};

class LiveTwin {
 public:
  // fem_mutex: held while the estimator runs FE solves (one FE batch per twin at a time).
  LiveTwin(const FemModel& model, const Surrogate* surrogate, HistoryStore& history, LiveOptions options,
           BatchOptions fem, std::mutex& fem_mutex);

  // Restores the saved state (a state of another twin version starts afresh: false) and
  // assimilates the readings stored after it.
  bool recover();
  LiveGauges gauges() const;

  struct Analysis {
    double time = 0;
    long revision = 0;
    size_t assimilated = 0, late = 0;
    size_t failed = 0;  // readings whose analysis failed (state kept; they stay stored, unanalysed)
    std::string error;  // why, when failed > 0
    std::vector<HistoryStore::AlertEvent> alerts;  // raised, updated, cleared by this analysis
  };
  // New readings (just stored). nullopt when none could be assimilated (all late or none).
  std::optional<Analysis> assimilate(const std::vector<Reading>& readings);

  // The queue: enqueue() returns a ticket; process() analyses everything queued (the worker);
  // wait() blocks until the ticket's readings were processed and returns that analysis (nullopt
  // when none was needed), rethrowing its failure. Unavailable after stop().
  unsigned long enqueue(std::vector<Reading> readings);
  bool pending() const;
  struct Processed {
    std::optional<Analysis> analysis;
    std::string error;  // the analysis failed (the readings stay stored)
  };
  Processed process();
  Processed wait(unsigned long ticket);
  void stop();
  // The latest analysis, readable while another runs.
  long revision() const { return revision_seen_; }
  double time() const { return time_seen_; }

  // GET /v1/twins/{id}/state: the latest estimate (also stored after every analysis: history
  // kind=estimates) and the active alerts. now: the wall clock (Unix seconds); sensors' status
  // is judged on the twin's clock, and now only tells whether readings stopped altogether.
  nlohmann::ordered_json state_json(double now);
  // POST /v1/twins/{id}/forecast: the current ensemble run forward.
  nlohmann::ordered_json forecast_json(const ForecastRequest& request);
  // POST /v1/twins/{id}/recommend.
  nlohmann::ordered_json recommend_json(const RecommendRequest& request);
  // The conditions that hold now (limits crossed or forecast to be, faulty or silent sensors,
  // model drift).
  std::vector<HistoryStore::AlertCondition> alert_conditions();
  // Stored alerts ("active", "cleared" or "" for all), newest first.
  nlohmann::ordered_json alerts_json(const std::string& state, double from, double to, size_t limit, long before = 0) const;
  const std::string& twin() const { return model_.twin().name; }
  // GET /v1/twins/{id}/field: the ensemble's mean and standard deviation of a nodal quantity
  // (temperature, displacement_magnitude, von_mises), with the mesh points. InvalidInput naming
  // "quantity" for another quantity or one the twin's physics lacks.
  nlohmann::ordered_json field_json(const std::string& quantity);
  void check_field_quantity(const std::string& quantity) const;
  // The ensemble-mean temperature and displacement (the VTU of the field route).
  FieldSnapshot mean_fields();

  // A control's reported (applied) value: the estimator's known value from now on.
  void set_control(size_t parameter, double value);

 private:
  std::optional<Analysis> assimilate_locked(const std::vector<Reading>& readings);
  void save();
  // The last analysis's time (RFC 3339), null before the first.
  nlohmann::ordered_json analysis_time() const;
  // The estimate part of the state (everything but the alerts), sensor statuses as of `now`.
  nlohmann::ordered_json estimate_locked(double now);
  std::string sensor_status(const SensorStats& s, double now) const;

  const FemModel& model_;
  HistoryStore& history_;
  LiveOptions options_;
  std::mutex& fem_mutex_;
  std::mutex mutex_;
  mutable std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::vector<Reading> queued_;
  unsigned long enqueued_ = 0, processed_ = 0;
  bool stopped_ = false;
  std::atomic<long> revision_seen_{0};
  std::atomic<double> time_seen_{0};
  std::map<unsigned long, Processed> results_;  // by the last ticket each analysis covered
  Estimator estimator_;
  std::vector<SensorStats> sensors_;
  ReadingCheck check_;  // stored readings that cannot be measurements are not analysed
  // When this process last received a reading (wall clock, Unix seconds; its start at first).
  double last_arrival_ = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::map<std::string, int> alert_misses_;  // active alerts whose condition is absent: analyses in a row
  mutable std::mutex gauges_mutex_;
  LiveGauges gauges_;
  void publish_gauges(const nlohmann::ordered_json& estimate);
};

nlohmann::ordered_json alert_json(const HistoryStore::AlertRecord& a);

}  // namespace doppel::twin
