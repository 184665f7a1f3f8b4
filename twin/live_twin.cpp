#include "twin/live_twin.hpp"

#include <algorithm>
#include <set>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "kernels/fem/recovery.hpp"
#include "spec/errors.hpp"
#include "spec/time.hpp"

namespace doppel::twin {

namespace {
double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

using OJson = nlohmann::ordered_json;

LiveTwin::LiveTwin(const FemModel& model, const Surrogate* surrogate, HistoryStore& history, LiveOptions options,
                   BatchOptions fem, std::mutex& fem_mutex)
    : model_(model), history_(history), options_(options), fem_mutex_(fem_mutex),
      estimator_(model, surrogate, options.estimator, std::move(fem)), sensors_(model.twin().sensors.size()), check_(model) {}

bool LiveTwin::recover() {
  std::lock_guard<std::mutex> lock(mutex_);
  bool restored = false;
  if (const auto saved = history_.load_state(twin())) {
    try {
      const auto j = nlohmann::json::parse(saved->state);
      estimator_.restore(j.at("estimator").get<std::string>());
      const auto& s = j.at("sensors");
      if (s.size() == sensors_.size())
        for (size_t k = 0; k < s.size(); ++k) {
          SensorStats& st = sensors_[k];
          st.seen = s[k].at("seen");
          st.last_time = s[k].at("last_time");
          st.last_value = s[k].at("last_value");
          st.z = s[k].at("z");
          st.outlier = s[k].at("outlier");
          st.outlier_streak = s[k].at("outlier_streak");
          st.mean_z2 = s[k].at("mean_z2");
          st.assimilated = s[k].at("assimilated");
        }
      restored = true;
    } catch (const std::exception&) {
      restored = false;  // another version of the twin: start from the prior
    }
  }
  // Readings stored after the saved analysis (acknowledged before a crash) are assimilated now.
  const double after = estimator_.revision() > 0 ? estimator_.time() : -1e300;
  std::vector<Reading> pending;
  std::optional<HistoryStore::Cursor> cursor;
  do {
    auto page = history_.query(twin(), "", after, 1e300, 10000, cursor);
    for (auto& r : page.readings)
      if (r.time > after) pending.push_back(std::move(r));
    cursor = page.next;
  } while (cursor);
  // Readings that cannot be measurements (stored before such checks) are passed over; an
  // analysis that fails keeps the last good state, and says so.
  std::vector<Reading> plausible;
  for (auto& r : pending) {
    size_t k = 0;
    while (k < model_.twin().sensors.size() && model_.twin().sensors[k].name != r.sensor) ++k;
    if (k < model_.twin().sensors.size() && !check_.problem(k, r.value)) plausible.push_back(std::move(r));
  }
  std::string failure;
  try {
    if (!plausible.empty()) {
      const auto a = assimilate_locked(plausible);
      if (a && a->failed) failure = std::to_string(a->failed) + " of them failed: " + a->error;
    }
  } catch (const std::exception& e) {
    failure = e.what();
  }
  revision_seen_ = estimator_.revision();
  time_seen_ = estimator_.time();
  {
    // A restored state that no analysis has followed yet: its clock and sensors, no outputs
    // (their prediction waits for the first request or analysis).
    std::lock_guard<std::mutex> g(gauges_mutex_);
    if (gauges_.revision != estimator_.revision() || !gauges_.analysed_here) {
      gauges_ = LiveGauges{};
      for (size_t k = 0; k < model_.twin().sensors.size(); ++k)
        gauges_.sensors.push_back({model_.twin().sensors[k].name, sensors_[k].assimilated > 0, sensors_[k].z, sensors_[k].mean_z2});
      gauges_.revision = estimator_.revision();
      gauges_.analysis_time = estimator_.time();
    }
  }
  if (!failure.empty())
    throw SolverDiverged("readings stored before the restart could not all be analysed (" + failure +
                         "); the twin goes on from its last good state");
  return restored;
}

void LiveTwin::check_field_quantity(const std::string& quantity) const {
  const auto& t = model_.twin();
  DOPPEL_VERIFY(quantity == "temperature" || quantity == "displacement_magnitude" || quantity == "von_mises", "quantity",
                "must be temperature, displacement_magnitude or von_mises");
  DOPPEL_VERIFY(quantity != "temperature" || t.thermal, "quantity", "twin '" + t.name + "' has no thermal physics");
  DOPPEL_VERIFY(quantity == "temperature" || t.mechanical, "quantity", "twin '" + t.name + "' has no mechanics");
}

nlohmann::ordered_json LiveTwin::field_json(const std::string& quantity) {
  const auto& t = model_.twin();
  const auto& mesh = model_.mesh();
  const size_t n = mesh.num_nodes();
  const int dim = mesh.dim;
  check_field_quantity(quantity);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<double> sum(n, 0.0), sum2(n, 0.0), value(n, 0.0);
  std::vector<int> count(n, 0);
  size_t members = 0;
  const FieldRecovery recovery(model_);
  const Eigen::MatrixXd params = estimator_.parameters();
  auto visit = [&](size_t member, const double* T, const double* u) {
    if (quantity == "temperature") {
      for (size_t i = 0; i < n; ++i) value[i] = T[i];
    } else if (quantity == "displacement_magnitude") {
      for (size_t i = 0; i < n; ++i) {
        double m = 0;
        for (int d = 0; d < dim; ++d) m += u[i * static_cast<size_t>(dim) + static_cast<size_t>(d)] * u[i * static_cast<size_t>(dim) + static_cast<size_t>(d)];
        value[i] = std::sqrt(m);
      }
    } else {
      // Von Mises from the recovered stresses, averaged over the regions sharing a node.
      Params p(static_cast<size_t>(params.rows()));
      for (Eigen::Index k = 0; k < params.rows(); ++k) p[static_cast<size_t>(k)] = params(k, static_cast<Eigen::Index>(member));
      std::fill(value.begin(), value.end(), 0.0);
      std::fill(count.begin(), count.end(), 0);
      const auto regions = recovery.recover(p, T, u, /*flux=*/false, /*mechanics=*/true);
      for (size_t r = 0; r < regions.size(); ++r) {
        const auto& nodes = recovery.region_nodes(static_cast<int>(r));
        if (regions[r].stress.empty()) continue;
        for (size_t i = 0; i < nodes.size(); ++i) {
          value[static_cast<size_t>(nodes[i])] += von_mises(&regions[r].stress[6 * i]);
          ++count[static_cast<size_t>(nodes[i])];
        }
      }
      for (size_t i = 0; i < n; ++i)
        if (count[i]) value[i] /= count[i];
    }
    for (size_t i = 0; i < n; ++i) {
      sum[i] += value[i];
      sum2[i] += value[i] * value[i];
    }
    ++members;
  };
  {
    std::lock_guard<std::mutex> fem(fem_mutex_);
    estimator_.predict_members(visit);
  }
  OJson mean = OJson::array(), sd = OJson::array(), points = OJson::array();
  for (size_t i = 0; i < n; ++i) {
    const double m = sum[i] / static_cast<double>(members);
    const double var = members > 1 ? std::max(0.0, (sum2[i] - members * m * m) / static_cast<double>(members - 1)) : 0.0;
    mean.push_back(m);
    sd.push_back(std::sqrt(var));
    OJson pt = OJson::array();
    for (int d = 0; d < dim; ++d) pt.push_back(mesh.coords[3 * i + static_cast<size_t>(d)]);  // 3 per node
    points.push_back(pt);
  }
  return {{"twin", t.name},
          {"time", analysis_time()},
          {"revision", estimator_.revision()},
          {"quantity", quantity},
          {"members", members},
          {"nodes", n},
          {"points", points},
          {"mean", mean},
          {"std", sd}};
}

FieldSnapshot LiveTwin::mean_fields() {
  const auto& mesh = model_.mesh();
  const size_t n = mesh.num_nodes();
  std::lock_guard<std::mutex> lock(mutex_);
  const Eigen::MatrixXd params = estimator_.parameters();
  FieldSnapshot f;
  f.parameters.resize(static_cast<size_t>(params.rows()));
  for (Eigen::Index k = 0; k < params.rows(); ++k) f.parameters[static_cast<size_t>(k)] = params.row(k).mean();
  size_t members = 0;
  auto add = [](std::vector<double>& into, const double* v, size_t size) {
    if (!v) return;
    if (into.empty()) into.assign(size, 0.0);
    for (size_t i = 0; i < size; ++i) into[i] += v[i];
  };
  {
    std::lock_guard<std::mutex> fem(fem_mutex_);
    estimator_.predict_members([&](size_t, const double* T, const double* u) {
      add(f.T, T, n);
      add(f.u, u, n * static_cast<size_t>(mesh.dim));
      ++members;
    });
  }
  for (double& v : f.T) v /= static_cast<double>(members);
  for (double& v : f.u) v /= static_cast<double>(members);
  return f;
}

nlohmann::ordered_json LiveTwin::analysis_time() const {
  return estimator_.revision() > 0 ? OJson(spec::format_rfc3339(estimator_.time())) : OJson(nullptr);
}

void LiveTwin::set_control(size_t parameter, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  estimator_.set_known(parameter, value);
}

unsigned long LiveTwin::enqueue(std::vector<Reading> readings) {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  for (auto& r : readings) queued_.push_back(std::move(r));
  return ++enqueued_;
}

bool LiveTwin::pending() const {
  std::lock_guard<std::mutex> lock(queue_mutex_);
  return processed_ < enqueued_;
}

LiveTwin::Processed LiveTwin::process() {
  std::vector<Reading> batch;
  unsigned long upto = 0;
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    batch.swap(queued_);
    upto = enqueued_;
  }
  Processed p;
  try {
    p.analysis = assimilate(batch);
  } catch (const std::exception& e) {
    p.error = e.what();
  }
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    processed_ = upto;
    results_[upto] = p;
    while (results_.size() > 64) results_.erase(results_.begin());  // waiters pick theirs up at once
  }
  queue_cv_.notify_all();
  return p;
}

LiveTwin::Processed LiveTwin::wait(unsigned long ticket) {
  std::unique_lock<std::mutex> lock(queue_mutex_);
  queue_cv_.wait(lock, [&] { return stopped_ || processed_ >= ticket; });
  if (processed_ < ticket) throw Unavailable("the server is shutting down before the analysis");
  const auto it = results_.lower_bound(ticket);
  return it == results_.end() ? Processed{} : it->second;
}

void LiveTwin::stop() {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    stopped_ = true;
  }
  queue_cv_.notify_all();
}

std::optional<LiveTwin::Analysis> LiveTwin::assimilate(const std::vector<Reading>& readings) {
  std::lock_guard<std::mutex> lock(mutex_);
  return assimilate_locked(readings);
}

std::optional<LiveTwin::Analysis> LiveTwin::assimilate_locked(const std::vector<Reading>& readings) {
  const auto& t = model_.twin();
  const bool started = estimator_.revision() > 0;
  Analysis a;
  std::vector<SensorObservation> obs;
  std::vector<double> when;  // each observation's time
  double latest = -1e300;
  for (const Reading& r : readings) {
    size_t k = 0;
    while (k < t.sensors.size() && t.sensors[k].name != r.sensor) ++k;
    if (k == t.sensors.size()) continue;
    SensorStats& s = sensors_[k];
    if (!s.seen || r.time > s.last_time) {
      s.seen = true;
      s.last_time = r.time;
      s.last_value = r.value;
    }
    last_arrival_ = wall_seconds();
    if (started && r.time <= estimator_.time()) {
      ++a.late;
      continue;
    }
    obs.push_back({k, r.value});
    when.push_back(r.time);
    latest = std::max(latest, r.time);
  }
  if (obs.empty()) return std::nullopt;
  std::vector<Innovation> in(obs.size());
  std::vector<char> analysed(obs.size(), 0);
  std::string failure;
  {
    std::lock_guard<std::mutex> fem(fem_mutex_);
    // One analysis of the readings idx at `at`. The estimator's analysis is all or nothing: one
    // that fails leaves the state as it was, and the readings stay stored, unanalysed.
    auto analyse = [&](double at, const std::vector<size_t>& idx) {
      std::vector<SensorObservation> group;
      for (size_t i : idx) group.push_back(obs[i]);
      try {
        const std::vector<Innovation> g = estimator_.assimilate(at, group);
        for (size_t k = 0; k < idx.size(); ++k) {
          in[idx[k]] = g[k];
          analysed[idx[k]] = 1;
        }
        return true;
      } catch (const std::exception& e) {
        failure = e.what();
        return false;
      }
    };
    // The readings of each distinct time, in time order.
    std::vector<size_t> order(obs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return when[x] < when[y]; });
    std::vector<std::pair<double, std::vector<size_t>>> groups;
    for (size_t i : order) {
      if (groups.empty() || groups.back().first != when[i]) groups.push_back({when[i], {}});
      groups.back().second.push_back(i);
    }
    if (estimator_.transient()) {
      // A transient state moves between readings: each distinct time is its own analysis, in
      // time order (the state advanced to it, then its readings assimilated).
      for (const auto& [at, idx] : groups) analyse(at, idx);
    } else if (!analyse(latest, order)) {
      // A steady (quasi-static) state: everything queued is one analysis at the latest time;
      // when that fails, each time on its own, so a failing one does not take the others along.
      if (groups.size() > 1)
        for (const auto& [at, idx] : groups) analyse(at, idx);
    }
  }
  const size_t done = static_cast<size_t>(std::count(analysed.begin(), analysed.end(), 1));
  if (done == 0) throw SolverDiverged(failure);
  for (size_t i = 0; i < obs.size(); ++i) {
    if (!analysed[i]) continue;
    SensorStats& s = sensors_[obs[i].sensor];
    s.z = in[i].z;
    s.outlier = in[i].outlier;
    s.outlier_streak = in[i].outlier ? s.outlier_streak + 1 : 0;
    // Outliers count at the gate: one wild reading must not make a sensor look drifting for long.
    const double z = std::min(std::abs(in[i].z), options_.estimator.outlier_gate);
    s.mean_z2 = 0.9 * s.mean_z2 + 0.1 * z * z;
    ++s.assimilated;
  }
  a.time = estimator_.time();
  a.revision = estimator_.revision();
  a.assimilated = done;
  a.failed = obs.size() - done;
  if (a.failed) a.error = failure;
  save();
  a.alerts = history_.sync_alerts(twin(), alert_conditions(), latest);
  return a;
}

void LiveTwin::save() {
  revision_seen_ = estimator_.revision();
  time_seen_ = estimator_.time();
  OJson sensors = OJson::array();
  for (const auto& s : sensors_)
    sensors.push_back({{"seen", s.seen}, {"last_time", s.last_time}, {"last_value", s.last_value}, {"z", s.z},
                       {"outlier", s.outlier}, {"outlier_streak", s.outlier_streak}, {"mean_z2", s.mean_z2},
                       {"assimilated", s.assimilated}});
  const OJson doc = {{"estimator", estimator_.save()}, {"sensors", sensors}};
  // The summary's sensor statuses are as of the analysis time.
  const OJson estimate = estimate_locked(last_arrival_);  // as of the analysis
  history_.save_state(twin(), {estimator_.revision(), estimator_.time(), doc.dump(), estimate.dump()});
  publish_gauges(estimate);
}

void LiveTwin::publish_gauges(const OJson& estimate) {
  const auto& t = model_.twin();
  LiveGauges g;
  for (const auto& o : t.outputs)
    if (estimate.contains("outputs") && estimate["outputs"].contains(o.name))
      g.outputs.push_back({o.name, estimate["outputs"][o.name]["mean"].get<double>(), estimate["outputs"][o.name]["std"].get<double>()});
  for (size_t k = 0; k < t.sensors.size(); ++k)
    g.sensors.push_back({t.sensors[k].name, sensors_[k].assimilated > 0, sensors_[k].z, sensors_[k].mean_z2});
  g.revision = estimator_.revision();
  g.analysis_time = estimator_.time();
  g.analysed_at = std::chrono::steady_clock::now();
  g.analysed_here = true;
  std::lock_guard<std::mutex> lock(gauges_mutex_);
  gauges_ = std::move(g);
}

LiveGauges LiveTwin::gauges() const {
  std::lock_guard<std::mutex> lock(gauges_mutex_);
  return gauges_;
}

// Silence is judged on the twin's clock - the time of the latest reading of any sensor - not on
// the wall clock, whose offset from the readings' times says nothing (a plant replaying the
// past, or running faster than real time): a sensor is silent when it never reported, or its
// latest reading is more than silent_after_s older than the twin's latest. When no reading at
// all has arrived for silent_after_s of wall-clock time (at `now`), every sensor is silent.
std::string LiveTwin::sensor_status(const SensorStats& s, double now) const {
  double clock = estimator_.time();
  for (const auto& x : sensors_)
    if (x.seen) clock = std::max(clock, x.last_time);
  const bool stale = now - last_arrival_ > options_.silent_after_s;
  if (!s.seen || clock - s.last_time > options_.silent_after_s || stale) return "silent";
  if (s.outlier_streak >= options_.faulty_after) return "faulty";
  if (s.outlier || s.mean_z2 > 9) return "suspect";
  return "ok";
}

nlohmann::ordered_json LiveTwin::state_json(double now) {
  std::lock_guard<std::mutex> lock(mutex_);
  OJson doc = estimate_locked(now);
  doc["alerts"] = alerts_json("active", -1e300, 1e300, 1000);
  return doc;
}

nlohmann::ordered_json LiveTwin::estimate_locked(double now) {
  const auto& t = model_.twin();
  const EnsemblePrediction* pred = nullptr;
  if (estimator_.prediction_ready()) {
    pred = &estimator_.prediction();  // computed at the analysis: no solve, no wait for the FE lock
  } else {
    std::lock_guard<std::mutex> fem(fem_mutex_);
    pred = &estimator_.prediction();
  }
  auto moments = [](const Eigen::RowVectorXd& row) {
    const Moments m = moments_of(row);
    return OJson{{"mean", m.mean}, {"std", m.std}};
  };
  OJson outputs = OJson::object();
  for (size_t k = 0; k < t.outputs.size(); ++k) outputs[t.outputs[k].name] = moments(pred->outputs.row(static_cast<Eigen::Index>(k)));
  OJson params = OJson::object();
  const auto pm = estimator_.parameter_moments();
  for (size_t k = 0; k < t.parameters.size(); ++k) {
    const auto role = t.parameters[k].role;
    params[t.parameters[k].name] = {{"mean", pm[k].mean}, {"std", pm[k].std},
                                    {"role", role == spec::ParameterRole::load ? "load"
                                             : role == spec::ParameterRole::control ? "control" : "latent"},
                                    {"estimated", std::find(estimator_.estimated().begin(), estimator_.estimated().end(), k) !=
                                                      estimator_.estimated().end()}};
  }
  OJson sensors = OJson::object();
  for (size_t k = 0; k < t.sensors.size(); ++k) {
    const SensorStats& s = sensors_[k];
    OJson j;
    j["last"] = s.seen ? OJson{{"time", spec::format_rfc3339(s.last_time)}, {"value", s.last_value}} : OJson(nullptr);
    j["predicted"] = moments(pred->sensors.row(static_cast<Eigen::Index>(k)));
    j["innovation_z"] = s.assimilated ? OJson(s.z) : OJson(nullptr);
    j["mean_z2"] = s.mean_z2;
    j["status"] = sensor_status(s, now);
    sensors[t.sensors[k].name] = j;
  }
  return {{"twin", t.name},
          {"time", analysis_time()},
          {"revision", estimator_.revision()},
          {"ensemble_size", pred->outputs.cols()},
          {"answered", {{"surrogate", pred->surrogate}, {"fem", pred->fem}}},
          {"outputs", outputs},
          {"parameters", params},
          {"sensors", sensors}};
}

namespace {
// times, answered, outputs (percentiles) and exceedance of a forecast: one shape for the
// forecast route and a recommendation's forecast. An output limited on both sides reports its
// lower limit as NAME_min.
OJson forecast_body(const spec::TwinSpec& t, const Forecast& f) {
  OJson outputs = OJson::object();
  for (size_t i = 0; i < f.outputs.size(); ++i)
    outputs[t.outputs[f.outputs[i]].name] = {{"p05", f.p05[i]}, {"p50", f.p50[i]}, {"p95", f.p95[i]}};
  OJson exceedance = OJson::object();
  for (const auto& e : f.exceedance) {
    const std::string& name = t.outputs[e.output].name;
    exceedance[exceedance.contains(name) ? name + "_" + e.bound : name] = {
        {"limit", e.limit}, {"bound", e.bound}, {"probability", e.probability},
        {"expected_time", e.expected_time ? OJson(*e.expected_time) : OJson(nullptr)}};
  }
  return {{"times", f.times},
          {"answered", {{"surrogate", f.surrogate}, {"fem", f.fem}}},
          {"outputs", outputs},
          {"exceedance", exceedance}};
}
}  // namespace

nlohmann::ordered_json LiveTwin::recommend_json(const RecommendRequest& request) {
  // The search runs on a copy of the ensemble: state and forecasts are served meanwhile, and
  // new readings are analysed between two candidates (it takes the FE lock for one at a time). It stops, Unavailable,
  // at shutdown or past max_compute_s, between two candidates.
  std::unique_lock<std::mutex> lock(mutex_);
  const Estimator snapshot = estimator_;
  const OJson start = analysis_time();
  lock.unlock();
  const auto& t = model_.twin();
  RecommendRequest req = request;
  const auto began = std::chrono::steady_clock::now();
  size_t judged = 0;
  req.check = [&] {
    {
      std::lock_guard<std::mutex> q(queue_mutex_);
      if (stopped_) throw Unavailable("the server is shutting down: the recommendation search stopped");
    }
    const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    if (spent > options_.max_compute_s)
      throw Unavailable("the recommendation search passed its limit of " + std::to_string(static_cast<long>(options_.max_compute_s)) +
                        " s after " + std::to_string(judged) + " candidates: ask for fewer candidates or a shorter horizon");
    if (request.check) request.check();
    ++judged;
  };
  req.run = [this](const std::function<void()>& forecast) {
    std::lock_guard<std::mutex> fem(fem_mutex_);  // one candidate at a time: analyses go in between
    forecast();
  };
  const Recommendation r = recommend(snapshot, model_, req);
  auto candidate = [&](const Candidate& c) {
    OJson controls = OJson::object();
    for (size_t i = 0; i < r.controls.size(); ++i) controls[t.parameters[r.controls[i]].name] = c.controls[i];
    return OJson{{"controls", controls}, {"cost", c.cost}, {"feasible", c.feasible}, {"worst_exceedance", c.worst_exceedance},
                 {"worst_excess", c.worst_excess}};
  };
  return {{"twin", t.name},
          {"start", start},
          {"revision", snapshot.revision()},
          {"probability", request.probability},
          {"recommended", candidate(r.best)},
          {"current", candidate(r.current)},
          {"evaluated", r.evaluated},
          {"forecast", forecast_body(t, r.forecast)}};
}

nlohmann::ordered_json LiveTwin::forecast_json(const ForecastRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto& t = model_.twin();
  Forecast f;
  {
    std::lock_guard<std::mutex> fem(fem_mutex_);
    f = run_forecast(estimator_, model_, request);
  }
  OJson doc = {{"twin", t.name},
               {"start", analysis_time()},
               {"revision", estimator_.revision()}};
  const OJson body = forecast_body(t, f);
  for (auto it = body.begin(); it != body.end(); ++it) doc[it.key()] = it.value();
  return doc;
}

nlohmann::ordered_json alert_json(const HistoryStore::AlertRecord& a) {
  OJson details = OJson::object();
  try {
    details = OJson::parse(a.details);
  } catch (const std::exception&) {
  }
  return {{"id", a.id},
          {"kind", a.kind},
          {"subject", a.subject},
          {"severity", a.severity},
          {"state", a.state},
          {"message", a.message},
          {"details", details},
          {"raised", spec::format_rfc3339(a.raised)},
          {"updated", spec::format_rfc3339(a.updated)},
          {"cleared", a.cleared ? OJson(spec::format_rfc3339(*a.cleared)) : OJson(nullptr)}};
}

nlohmann::ordered_json LiveTwin::alerts_json(const std::string& state, double from, double to, size_t limit,
                                             long before) const {
  OJson list = OJson::array();
  for (const auto& a : history_.alerts(twin(), state, from, to, limit, before)) list.push_back(alert_json(a));
  return list;
}

std::vector<HistoryStore::AlertCondition> LiveTwin::alert_conditions() {
  const auto& t = model_.twin();
  std::vector<HistoryStore::AlertCondition> out;
  auto severity_name = [](spec::Severity s) {
    return s == spec::Severity::info ? "info" : s == spec::Severity::warning ? "warning" : "critical";
  };
  auto number = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return std::string(buf);
  };
  // Limits: crossed now (in the current ensemble), or forecast to be within the horizon.
  const EnsemblePrediction* pred = nullptr;
  std::optional<Forecast> ahead;
  {
    std::lock_guard<std::mutex> fem(fem_mutex_);
    pred = &estimator_.prediction();
    if (!t.limits.empty() && options_.alert_horizon_s > 0) {
      ForecastRequest r;
      r.horizon = options_.alert_horizon_s;
      r.step = options_.alert_horizon_s / 6;
      for (const auto& l : t.limits)
        for (size_t o = 0; o < t.outputs.size(); ++o)
          if (t.outputs[o].name == l.output && std::find(r.outputs.begin(), r.outputs.end(), o) == r.outputs.end())
            r.outputs.push_back(o);
      r.seed = static_cast<unsigned long>(estimator_.revision()) + 1;
      ahead = run_forecast(estimator_, model_, r);
    }
  }
  const double n = static_cast<double>(pred->outputs.cols());
  // Hysteresis: an active limit alert holds until its probability falls below half the
  // probability that raises one, so an estimate hovering at the threshold does not raise and
  // clear it (a new alert each time) analysis after analysis.
  std::map<std::string, HistoryStore::AlertRecord> holding;
  for (auto& a : history_.alerts(twin(), "active", -1e300, 1e300, 10000)) holding[a.kind + "\n" + a.subject] = a;
  auto threshold = [&](const char* kind, const std::string& subject) {
    return holding.count(std::string(kind) + "\n" + subject) ? 0.5 * options_.alert_probability : options_.alert_probability;
  };
  for (const auto& l : t.limits) {
    size_t o = 0;
    while (o < t.outputs.size() && t.outputs[o].name != l.output) ++o;
    if (o == t.outputs.size()) continue;
    for (int side = 0; side < 2; ++side) {
      const std::optional<double>& bound = side == 0 ? l.max : l.min;
      if (!bound) continue;
      const std::string subject = l.output + (side == 0 ? "" : "_min");
      const Eigen::RowVectorXd row = pred->outputs.row(static_cast<Eigen::Index>(o));
      const double beyond =
          static_cast<double>(side == 0 ? (row.array() > *bound).count() : (row.array() < *bound).count()) / n;
      if (beyond >= threshold("limit_exceeded", subject)) {
        nlohmann::json d = {{"probability", beyond}, {"mean", row.mean()}, {"limit", *bound}, {"bound", side == 0 ? "max" : "min"}};
        out.push_back({"limit_exceeded", subject, severity_name(l.severity),
                       l.output + " is " + (side == 0 ? "above" : "below") + " its limit " + number(*bound),
                       d.dump()});
        continue;
      }
      if (!ahead) continue;
      for (const auto& e : ahead->exceedance) {
        if (e.output != o || e.bound != (side == 0 ? "max" : "min") || e.probability < threshold("limit_forecast", subject)) continue;
        nlohmann::json d = {{"probability", e.probability}, {"limit", *bound}, {"bound", e.bound},
                            {"horizon", options_.alert_horizon_s}, {"expected_time", e.expected_time ? *e.expected_time : 0.0},
                            {"expected_at", spec::format_rfc3339(estimator_.time() + (e.expected_time ? *e.expected_time : 0.0))}};
        out.push_back({"limit_forecast", subject, severity_name(l.severity),
                       l.output + " is forecast to cross its limit " + number(*bound) + " within " +
                           number(options_.alert_horizon_s / 60) + " min",
                       d.dump()});
      }
    }
  }
  // Sensors: faulty or silent; the model drifting (healthy sensors' innovations too large).
  double z2 = 0;
  int healthy = 0;
  for (size_t k = 0; k < t.sensors.size(); ++k) {
    const SensorStats& s = sensors_[k];
    const std::string status = sensor_status(s, last_arrival_);  // as of the analysis
    if (status == "faulty")
      out.push_back({"sensor_fault", t.sensors[k].name, "warning",
                     "sensor " + t.sensors[k].name + ": its latest readings are gross outliers",
                     nlohmann::json{{"z", s.z}, {"outlier_streak", s.outlier_streak}}.dump()});
    else if (status == "silent" && s.seen)
      out.push_back({"sensor_silent", t.sensors[k].name, "warning",
                     "sensor " + t.sensors[k].name + " has sent no reading since " + spec::format_rfc3339(s.last_time),
                     nlohmann::json{{"last_time", spec::format_rfc3339(s.last_time)}}.dump()});
    else if (status == "ok" && s.assimilated >= 10) {
      z2 += s.mean_z2;
      ++healthy;
    }
  }
  if (healthy > 0 && z2 / healthy > options_.drift_threshold)
    out.push_back({"model_drift", "twin", "warning",
                   "the sensors' normalized innovations are too large for the model (mean z^2 expected near 1): "
                   "the twin no longer explains the asset",
                   nlohmann::json{{"mean_z2", z2 / healthy}, {"sensors", healthy}}.dump()});
  // Off-delay: an active alert whose condition is absent clears only after clear_after
  // analyses in a row without it (an estimate swinging back for one analysis after a sudden
  // change would clear it and raise a new one).
  std::set<std::string> now_holding;
  for (const auto& c : out) now_holding.insert(c.kind + "\n" + c.subject);
  for (auto it = alert_misses_.begin(); it != alert_misses_.end();)
    it = holding.count(it->first) && !now_holding.count(it->first) ? std::next(it) : alert_misses_.erase(it);
  for (const auto& [key, a] : holding) {
    if (now_holding.count(key)) continue;
    if (++alert_misses_[key] < options_.alert_clear_after) out.push_back({a.kind, a.subject, a.severity, a.message, a.details});
  }
  return out;
}

}  // namespace doppel::twin
