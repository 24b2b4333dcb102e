#include "schedule.hpp"

#include <algorithm>
#include <cmath>

namespace portvigil {

Schedule::Duration Schedule::jitter_of(const Entry& e) {
  if (e.timing.jitter.count() <= 0) return Duration{0};
  return Duration(std::uniform_real_distribution<double>(0, e.timing.jitter.count())(rng_));
}

void Schedule::set_jobs(const std::vector<JobTiming>& jobs, Clock::time_point now) {
  std::vector<Entry> next;
  for (const auto& j : jobs) {
    const auto old = std::find_if(entries_.begin(), entries_.end(),
                                  [&](const Entry& e) { return e.timing.name == j.name; });
    Entry e;
    e.timing = j;
    if (old != entries_.end()) {
      e.running = old->running;
      e.failures = old->failures;
      const auto latest = now + std::chrono::duration_cast<Clock::duration>(j.interval);
      e.next = std::min(old->next, latest);
    } else {
      e.next = now + std::chrono::duration_cast<Clock::duration>(jitter_of(e));
    }
    next.push_back(e);
  }
  entries_ = std::move(next);
}

std::optional<std::string> Schedule::take_due(Clock::time_point now) {
  Entry* best = nullptr;
  for (auto& e : entries_) {
    if (e.running || e.next > now) continue;
    if (!best || e.next < best->next) best = &e;
  }
  if (!best) return std::nullopt;
  best->running = true;
  return best->timing.name;
}

std::optional<Schedule::Clock::time_point> Schedule::next_due() const {
  std::optional<Clock::time_point> out;
  for (const auto& e : entries_) {
    if (!e.running && (!out || e.next < *out)) out = e.next;
  }
  return out;
}

void Schedule::finished(const std::string& job, Clock::time_point started, Clock::time_point now,
                        bool success) {
  for (auto& e : entries_) {
    if (e.timing.name != job) continue;
    e.running = false;
    const auto interval = std::chrono::duration_cast<Clock::duration>(e.timing.interval);
    if (success) {
      e.failures = 0;
      e.next = started + interval + std::chrono::duration_cast<Clock::duration>(jitter_of(e));
      // A stall (suspend, a scan longer than the interval) runs the job once, now; the
      // missed runs are not made up one by one.
      if (e.next < now) e.next = now;
    } else {
      ++e.failures;
      // 10s, 20s, 40s ... capped at the interval: a failing job retries soon but never
      // more often than every 10 seconds.
      const double backoff =
          std::min(e.timing.interval.count(), 10.0 * std::pow(2.0, std::min(e.failures - 1, 16)));
      e.next = now + std::chrono::duration_cast<Clock::duration>(Duration(backoff));
    }
  }
}

void Schedule::defer(const std::string& job, Clock::time_point until) {
  for (auto& e : entries_) {
    if (e.timing.name != job) continue;
    e.running = false;
    e.next = until;
  }
}

int Schedule::failures(const std::string& job) const {
  for (const auto& e : entries_) {
    if (e.timing.name == job) return e.failures;
  }
  return 0;
}

}  // namespace portvigil
