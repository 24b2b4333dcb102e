// TCP connect scan (-sT): many concurrent non-blocking connect()s on one Asio io_context.
// Each of a fixed pool of slots owns a socket and a timer; a slot is relaunched as soon as
// its probe resolves, so nothing is allocated per probe. Stale completions (the timer that
// lost the race to the connect, or the reverse) are told apart by a per-slot generation.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "connect_outcome.hpp"
#include "engine_common.hpp"
#include "host_notes.hpp"
#include "pacer.hpp"
#include "portvigil/scanner/engine.hpp"
#include "progress_meter.hpp"
#include "rtt_estimator.hpp"
#include "silence_policy.hpp"

namespace portvigil {

std::size_t raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20
                                       : static_cast<std::size_t>(lim.rlim_cur);
}

namespace {

using Clock = std::chrono::steady_clock;

struct Probe {
  std::uint32_t host = 0;
  std::uint32_t port_index = 0;
  std::uint8_t attempt = 0;
};

struct HostState {
  Target target;
  HostResult result;
  std::vector<bool> resolved;
  std::size_t remaining = 0;
  bool authorized = false;
  bool timed_out = false;
  bool answered = false;
  bool started = false;
  Clock::time_point start;
  engine::RttEstimator rtt;  // this host's; ConnectRun::group_rtt_ stands in before its first
};

// Fixed-capacity FIFO for probes waiting to be retransmitted.
class ProbeRing {
 public:
  explicit ProbeRing(std::size_t capacity) : buf_(capacity + 1) {}
  bool empty() const { return head_ == tail_; }
  bool push(const Probe& p) {
    const auto next = (tail_ + 1) % buf_.size();
    if (next == head_) return false;
    buf_[tail_] = p;
    tail_ = next;
    return true;
  }
  Probe pop() {
    Probe p = buf_[head_];
    head_ = (head_ + 1) % buf_.size();
    return p;
  }

 private:
  std::vector<Probe> buf_;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

class ConnectRun {
 public:
  ConnectRun(const ScanPlan& plan, ReportSink& sink, const RunControl& control)
      : plan_(plan),
        sink_(sink),
        control_(control),
        tick_(io_),
        pace_(io_),
        // A fixed cap: the probe window, not the rate, adapts a connect scan.
        pacer_(plan.timing.max_rate, plan.timing.max_rate, plan.timing.max_rate,
               std::chrono::milliseconds(10), Clock::now()),
        timeouts_(engine::TimeoutBounds::of(plan.timing)),
        progress_(control) {
    const std::size_t fd_limit = raise_fd_limit();
    const std::size_t fd_budget = fd_limit > 128 ? fd_limit - 100 : 16;
    std::size_t window = plan.timing.max_parallelism ? plan.timing.max_parallelism : 4096;
    if (plan.timing.min_rate > 0) {
      // Little's law: sustaining R probes/s with probes outstanding up to T needs R*T slots.
      const auto needed = static_cast<std::size_t>(
          std::ceil(plan.timing.min_rate * plan.timing.max_rtt_timeout.count()));
      window = std::max(window, needed);
    }
    window_ = std::clamp<std::size_t>(window, 1, fd_budget);
    for (std::size_t i = 0; i < window_; ++i) slots_.push_back(std::make_unique<Slot>(io_));
    retries_ = std::make_unique<ProbeRing>(window_);
    port_order_.resize(plan.ports.tcp.size());
    std::iota(port_order_.begin(), port_order_.end(), 0u);
    // Nmap randomises port order too: sequential sweeps trip simple IDS thresholds.
    std::shuffle(port_order_.begin(), port_order_.end(), std::mt19937_64(std::random_device{}()));
  }

  ScanSummary run();

 private:
  struct Slot {
    explicit Slot(asio::io_context& io) : socket(io), timer(io) {}
    asio::ip::tcp::socket socket;
    asio::steady_timer timer;
    Probe probe;
    Clock::time_point sent;
    std::uint64_t generation = 0;
    bool busy = false;
  };

  void run_group();
  void fill();
  bool next_probe(Probe& out);
  void launch(Slot& slot, const Probe& probe);
  void on_connect(Slot& slot, std::uint64_t gen, const asio::error_code& ec);
  void finish_attempt(Slot& slot, const asio::error_code& ec);
  void on_timeout(Slot& slot, std::uint64_t gen, const asio::error_code& ec);
  void on_no_answer(Probe probe);
  int attempts_for(const HostState& h) const;
  void finish_group();
  void resolve(const Probe& probe, PortState state, Reason reason);
  void release(Slot& slot);
  void on_tick();
  void check_host_timeouts(Clock::time_point now);
  double timeout_for(const HostState& h) const;
  bool take_token();
  bool group_done() const { return hosts_remaining_ == 0; }
  void emit_group();
  bool stopping() const { return control_.stop && control_.stop->load(std::memory_order_relaxed); }

  const ScanPlan& plan_;
  ReportSink& sink_;
  const RunControl& control_;
  asio::io_context io_;
  asio::steady_timer tick_;
  asio::steady_timer pace_;
  bool pace_armed_ = false;
  std::size_t window_ = 0;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> free_slots_;
  std::vector<Slot*> parked_;  // slots whose socket() failed; back in service next tick
  std::unique_ptr<ProbeRing> retries_;
  std::vector<std::uint32_t> port_order_;
  std::vector<HostState> group_;
  std::uint64_t fresh_next_ = 0;
  std::uint64_t fresh_total_ = 0;
  std::size_t hosts_remaining_ = 0;
  std::size_t in_flight_ = 0;
  engine::Pacer pacer_;
  engine::TimeoutBounds timeouts_;
  engine::RttEstimator group_rtt_;  // every host's samples, for hosts without their own yet
  Clock::time_point started_ = Clock::now();
  engine::ProgressMeter progress_;
  std::uint64_t probes_done_ = 0;
  std::uint64_t probes_total_ = 0;
  std::uint64_t hosts_done_ = 0;
  ScanSummary summary_;
  // Attempts spent on probes that were answered, and how many of those went unanswered:
  // the measured per-attempt miss rate.
  std::uint64_t answered_attempts_ = 0;
  std::uint64_t missed_attempts_ = 0;
};

ScanSummary ConnectRun::run() {
  started_ = Clock::now();
  summary_.hosts_total = 0;
  const std::size_t nports = plan_.ports.tcp.size();
  probes_total_ = plan_.targets->size_hint() * nports;
  progress_.start(started_, probes_total_);
  // About 64k (host, port) pairs per group: enough to keep a large window busy.
  const std::size_t group_size = engine::group_size(nports, std::size_t{1} << 16, 1024);
  auto cursor = plan_.targets->cursor();
  cursor.set_stop(control_.stop);
  Target t;
  bool more = true;
  while (more && !stopping()) {
    group_.clear();
    while (group_.size() < group_size && (more = cursor.next(t))) {
      HostState h;
      h.target = t;
      h.result.address = t.address;
      h.result.hostname = t.hostname;
      h.result.ports.resize(nports);
      for (std::size_t i = 0; i < nports; ++i) {
        h.result.ports[i] =
            PortResult{plan_.ports.tcp[i], Proto::tcp, technique_info(Technique::connect).silence,
                       Reason::no_response, 0};
      }
      h.resolved.assign(nports, false);
      h.remaining = nports;
      h.authorized = plan_.scope.contains(t.address);
      group_.push_back(std::move(h));
    }
    if (group_.empty()) break;
    summary_.hosts_total += group_.size();
    run_group();
    emit_group();
  }
  engine::finish_summary(summary_, started_, stopping());
  return summary_;
}

void ConnectRun::run_group() {
  hosts_remaining_ = 0;
  for (auto& h : group_) {
    if (!h.authorized) {
      // The scope check lives here, where probes are made, not only in the CLI.
      h.result.complete = false;
      h.result.note = engine::note::kOutOfScope;
      h.result.refused_by_scope = true;
      h.result.ports.clear();
      h.remaining = 0;
      summary_.counters.refused_by_scope += plan_.ports.tcp.size();
    } else if (h.remaining > 0) {
      ++hosts_remaining_;
    }
  }
  fresh_next_ = 0;
  fresh_total_ = static_cast<std::uint64_t>(group_.size()) * port_order_.size();
  free_slots_.clear();
  parked_.clear();
  for (auto& s : slots_) free_slots_.push_back(s.get());
  if (hosts_remaining_ == 0) return;
  io_.restart();
  fill();
  tick_.expires_after(std::chrono::milliseconds(50));
  tick_.async_wait([this](const asio::error_code& ec) {
    if (!ec) on_tick();
  });
  io_.run();
}

// Launches probes into free slots: retransmissions first, then fresh (port, host) pairs,
// port-major so consecutive probes go to different hosts.
void ConnectRun::fill() {
  while (!free_slots_.empty() && !group_done() && !stopping()) {
    if (!take_token()) return;
    Probe p;
    if (!next_probe(p)) {
      pacer_.give_back();  // nothing to send
      if (plan_.shared_rate != nullptr) plan_.shared_rate->give_back();
      return;
    }
    Slot* slot = free_slots_.back();
    free_slots_.pop_back();
    launch(*slot, p);
  }
}

bool ConnectRun::next_probe(Probe& out) {
  while (!retries_->empty()) {
    out = retries_->pop();
    const auto& h = group_[out.host];
    if (!h.timed_out && !h.resolved[out.port_index]) return true;
  }
  while (fresh_next_ < fresh_total_) {
    const auto n = group_.size();
    out.host = static_cast<std::uint32_t>(fresh_next_ % n);
    out.port_index = port_order_[static_cast<std::size_t>(fresh_next_ / n)];
    out.attempt = 0;
    ++fresh_next_;
    const auto& h = group_[out.host];
    if (h.authorized && !h.timed_out && !h.resolved[out.port_index]) return true;
  }
  return false;
}

bool ConnectRun::take_token() {
  const auto now = Clock::now();
  std::chrono::duration<double> wait{0};
  if (!pacer_.try_take(now)) {
    wait = pacer_.until_next();
  } else if (RateBudget* shared = plan_.shared_rate; shared != nullptr && !shared->try_take(now)) {
    pacer_.give_back();  // this job may send; the process-wide budget says not yet
    wait = shared->until_next(now);
  } else {
    return true;
  }
  if (!pace_armed_) {
    pace_armed_ = true;
    pace_.expires_after(std::chrono::duration_cast<Clock::duration>(wait));
    pace_.async_wait([this](const asio::error_code& ec) {
      pace_armed_ = false;
      if (!ec) fill();
    });
  }
  return false;
}

double ConnectRun::timeout_for(const HostState& h) const {
  return engine::probe_timeout(h.rtt, group_rtt_, timeouts_);
}

void ConnectRun::launch(Slot& slot, const Probe& probe) {
  auto& h = group_[probe.host];
  if (!h.authorized) {  // unreachable by construction; kept as the last line of defence
    ++summary_.counters.refused_by_scope;
    free_slots_.push_back(&slot);
    return;
  }
  if (!h.started) {
    h.started = true;
    h.start = Clock::now();
  }
  const asio::ip::tcp::endpoint endpoint(h.target.address, plan_.ports.tcp[probe.port_index]);
  asio::error_code ec;
  slot.socket.open(endpoint.protocol(), ec);
  if (ec) {
    // Out of descriptors or buffers: shrink the effective window by parking this slot
    // and retry the probe later without charging it an attempt.
    retries_->push(probe);
    parked_.push_back(&slot);
    return;
  }
  // Abortive close: an open port gets a RST, not a FIN, and we keep no TIME_WAIT.
  slot.socket.set_option(asio::socket_base::linger(true, 0), ec);
  slot.busy = true;
  slot.probe = probe;
  slot.sent = Clock::now();
  const auto gen = ++slot.generation;
  ++in_flight_;
  ++summary_.counters.probes_sent;
  if (probe.attempt > 0) ++summary_.counters.retransmissions;
  slot.socket.async_connect(
      endpoint, [this, &slot, gen](const asio::error_code& e) { on_connect(slot, gen, e); });
  slot.timer.expires_after(std::chrono::duration_cast<Clock::duration>(Seconds(timeout_for(h))));
  slot.timer.async_wait(
      [this, &slot, gen](const asio::error_code& e) { on_timeout(slot, gen, e); });
}

void ConnectRun::release(Slot& slot) {
  asio::error_code ignored;
  slot.timer.cancel();
  slot.socket.close(ignored);
  slot.busy = false;
  ++slot.generation;  // invalidates whichever completion is still queued
  --in_flight_;
  free_slots_.push_back(&slot);
}

void ConnectRun::on_connect(Slot& slot, std::uint64_t gen, const asio::error_code& ec) {
  if (gen != slot.generation || !slot.busy) return;
  finish_attempt(slot, ec);
}

// One attempt's outcome, from its completion or read from the kernel when its timer fired
// first: the socket is released and the probe resolved, retried or counted as silent.
void ConnectRun::finish_attempt(Slot& slot, const asio::error_code& ec) {
  const Probe probe = slot.probe;
  auto& h = group_[probe.host];
  const double rtt = std::chrono::duration<double>(Clock::now() - slot.sent).count();
  release(slot);
  PortState state = PortState::filtered;
  Reason reason = Reason::unknown;
  bool answered = true;
  if (!ec || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
      ec == asio::error::connection_aborted) {
    // A reset after the handshake (read late from the socket, or a server that accepts and
    // aborts at once) still means the SYN was answered with a SYN-ACK: a RST in SYN_SENT is
    // ECONNREFUSED.
    state = PortState::open;
    reason = Reason::syn_ack;
  } else if (ec == asio::error::connection_refused) {
    state = PortState::closed;
    reason = Reason::conn_refused;
  } else if (ec == asio::error::host_unreachable) {
    reason = Reason::host_unreach;  // Linux folds ICMP admin-prohibited into EHOSTUNREACH
  } else if (ec == asio::error::network_unreachable) {
    reason = Reason::net_unreach;
  } else if (ec == asio::error::no_protocol_option) {
    reason = Reason::proto_unreach;
  } else if (ec == asio::error::access_denied || ec.value() == EPERM) {
    reason = Reason::local_prohibited;
  } else if (ec == asio::error::timed_out) {
    answered = false;
  } else if (ec == asio::error::address_in_use || ec.value() == EADDRNOTAVAIL ||
             ec == asio::error::no_buffer_space) {
    // Local exhaustion (ephemeral ports, buffers): not an answer from the target.
    retries_->push(probe);
    fill();
    return;
  } else {
    summary_.error = "connect(): " + ec.message();
  }
  if (answered && !h.timed_out) {
    h.answered = true;
    ++summary_.counters.responses;
    answered_attempts_ += probe.attempt + 1u;
    missed_attempts_ += probe.attempt;
    // Every attempt is a socket of its own, timed from its own connect(): no retransmission
    // ambiguity (Karn's rule) to avoid.
    h.rtt.sample(rtt);
    group_rtt_.sample(rtt);
    resolve(probe, state, reason);
  } else if (!answered) {
    on_no_answer(probe);  // the kernel gave up before our timer did
  }
  fill();
}

void ConnectRun::on_timeout(Slot& slot, std::uint64_t gen, const asio::error_code& ec) {
  if (ec == asio::error::operation_aborted || gen != slot.generation || !slot.busy) return;
  if (const auto outcome = engine::settled_connect(slot.socket.native_handle())) {
    // The kernel has the answer; its completion still waits behind others in a busy loop.
    finish_attempt(slot, *outcome);
    return;
  }
  const Probe probe = slot.probe;
  release(slot);
  on_no_answer(probe);
  fill();
}

// No answer within the timeout: retransmit while attempts remain, then call it filtered.
// How many attempts a probe gets before its silence is believed is the shared silence
// policy's (silence_policy.hpp), with this host's port count as the silent population.
int ConnectRun::attempts_for(const HostState& h) const {
  const int max_retries = plan_.timing.max_retries;
  if (max_retries == 0) return 1;
  const engine::LossEvidence loss{answered_attempts_, missed_attempts_};
  const int least = engine::min_attempts(loss, max_retries);
  if (missed_attempts_ == 0) return least;
  return std::clamp(engine::loss_rounds(loss, h.result.ports.size()), least,
                    engine::max_attempts(max_retries));
}

void ConnectRun::on_no_answer(Probe probe) {
  auto& h = group_[probe.host];
  if (h.timed_out || h.resolved[probe.port_index]) return;
  const int allowed = attempts_for(h);
  if (probe.attempt + 1 < allowed) {
    ++probe.attempt;
    retries_->push(probe);
    return;
  }
  if (allowed == engine::max_attempts(plan_.timing.max_retries) && missed_attempts_ > 0 &&
      !h.result.inconclusive) {
    // Even the extra attempts cannot make silence trustworthy at this loss rate.
    h.result.inconclusive = true;
    h.result.note = engine::note::kLossTooHigh;
  }
  resolve(probe, technique_info(Technique::connect).silence, Reason::no_response);
}

void ConnectRun::finish_group() {
  for (auto& s : slots_) {
    if (s->busy) release(*s);
  }
  tick_.cancel();
  pace_.cancel();
}

void ConnectRun::resolve(const Probe& probe, PortState state, Reason reason) {
  auto& h = group_[probe.host];
  if (h.resolved[probe.port_index] || h.timed_out) return;
  h.resolved[probe.port_index] = true;
  auto& port = h.result.ports[probe.port_index];
  port.state = state;
  port.reason = reason;
  ++probes_done_;
  if (--h.remaining == 0) {
    h.result.elapsed = Clock::now() - h.start;
    --hosts_remaining_;
    ++hosts_done_;
    if (group_done()) finish_group();
  }
}

void ConnectRun::check_host_timeouts(Clock::time_point now) {
  const auto limit = plan_.timing.host_timeout.count();
  if (limit <= 0) return;
  for (auto& h : group_) {
    if (h.remaining == 0 || h.timed_out || !h.started) continue;
    if (std::chrono::duration<double>(now - h.start).count() < limit) continue;
    h.timed_out = true;
    h.result.complete = false;
    h.result.elapsed = now - h.start;
    h.result.note = engine::note::host_timeout(limit, h.remaining, h.result.ports.size());
    probes_done_ += h.remaining;
    h.remaining = 0;
    --hosts_remaining_;
    ++hosts_done_;
  }
}

void ConnectRun::on_tick() {
  const auto now = Clock::now();
  free_slots_.insert(free_slots_.end(), parked_.begin(), parked_.end());
  parked_.clear();
  check_host_timeouts(now);
  if (stopping()) {
    summary_.interrupted = true;
    for (auto& h : group_) {
      if (h.remaining == 0) continue;
      h.result.complete = false;
      h.result.note = engine::note::interrupted(h.remaining, h.result.ports.size());
      h.remaining = 0;
    }
    hosts_remaining_ = 0;
    finish_group();
    return;
  }
  progress_.maybe_report(now, probes_done_, hosts_done_, summary_.counters.probes_sent);
  if (group_done()) {
    finish_group();
    return;
  }
  fill();
  tick_.expires_after(std::chrono::milliseconds(50));
  tick_.async_wait([this](const asio::error_code& ec) {
    if (!ec) on_tick();
  });
}

void ConnectRun::emit_group() {
  for (auto& h : group_) {
    if (!h.result.complete && !h.result.ports.empty()) {
      // Never report a state for a port whose probe went unanswered because we gave up.
      std::vector<PortResult> kept;
      for (std::size_t i = 0; i < h.result.ports.size(); ++i) {
        if (h.resolved[i]) kept.push_back(h.result.ports[i]);
      }
      h.result.ports.swap(kept);
    }
    // Up only on proof from the host itself: a router's or our own kernel's refusal is not.
    if (std::any_of(h.result.ports.begin(), h.result.ports.end(),
                    [](const PortResult& p) { return proves_host_up(p.reason); })) {
      ++summary_.hosts_up;
    }
    sink_.host(h.result);
  }
}

class ConnectEngine final : public ScanEngine {
 public:
  ScanSummary run(const ScanPlan& plan, ReportSink& sink, const RunControl& control) override {
    ConnectRun run(plan, sink, control);
    return run.run();
  }
};

}  // namespace

std::unique_ptr<ScanEngine> make_connect_engine() {
  return std::make_unique<ConnectEngine>();
}

}  // namespace portvigil
