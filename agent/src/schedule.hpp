// When each job runs next. Pure logic, driven by the agent loop's clock, so it is tested
// without waiting: per-job interval with jitter, a job never overlaps itself, a run missed
// during a stall happens once (not once per missed interval), failures back off.
#pragma once

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace portvigil {

class Schedule {
 public:
  using Clock = std::chrono::steady_clock;
  using Duration = std::chrono::duration<double>;

  struct JobTiming {
    std::string name;
    Duration interval{60};
    Duration jitter{0};
  };

  explicit Schedule(std::uint64_t seed = std::random_device{}()) : rng_(seed) {}

  // Replaces the job list. Jobs that keep their name keep their next run time (clamped to
  // the new interval); new jobs are due at once (plus jitter).
  void set_jobs(const std::vector<JobTiming>& jobs, Clock::time_point now);

  // The job to start now, if any is due and not running; marks it running.
  std::optional<std::string> take_due(Clock::time_point now);
  // When the next job falls due (nullopt when every job is running or there are none).
  [[nodiscard]] std::optional<Clock::time_point> next_due() const;

  // A run of `job` that started at `started` ended now.
  void finished(const std::string& job, Clock::time_point started, Clock::time_point now,
                bool success);

  // A job taken by take_due that may not start yet (outside its scan windows): it is not
  // running, and falls due again at `until`.
  void defer(const std::string& job, Clock::time_point until);

  [[nodiscard]] int failures(const std::string& job) const;

 private:
  struct Entry {
    JobTiming timing;
    Clock::time_point next;
    bool running = false;
    int failures = 0;
  };
  Duration jitter_of(const Entry& e);
  std::vector<Entry> entries_;
  std::mt19937_64 rng_;
};

}  // namespace portvigil
