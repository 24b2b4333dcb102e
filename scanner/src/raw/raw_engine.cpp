// The stateless raw-packet engine. A sender (the calling thread) makes passes over every
// unanswered (host, port) pair at a paced rate; a receiver thread parses captured
// replies, authenticates them by cookie and records the first answer per pair. No
// per-probe state exists beyond a few bytes per pair, so nothing is allocated per packet.
//
// Accuracy rule: silence is believed only after enough consecutive retransmission passes
// drew nothing new for the measured loss rate (see scan_group). The rate adapts (adapt_rate):
// it grows while the pacer holds the sender back and nothing is lost, and halves on loss. A host
// that may be rate limiting its error replies is re-probed after the limiter refills
// (probe_rate_limits). When silence cannot be trusted the host is marked inconclusive
// instead of reporting guesses. Paced UDP (ScanPlan::udp_pacing, scan_paced) replaces the
// retransmission passes with probes no faster than each host's ICMP error limiter refills.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include "engine_common.hpp"
#include "host_notes.hpp"
#include "pacer.hpp"
#include "packet.hpp"
#include "portvigil/scanner/engine.hpp"
#include "probe.hpp"
#include "progress_meter.hpp"
#include "rtt_estimator.hpp"
#include "silence_policy.hpp"

namespace portvigil {
namespace {

// How long a stop request (SIGTERM, Ctrl-C) may wait for the sender at any rate.
constexpr std::chrono::duration<double> kStopLatency{0.05};

using Clock = std::chrono::steady_clock;
using raw::IpAddr;

constexpr double kMinAdaptiveRate = 500;
// Paced UDP: silences a silent pair needs (measured loss may ask for more, up to the cap).
constexpr int kMinPacedSilences = 2;
constexpr int kMaxPacedSilences = 6;
constexpr int kSilentHostSample = 4;
// How often (at least) the sender weighs the loss signals and adapts its rate; never more
// often than twice the smoothed RTT, so that a window's answers are mostly to its own probes.
constexpr std::chrono::milliseconds kRateWindow{20};
// How long a wait for replies sleeps before it looks again for answers and stops.
constexpr std::chrono::microseconds kWaitSlice{2000};
// Probes a window needs before its share of answered probes says anything.
constexpr std::uint64_t kShareSample = 64;

// A pair's answer in one byte: 0 = none yet, else state * kReasonSlots + reason + 1.
constexpr unsigned kReasonSlots = 32;
static_assert(kReasonCount <= kReasonSlots && kPortStateCount * kReasonSlots <= 255,
              "a pair's answer must fit one byte");
std::uint8_t encode(raw::Observation o) {
  return static_cast<std::uint8_t>(static_cast<unsigned>(o.state) * kReasonSlots +
                                   static_cast<unsigned>(o.reason) + 1u);
}
raw::Observation decode(std::uint8_t v) {
  --v;
  return {static_cast<PortState>(v / kReasonSlots), static_cast<Reason>(v % kReasonSlots)};
}

struct HostEntry {
  Target target;
  IpAddr ip;
  IpAddr src;
  bool authorized = false;
  bool timed_out = false;
  bool started = false;
  Clock::time_point start;
};

class RawScan : public FrameSink {
 public:
  RawScan(const raw::Probe& probe, const RawOptions& options, const ScanPlan& plan,
          ReportSink& sink, const RunControl& control)
      : probe_(probe),
        options_(options),
        plan_(plan),
        sink_(sink),
        control_(control),
        ports_(plan.ports.of(proto_of(probe.technique))),
        pacer_(make_pacer(plan.timing, options, &probe == &raw::ping_probe())),
        timeouts_(engine::TimeoutBounds::of(plan.timing)),
        progress_(control) {
    paced_ = plan.udp_pacing.enabled && proto_of(probe.technique) == Proto::udp &&
             &probe != &raw::ping_probe();
    std::random_device rd;
    if (options.cookie_seed) {
      std::mt19937_64 g(*options.cookie_seed);
      key_.k0 = g();
      key_.k1 = g();
    } else {
      key_ = raw::CookieKey::random();
    }
    // TCP uses one port; UDP a block of kUdpSourcePortSpan (16384) that must end by 65535.
    constexpr unsigned kUdpHighestBase = 65536u - raw::kUdpSourcePortSpan;
    if (options.source_port) {
      sport_base_ = options.source_port;
      if (proto_of(probe.technique) == Proto::udp && sport_base_ > kUdpHighestBase) {
        sport_base_ = static_cast<std::uint16_t>(kUdpHighestBase);
      }
    } else if (proto_of(probe.technique) == Proto::udp) {
      std::uniform_int_distribution<unsigned> d(32768u / 256u, kUdpHighestBase / 256u);
      sport_base_ = static_cast<std::uint16_t>(d(rd) * 256u);
    } else {
      std::uniform_int_distribution<unsigned> d(160, 230);
      sport_base_ = static_cast<std::uint16_t>(d(rd) * 256u);
    }
    port_index_.assign(65536, -1);
    for (std::size_t i = 0; i < ports_.size(); ++i) port_index_[ports_[i]] = static_cast<int>(i);
    port_order_.resize(ports_.size());
    std::iota(port_order_.begin(), port_order_.end(), 0u);
    std::shuffle(port_order_.begin(), port_order_.end(), std::mt19937_64(rd()));
    group_timeout_us_.store(to_timeout_us(timeouts_.initial * 1e6));
  }

  // --max-rate is where the rate starts and a cap it never passes; without it the rate starts
  // at RawOptions::initial_rate and may grow to RawOptions::max_adaptive_rate. Loss never
  // takes it below --min-rate (or kMinAdaptiveRate).
  // Discovery has no first-pass loss signal (its few probes a host answer in any order):
  // its slow start is the cautious one.
  static engine::Pacer make_pacer(const TimingOptions& t, const RawOptions& o, bool discovery) {
    double start = t.max_rate > 0 ? t.max_rate : o.initial_rate;
    if (t.min_rate > 0) start = std::max(start, t.min_rate);
    const double ceiling = t.max_rate > 0 ? start : std::max(start, o.max_adaptive_rate);
    return engine::Pacer(start, std::max(kMinAdaptiveRate, t.min_rate), ceiling,
                         std::chrono::milliseconds(1), Clock::now(),
                         discovery ? engine::Pacer::kBlindSlowStart : engine::Pacer::kSlowStart);
  }

  // Timeouts are kept as 32-bit microseconds: clamp, so no input can overflow them.
  static std::uint32_t to_timeout_us(double us) {
    constexpr double kMaxUs = 3600e6;  // the config and CLI refuse more than 1h
    return static_cast<std::uint32_t>(std::clamp(us, 0.0, kMaxUs));
  }

  ScanSummary run();

  // Receiver thread: one captured frame.
  void frame(std::span<const std::uint8_t> bytes) override;

 private:
  bool stopping() const { return control_.stop && control_.stop->load(std::memory_order_relaxed); }
  void scan_group();
  // One pass over every unanswered pair. `each_after_its_timeout`: a pair is sent only once
  // its own reply timeout has run out since its last transmission (waiting for that if
  // needed), for a retransmission pass that follows the previous pass without a wait.
  void send_pass(bool each_after_its_timeout = false);
  // Waits until `pair` of `host` is due for retransmission; false when it was answered
  // meanwhile or the scan is stopping.
  bool wait_until_due(std::size_t pair, std::size_t host);
  void adapt_rate(Clock::time_point now);
  // Records a pair's first answer; false when it already had one.
  bool settle(std::size_t pair, std::size_t host, raw::Observation o);
  void report_early(std::size_t host);
  // Takes the next target from the plan's cursor or feed; false when there is none now.
  bool next_target(TargetSet::Cursor& cursor, Target& out, bool group_empty, bool& more);
  std::size_t unanswered(std::size_t host) const {
    return ports_.size() - settled_[host].load(std::memory_order_relaxed);
  }
  void send_probe(std::size_t host, std::size_t port_index);
  void probe_rate_limits();
  void scan_paced();
  // Paced silent transmissions a silent pair needs before its silence is believed.
  int paced_need(std::size_t silent) const;
  bool settle_pending(std::size_t host, int need);
  void wait_for_replies();
  std::chrono::microseconds reply_timeout(std::size_t host) const {
    const std::uint32_t own = host_timeout_us_[host].load(std::memory_order_relaxed);
    return std::chrono::microseconds(own != 0 ? own
                                              : group_timeout_us_.load(std::memory_order_relaxed));
  }
  // Waits for the next probe's token; false when the scan is stopping instead.
  bool pace();
  void maybe_progress();
  void check_host_timeouts();
  void emit_group();
  template <class AddNote>
  void note_paced(std::size_t host, HostResult& r, bool cut_short, AddNote add_note);
  std::size_t unanswered_count() const;
  int find_host(const IpAddr& ip) const;
  std::uint32_t now_us() const {
    return static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count());
  }

  const raw::Probe& probe_;
  const RawOptions& options_;
  const ScanPlan& plan_;
  ReportSink& sink_;
  const RunControl& control_;
  const std::vector<std::uint16_t>& ports_;
  raw::CookieKey key_;
  std::uint16_t sport_base_ = 0;
  std::vector<int> port_index_;
  std::vector<std::uint32_t> port_order_;
  std::unique_ptr<PacketIo> io_;
  int datalink_ = 0;
  std::optional<LinkInfo> link_;  // discovery: the Ethernet link neighbours are asked on
  IpAddr src4_;
  IpAddr src6_;
  bool have_src4_ = false;
  bool have_src6_ = false;

  // Per group.
  std::vector<HostEntry> hosts_;
  std::vector<std::pair<IpAddr, int>> host_lookup_;  // sorted by address bytes
  std::unique_ptr<std::atomic<std::uint8_t>[]> answer_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> attempts_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> sent_at_;
  std::size_t pairs_ = 0;
  // Per host, written by the receiver: answers that needed a retransmission, and error
  // replies (RST, ICMP unreachable). The sender snapshots late_ before each pass.
  std::unique_ptr<std::atomic<std::uint32_t>[]> late_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> errors_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> settled_;  // pairs with an answer, per host
  std::unique_ptr<std::atomic<bool>[]> reported_early_;    // per host: report_early() sent it
  // Per host, published by the receiver: its own probe timeout in us, 0 until it has an RTT
  // sample (the group's stands in).
  std::unique_ptr<std::atomic<std::uint32_t>[]> host_timeout_us_;
  std::vector<engine::RttEstimator> host_rtt_;  // receiver-owned
  std::vector<bool> rate_limited_;              // a delayed re-probe of silent ports drew errors
  // Per host, sender-owned: pairs the kernel refused for good (a failed neighbour).
  std::vector<std::uint32_t> refused_locally_;

  // Paced UDP. One probe per host is in flight at a time, so every error is attributable
  // and the model of the host's limiter (one token per period) stays exact.
  struct PacedHost {
    std::vector<std::uint32_t> pending;  // port indices whose silence is not yet believed
    std::size_t cursor = 0;
    Clock::time_point next_send{};  // the host's limiter has a token again
    double period_s = 0;
    bool in_flight = false;
    std::size_t flight_pair = 0;
    Clock::time_point flight_deadline{};
    std::uint32_t burst = 0;  // errors the fast pass drew
    Clock::time_point last_sent{};
    // A host that answered nothing in the fast pass (down, or dropping everything): only
    // this many paced probes first; if they draw nothing either, its silence stands.
    int sample_left = -1;  // -1: not sampling
  };
  bool paced_ = false;
  bool budget_out_ = false;  // ScanPlan::time_budget ran out before every pair was verified
  int paced_need_final_ = 1;
  std::vector<PacedHost> paced_hosts_;
  // Per pair: paced transmissions (counted before the send, read by the receiver) and, sender
  // owned, those that drew nothing within the reply timeout.
  std::unique_ptr<std::atomic<std::uint8_t>[]> paced_tries_;
  std::unique_ptr<std::uint8_t[]> paced_silent_;
  // Per host, written by the receiver: ICMP errors to pairs the fast pass heard nothing from
  // (the limiter swallowed those).
  std::unique_ptr<std::atomic<std::uint32_t>[]> limited_;
  std::atomic<std::uint64_t> paced_answered_sends_{0};
  std::atomic<std::uint64_t> paced_missed_sends_{0};

  // Shared with the receiver.
  std::atomic<std::uint64_t> answered_{0};
  std::atomic<std::uint64_t> late_total_{0};  // answers to pairs already sent more than once
  // Transmissions that went unanswered before a pair's answer, and transmissions of pairs
  // that were answered: their ratio estimates the per-transmission miss rate.
  std::atomic<std::uint64_t> missed_sends_{0};
  std::atomic<std::uint64_t> answered_sends_{0};
  std::atomic<std::uint32_t> group_timeout_us_{0};
  std::atomic<std::uint32_t> group_srtt_us_{0};
  std::atomic<std::uint64_t> rx_drops_{0};  // published by the receiver, which owns the capture
  engine::RttEstimator group_rtt_;          // receiver-owned, every host's samples

  // Sender pacing and its loss signals at the start of the current rate window.
  engine::Pacer pacer_;
  engine::TimeoutBounds timeouts_;
  Clock::time_point window_start_ = Clock::now();
  bool window_paced_ = false;  // the pacer held the sender back in this window
  bool first_pass_ = false;    // probes go to ports in random order: a steady answer share
  double answer_share_ = 0;    // smoothed share of first-pass probes that drew an answer
  std::uint64_t window_drops_ = 0;
  std::uint64_t window_deferred_ = 0;
  std::uint64_t window_late_ = 0;
  std::uint64_t window_answered_ = 0;
  std::uint64_t window_sent_ = 0;
  Clock::time_point started_ = Clock::now();
  engine::ProgressMeter progress_;
  std::uint64_t done_before_group_ = 0;
  std::uint64_t probes_total_ = 0;
  std::uint64_t hosts_done_ = 0;
  bool interrupted_ = false;
  bool unsettled_ = false;  // the pass limit came before silence was statistically safe
  ScanSummary summary_;
  std::array<std::uint8_t, raw::kMaxProbeSize> packet_{};
};

int RawScan::find_host(const IpAddr& ip) const {
  const auto it = std::lower_bound(
      host_lookup_.begin(), host_lookup_.end(), ip, [](const auto& e, const IpAddr& k) {
        return std::tie(e.first.v6, e.first.bytes) < std::tie(k.v6, k.bytes);
      });
  if (it == host_lookup_.end() || !(it->first == ip)) return -1;
  return it->second;
}

void RawScan::frame(std::span<const std::uint8_t> bytes) {
  raw::Reply r;
  if (!raw::parse_frame(bytes, datalink_, r)) return;
  // Who the reply is about: the sender of a TCP/UDP reply, or the destination of the
  // probe an ICMP error quotes (the error itself may come from a router).
  const IpAddr& target = r.kind == raw::Reply::Kind::unreachable ? r.quoted_dst : r.src;
  const std::uint16_t target_port = r.kind == raw::Reply::Kind::unreachable ? r.dport : r.sport;
  const int h = find_host(target);
  if (h < 0) return;
  const int pi = port_index_[target_port];
  if (pi < 0) return;
  const HostEntry& host = hosts_[static_cast<std::size_t>(h)];
  const raw::ProbeKey key{host.src, target, target_port,
                          raw::cookie(key_, host.src, target, target_port), sport_base_};
  if (!probe_.validate(r, key)) return;  // the reply must prove it answers our probe
  const raw::Observation o = probe_.classify(r);
  const std::size_t pair =
      static_cast<std::size_t>(h) * ports_.size() + static_cast<std::size_t>(pi);
  if (!settle(pair, static_cast<std::size_t>(h), o)) return;  // first answer wins
  answered_.fetch_add(1, std::memory_order_relaxed);
  if (paced_) {
    const std::uint8_t paced = paced_tries_[pair].load(std::memory_order_acquire);
    if (paced > 0) {
      paced_answered_sends_.fetch_add(paced, std::memory_order_relaxed);
      if (paced > 1) paced_missed_sends_.fetch_add(paced - 1u, std::memory_order_relaxed);
      if (r.kind == raw::Reply::Kind::unreachable) {
        limited_[static_cast<std::size_t>(h)].fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  const std::uint8_t tries = attempts_[pair].load(std::memory_order_relaxed);
  if (r.kind == raw::Reply::Kind::unreachable || (r.flags & raw::tcp_flag::rst)) {
    errors_[static_cast<std::size_t>(h)].fetch_add(1, std::memory_order_relaxed);
  }
  answered_sends_.fetch_add(tries, std::memory_order_relaxed);
  if (tries > 1) {
    missed_sends_.fetch_add(tries - 1u, std::memory_order_relaxed);
    late_total_.fetch_add(1, std::memory_order_relaxed);
    late_[static_cast<std::size_t>(h)].fetch_add(1, std::memory_order_relaxed);
  } else if (tries == 1) {
    // Karn's rule: only unambiguous (first transmission) samples feed the RTT estimate. The
    // sender counts an attempt before it restamps the pair (release); a stamp read here
    // (acquire) that belongs to a retransmission therefore comes with its count, and the
    // count read again after the stamp tells such a torn pair apart: it is dropped. Signed
    // 32-bit difference: right across the microsecond clock's wrap.
    const std::uint32_t sent = sent_at_[pair].load(std::memory_order_acquire);
    if (attempts_[pair].load(std::memory_order_relaxed) != 1) return;
    const double rtt_s = static_cast<double>(static_cast<std::int32_t>(now_us() - sent)) * 1e-6;
    auto& host_rtt = host_rtt_[static_cast<std::size_t>(h)];
    host_rtt.sample(rtt_s);
    group_rtt_.sample(rtt_s);
    host_timeout_us_[static_cast<std::size_t>(h)].store(
        to_timeout_us(host_rtt.timeout(timeouts_) * 1e6), std::memory_order_relaxed);
    group_timeout_us_.store(to_timeout_us(group_rtt_.timeout(timeouts_) * 1e6),
                            std::memory_order_relaxed);
    group_srtt_us_.store(to_timeout_us(group_rtt_.srtt() * 1e6), std::memory_order_relaxed);
  }
}

bool RawScan::settle(std::size_t pair, std::size_t host, raw::Observation o) {
  std::uint8_t expected = 0;
  if (!answer_[pair].compare_exchange_strong(expected, encode(o))) return false;
  // acq_rel: the thread that settles a host's last pair sees every other pair's answer.
  const auto before = settled_[host].fetch_add(1, std::memory_order_acq_rel);
  if (plan_.report_answered_hosts_early && before + 1 == ports_.size()) report_early(host);
  return true;
}

// Every pair of the host is answered (called once, by whichever thread settled the last):
// if an answer proves it up, it is reported now, and emit_group() leaves it out.
void RawScan::report_early(std::size_t h) {
  const std::size_t nports = ports_.size();
  HostResult r;
  r.address = hosts_[h].target.address;
  r.hostname = hosts_[h].target.hostname;
  r.ports.reserve(nports);
  bool up = false;
  for (std::size_t p = 0; p < nports; ++p) {
    const auto o = decode(answer_[h * nports + p].load(std::memory_order_relaxed));
    r.ports.push_back({ports_[p], proto_of(probe_.technique), o.state, o.reason, 0});
    up = up || proves_host_up(o.reason);
  }
  if (!up) return;
  reported_early_[h].store(true, std::memory_order_relaxed);  // read after the join
  sink_.host(r);
}

bool RawScan::next_target(TargetSet::Cursor& cursor, Target& out, bool group_empty, bool& more) {
  if (plan_.feed == nullptr) return more = cursor.next(out);
  // A group starts with the first target to come and takes the others as long as they keep
  // coming (discovery finds the live hosts of a subnet within a few ms of each other); the
  // targets that come while it is scanned make the next group.
  constexpr std::chrono::milliseconds kFeedLinger{2};
  if (!group_empty) return plan_.feed->next(out, kFeedLinger) == TargetFeed::Next::target;
  for (;;) {
    const auto got = plan_.feed->next(out, std::chrono::milliseconds(50));
    if (got == TargetFeed::Next::target) return true;
    if (got == TargetFeed::Next::closed || stopping()) return more = false;
    maybe_progress();  // waiting on discovery is progress too
  }
}

ScanSummary RawScan::run() {
  started_ = Clock::now();
  // Fed targets: the work known so far, grown group by group.
  probes_total_ = plan_.feed != nullptr || plan_.targets == nullptr
                      ? 0
                      : plan_.targets->size_hint() * ports_.size();
  progress_.start(started_, probes_total_);
  // Up to 1M pairs per group: a few bytes of state each, and the sender never idles.
  const std::size_t group_size = engine::group_size(ports_.size(), std::size_t{1} << 20, 4096);
  const TargetSet none;  // a fed scan's cursor (its targets come from the feed)
  auto cursor =
      (plan_.feed != nullptr || plan_.targets == nullptr ? none : *plan_.targets).cursor();
  cursor.set_stop(control_.stop);
  Target t;
  bool more = true;
  while (more && !stopping() && summary_.error.empty()) {
    hosts_.clear();
    while (hosts_.size() < group_size && next_target(cursor, t, hosts_.empty(), more)) {
      HostEntry h;
      h.target = t;
      h.ip = raw::to_ip(t.address);
      h.authorized = plan_.scope.contains(t.address);
      hosts_.push_back(std::move(h));
    }
    if (hosts_.empty()) break;
    if (plan_.feed != nullptr) {
      // Fed in the order discovery heard them: reported in address order, as from a list.
      std::sort(hosts_.begin(), hosts_.end(), [](const HostEntry& a, const HostEntry& b) {
        return std::tie(a.ip.v6, a.ip.bytes) < std::tie(b.ip.v6, b.ip.bytes);
      });
    }
    summary_.hosts_total += hosts_.size();
    if (plan_.feed != nullptr) {
      probes_total_ = summary_.hosts_total * ports_.size();
      progress_.set_total(probes_total_);
    }
    scan_group();
    emit_group();
  }
  if (io_) {
    const auto s = io_->stats();
    summary_.counters.capture_drops = s.capture_drops;
    summary_.counters.refused_by_scope += s.refused_by_scope;
  }
  engine::finish_summary(summary_, started_, interrupted_ || stopping());
  return summary_;
}

void RawScan::scan_group() {
  const std::size_t nports = ports_.size();
  pairs_ = hosts_.size() * nports;
  answer_ = std::make_unique<std::atomic<std::uint8_t>[]>(pairs_);
  attempts_ = std::make_unique<std::atomic<std::uint8_t>[]>(pairs_);
  sent_at_ = std::make_unique<std::atomic<std::uint32_t>[]>(pairs_);
  late_ = std::make_unique<std::atomic<std::uint32_t>[]>(hosts_.size());
  errors_ = std::make_unique<std::atomic<std::uint32_t>[]>(hosts_.size());
  settled_ = std::make_unique<std::atomic<std::uint32_t>[]>(hosts_.size());
  reported_early_ = std::make_unique<std::atomic<bool>[]>(hosts_.size());
  host_timeout_us_ = std::make_unique<std::atomic<std::uint32_t>[]>(hosts_.size());
  host_rtt_.assign(hosts_.size(), engine::RttEstimator{});
  rate_limited_.assign(hosts_.size(), false);
  refused_locally_.assign(hosts_.size(), 0);
  if (paced_) {
    paced_tries_ = std::make_unique<std::atomic<std::uint8_t>[]>(pairs_);
    paced_silent_ = std::make_unique<std::uint8_t[]>(pairs_);
    limited_ = std::make_unique<std::atomic<std::uint32_t>[]>(hosts_.size());
    paced_answered_sends_ = 0;
    paced_missed_sends_ = 0;
    paced_hosts_.assign(hosts_.size(), PacedHost{});
  }
  answered_ = 0;
  late_total_ = 0;
  window_answered_ = window_late_ = 0;
  answer_share_ = 0;
  missed_sends_ = 0;
  answered_sends_ = 0;
  unsettled_ = false;
  done_before_group_ = summary_.counters.responses;

  // Open the I/O on first use: the interface follows the route to the first target.
  host_lookup_.clear();
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    auto& h = hosts_[i];
    if (!h.authorized) {
      summary_.counters.refused_by_scope += nports;
      continue;
    }
    if (!io_) {
      IoRequest req;
      req.capture_filter = raw::capture_filter(probe_, sport_base_);
      req.first_target = h.target.address;
      req.interface = options_.interface;
      req.scope = plan_.scope;
      try {
        io_ = (options_.io ? options_.io : real_packet_io())(req);
      } catch (const std::exception& e) {
        summary_.error = e.what();
        return;
      }
      datalink_ = io_->datalink();
      if (probe_.neighbor) link_ = io_->link();
    }
    IpAddr& src = h.ip.v6 ? src6_ : src4_;
    bool& have = h.ip.v6 ? have_src6_ : have_src4_;
    if (!have) {
      try {
        src = raw::to_ip(io_->source_for(h.target.address));
        have = true;
      } catch (const std::exception& e) {
        summary_.error = e.what();
        return;
      }
    }
    h.src = src;
    host_lookup_.emplace_back(h.ip, static_cast<int>(i));
  }
  std::sort(host_lookup_.begin(), host_lookup_.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.v6, a.first.bytes) < std::tie(b.first.v6, b.first.bytes);
  });
  if (host_lookup_.empty()) return;

  std::atomic<bool> stop_rx{false};
  PacketIo* io = io_.get();
  rx_drops_.store(io->capture_drops());
  std::thread receiver([this, io, &stop_rx] {
    auto next_drops = Clock::now() + kRateWindow;
    while (!stop_rx.load(std::memory_order_relaxed)) {
      io->receive(std::chrono::milliseconds(5), *this);
      if (const auto now = Clock::now(); now >= next_drops) {
        rx_drops_.store(io->capture_drops(), std::memory_order_relaxed);
        next_drops = now + kRateWindow;
      }
    }
  });

  if (paced_) {
    scan_paced();
    stop_rx = true;
    receiver.join();
    summary_.counters.responses += answered_.load();
    return;
  }
  // Passes: the first, then retransmissions of whatever is still silent, until the silence
  // policy (silence_policy.hpp) believes the silence: at least min_attempts passes, and as
  // many consecutive retransmission passes that drew nothing new as the measured loss calls
  // for. A pass that the policy will ask for whatever comes back is not waited for: the next
  // pass follows at once and sends each pair when that pair's own timeout has run out, so the
  // timeouts overlap the sending instead of adding up after it.
  const int max_retries = plan_.timing.max_retries;
  const int pass_limit = engine::max_attempts(max_retries);
  std::uint64_t drops_before = rx_drops_.load();
  std::uint64_t late_before = late_total_.load();
  int quiet_streak = 0;  // consecutive retransmission passes that drew nothing new
  bool waited = true;    // the previous pass's replies were waited for and judged
  int unjudged = 0;      // retransmission passes sent since the last judgement
  bool settled = false;
  // The wait after a pass, and the judgement of the passes it ends: did their
  // retransmissions draw anything new?
  auto wait_and_judge = [&] {
    wait_for_replies();
    waited = true;
    const std::uint64_t late_now = late_total_.load();
    const bool drew_new = late_now > late_before;
    late_before = late_now;
    const std::uint64_t drops_now = rx_drops_.load();
    const bool dropped = drops_now > drops_before;
    drops_before = drops_now;
    // Passes judged together are quiet together: none drew anything.
    if (unjudged > 0) quiet_streak = (drew_new || dropped) ? 0 : quiet_streak + unjudged;
    // Answers that needed a retransmission: the earlier passes lost probes. One halving per
    // judgement, however many such answers came (adapt_rate never grows on them).
    if (unjudged > 0 && drew_new) pacer_.back_off();
    unjudged = 0;
  };
  for (int pass = 0;;) {
    const std::size_t silent = unanswered_count();
    if (silent == 0) {
      settled = true;
      break;
    }
    if (stopping()) break;
    engine::LossEvidence loss{answered_sends_.load(), missed_sends_.load()};
    const bool past_least = pass >= engine::min_attempts(loss, max_retries);
    if (!waited && past_least) {
      // The evidence changed while the last pass went out: it was the last one the policy
      // asks for whatever comes back. Judge it before deciding on more.
      wait_and_judge();
      continue;
    }
    if (past_least) {
      // --max-retries 0 asks for one transmission and nothing more.
      if (max_retries == 0 || quiet_streak >= engine::loss_rounds(loss, silent)) {
        settled = true;
        break;
      }
      if (pass >= pass_limit) break;
    }
    first_pass_ = pass == 0 && &probe_ != &raw::ping_probe();
    send_pass(/*each_after_its_timeout=*/!waited);
    if (stopping()) break;
    if (pass > 0) ++unjudged;
    ++pass;
    loss = {answered_sends_.load(), missed_sends_.load()};
    if (max_retries > 0 && pass < engine::min_attempts(loss, max_retries)) {
      waited = false;  // the next pass is due whatever comes back
    } else {
      wait_and_judge();
    }
  }
  // Out of passes while silence could still be loss: it is not proof.
  unsettled_ = !settled && unanswered_count() > 0;
  // Discovery needs one answer per host, not a verdict on every probe it sent.
  if (!stopping() && &probe_ != &raw::ping_probe()) probe_rate_limits();
  stop_rx = true;
  receiver.join();
  summary_.counters.responses += answered_.load();
}

// Drops the host's settled pairs (answered, or silent `need` times) from its list; true when
// none is left. An answer to a pair that was silent at the current pace contradicts that
// pace: the host slows down by a quarter and none of its silences counts any more. Called
// when the host's probe resolves or its token is back: about once per period.
bool RawScan::settle_pending(std::size_t h, int need) {
  const std::size_t nports = ports_.size();
  PacedHost& ph = paced_hosts_[h];
  if (ph.sample_left >= 0 && settled_[h].load(std::memory_order_relaxed) > 0) {
    ph.sample_left = -1;  // it answers after all: every silent port is paced
  }
  if (ph.sample_left == 0 && !ph.in_flight) {
    // A full period before each of the sample's probes and not one answer: the host sends
    // no errors (down, or a firewall that drops), so its silence stands as it is.
    for (const std::uint32_t pi : ph.pending) paced_silent_[h * nports + pi] = 255;
    ph.pending.clear();
    return true;
  }
  // Only an ICMP error proves the pace too fast: a protocol reply after a silence is loss.
  bool contradicted = false;
  std::erase_if(ph.pending, [&](std::uint32_t pi) {
    const std::size_t pair = h * nports + pi;
    const std::uint8_t a = answer_[pair].load(std::memory_order_relaxed);
    contradicted = contradicted ||
                   (a != 0 && paced_silent_[pair] > 0 && decode(a).reason != Reason::udp_response);
    return a != 0 || paced_silent_[pair] >= need;
  });
  if (contradicted) {
    ph.period_s = std::min(ph.period_s * 1.25, kMaxUdpPacePeriod.count());
    ph.next_send =
        std::max(ph.next_send,
                 ph.last_sent + std::chrono::duration_cast<Clock::duration>(Seconds(ph.period_s)));
    ph.pending.clear();
    for (const std::uint32_t pi : port_order_) {
      const std::size_t pair = h * nports + pi;
      if (answer_[pair].load() != 0) continue;
      paced_silent_[pair] = 0;
      ph.pending.push_back(pi);
    }
  }
  if (ph.cursor >= ph.pending.size()) ph.cursor = 0;
  return ph.pending.empty();
}

int RawScan::paced_need(std::size_t silent) const {
  const engine::LossEvidence loss{paced_answered_sends_.load(std::memory_order_relaxed),
                                  paced_missed_sends_.load(std::memory_order_relaxed)};
  // The fast pass was the first attempt; the paced ones make up the rest. At least two: a
  // silence is only contradicted (and a too fast pace noticed) by probing the pair again.
  return std::clamp(std::max(engine::min_attempts(loss, plan_.timing.max_retries) - 1,
                             engine::loss_rounds(loss, silent)),
                    kMinPacedSilences, kMaxPacedSilences);
}

// Paced UDP: one fast pass spends each host's burst; then every pair still silent is probed
// again no faster than one probe per period per host, one in flight per host, every host
// in turn. Such a probe meets a refilled limiter, so an error would have come: its silence
// counts. A silent pair is settled after paced_need() such silences; an answer after a
// paced silence (a slower limiter, or loss) slows that host's pace and makes its
// silences count again from zero.
void RawScan::scan_paced() {
  const std::size_t nports = ports_.size();
  first_pass_ = true;
  send_pass();
  first_pass_ = false;
  if (interrupted_ || stopping()) return;
  wait_for_replies();
  if (interrupted_ || stopping()) return;
  const auto start = Clock::now();
  const double period =
      std::clamp(plan_.udp_pacing.period.count(), 1e-3, kMaxUdpPacePeriod.count());
  for (std::size_t h = 0; h < hosts_.size(); ++h) {
    if (!hosts_[h].authorized || hosts_[h].timed_out) continue;
    PacedHost& ph = paced_hosts_[h];
    ph.period_s = period;
    ph.burst = errors_[h].load();
    ph.next_send = start + std::chrono::duration_cast<Clock::duration>(Seconds(period));
    if (settled_[h].load() == 0) ph.sample_left = kSilentHostSample;
    for (const std::uint32_t pi : port_order_) {
      if (answer_[h * nports + pi].load() == 0) ph.pending.push_back(pi);
    }
  }
  const bool budgeted = plan_.time_budget.count() > 0;
  const auto budget_end = started_ + std::chrono::duration_cast<Clock::duration>(plan_.time_budget);
  std::size_t pending_total = 0;
  for (const auto& ph : paced_hosts_) pending_total += ph.pending.size();
  for (;;) {
    if (stopping()) {
      interrupted_ = true;
      return;
    }
    const auto now = Clock::now();
    if (budgeted && now >= budget_end) {
      budget_out_ = true;
      break;
    }
    check_host_timeouts();
    maybe_progress();
    const int need = paced_need(pending_total);
    pending_total = 0;
    bool active = false;
    auto wake = now + std::chrono::milliseconds(50);
    for (std::size_t h = 0; h < hosts_.size(); ++h) {
      PacedHost& ph = paced_hosts_[h];
      if (!hosts_[h].authorized || hosts_[h].timed_out) continue;
      bool due = false;  // the host's probe resolved or its token is back: look at its list
      if (ph.in_flight) {
        const std::uint8_t a = answer_[ph.flight_pair].load(std::memory_order_relaxed);
        if (a == 0 && now < ph.flight_deadline) {
          active = true;
          wake = std::min(wake, ph.flight_deadline);
          pending_total += ph.pending.size();
          continue;
        }
        ph.in_flight = false;
        due = true;
        if (a == 0) {
          if (paced_silent_[ph.flight_pair] < 255) ++paced_silent_[ph.flight_pair];
        } else if (decode(a).reason == Reason::udp_response) {
          ph.next_send = now;  // a protocol reply: the host sent no error, its token is left
        }
      }
      due = due || now >= ph.next_send;
      if (due && settle_pending(h, need)) continue;  // the host is done
      pending_total += ph.pending.size();
      if (ph.pending.empty()) continue;
      active = true;
      if (now < ph.next_send) {
        wake = std::min(wake, ph.next_send);
        continue;
      }
      if (ph.cursor >= ph.pending.size()) ph.cursor = 0;
      const std::uint32_t pi = ph.pending[ph.cursor++];
      const std::size_t pair = h * nports + pi;
      const std::uint8_t before = attempts_[pair].load(std::memory_order_relaxed);
      const std::uint8_t paced = paced_tries_[pair].load(std::memory_order_relaxed);
      // Counted before the send: the receiver may see the answer before send() returns.
      paced_tries_[pair].store(static_cast<std::uint8_t>(paced < 255 ? paced + 1 : 255),
                               std::memory_order_release);
      send_probe(h, pi);
      if (interrupted_ || !summary_.error.empty()) return;
      const auto sent = Clock::now();
      if (attempts_[pair].load(std::memory_order_relaxed) == before &&
          answer_[pair].load(std::memory_order_relaxed) == 0) {
        paced_tries_[pair].store(paced, std::memory_order_release);  // never left: again soon
        ph.next_send = sent + std::chrono::milliseconds(10);
        wake = std::min(wake, ph.next_send);
        continue;
      }
      ph.in_flight = true;
      ph.flight_pair = pair;
      ph.flight_deadline = sent + reply_timeout(h);
      ph.last_sent = sent;
      if (ph.sample_left > 0) --ph.sample_left;
      // From the moment it left: a late send must not shorten the gap to the next one.
      ph.next_send = sent + std::chrono::duration_cast<Clock::duration>(Seconds(ph.period_s));
      wake = std::min(wake, ph.flight_deadline);
    }
    paced_need_final_ = need;
    if (!active) break;
    while (Clock::now() < wake) {
      if (stopping()) {
        interrupted_ = true;
        return;
      }
      const auto left = std::chrono::duration<double>(wake - Clock::now());
      std::this_thread::sleep_for(std::min<std::chrono::duration<double>>(left, kStopLatency));
    }
  }
  // What the budget left unverified stays in `pending`.
  for (std::size_t h = 0; h < hosts_.size(); ++h) {
    if (!hosts_[h].authorized || hosts_[h].timed_out) continue;
    paced_hosts_[h].in_flight = false;
    settle_pending(h, paced_need_final_);
  }
}

// A host that sent only a handful of error replies while many ports stayed silent may be
// rate limiting them (Linux: ICMP to one peer refills at 1/s after a burst of 6; some
// stacks limit RSTs). Silence is then not proof: after the limiter has had time to refill,
// a few silent ports are probed again, and an error reply now proves the limit.
void RawScan::probe_rate_limits() {
  constexpr std::uint32_t kFewErrors = 64;
  constexpr std::size_t kSample = 8;
  const std::size_t nports = ports_.size();
  std::vector<std::size_t> suspects;
  std::vector<std::uint32_t> errors_before(hosts_.size(), 0);
  for (std::size_t h = 0; h < hosts_.size(); ++h) {
    const auto& host = hosts_[h];
    if (!host.authorized || host.timed_out) continue;
    errors_before[h] = errors_[h].load();
    const std::size_t silent = unanswered(h);
    if (errors_before[h] > 0 && errors_before[h] <= kFewErrors && silent > errors_before[h]) {
      suspects.push_back(h);
    }
  }
  if (suspects.empty()) return;
  const auto until = Clock::now() + std::chrono::milliseconds(1100);
  while (Clock::now() < until) {
    if (stopping()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const std::size_t h : suspects) {
    std::size_t sent = 0;
    for (std::size_t k = 0; k < nports && sent < kSample; ++k) {
      const std::size_t pair = h * nports + port_order_[k];
      if (answer_[pair].load() != 0) continue;
      send_probe(h, port_order_[k]);
      ++sent;
    }
  }
  wait_for_replies();
  for (const std::size_t h : suspects) rate_limited_[h] = errors_[h].load() > errors_before[h];
}

std::size_t RawScan::unanswered_count() const {
  std::size_t n = 0;
  for (std::size_t h = 0; h < hosts_.size(); ++h) {
    if (hosts_[h].authorized && !hosts_[h].timed_out) n += unanswered(h);
  }
  return n;
}

bool RawScan::pace() {
  auto now = Clock::now();
  if (!pacer_.unlimited()) {
    if (now - window_start_ >= kRateWindow) adapt_rate(now);
    for (; !pacer_.try_take(now); now = Clock::now()) {
      window_paced_ = true;
      // At a low rate the wait is long: sleep in short slices so SIGTERM is seen within
      // kStopLatency, whatever max-rate is.
      if (stopping()) return false;
      const double wait_s = std::min(pacer_.until_next().count(), kStopLatency.count());
      if (wait_s > 200e-6) {
        std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
      } else {
        std::this_thread::yield();
      }
    }
  }
  // The process-wide budget holds this scan back without telling its pacer: being held
  // by other jobs' probes says nothing about this scan's loss.
  // Sleeping, never yielding, here: scans that lost the race for the shared budget must
  // not spin on the cores the others send from.
  if (RateBudget* shared = plan_.shared_rate) {
    for (; !shared->try_take(now); now = Clock::now()) {
      if (stopping()) return false;
      std::this_thread::sleep_for(std::clamp(shared->until_next(now),
                                             std::chrono::duration<double>(50e-6),
                                             std::chrono::duration<double>(kStopLatency)));
    }
  }
  return !stopping();
}

// Once per rate window of sending (kRateWindow, or twice the smoothed RTT if longer), the
// rate halves on loss:
//  - replies lost on our side (capture drops);
//  - in the first pass, a window whose share of answered probes fell below half of the
//    scan's so far (ports are probed in random order, so that share is steady until replies
//    stop keeping up).
// It grows after a window that the pacer held the sender back in, that drew answers, and
// that saw no loss, no deferred send and no answer that needed a retransmission. A sender
// held back by the CPU rather than the pacer, or whose probes draw nothing, has no evidence
// that more would get through, so its rate stays. Deferred sends (ENOBUFS) only stop growth:
// most come from one unresolved neighbour's full queue, which a lower rate would not help,
// and halving on them would starve every live host of a -Pn sweep.
void RawScan::adapt_rate(Clock::time_point now) {
  const auto window = std::max<Clock::duration>(
      kRateWindow,
      std::chrono::microseconds(2 * std::uint64_t{group_srtt_us_.load(std::memory_order_relaxed)}));
  if (now - window_start_ < window) return;
  const std::uint64_t drops = rx_drops_.load(std::memory_order_relaxed);
  const std::uint64_t deferred = summary_.counters.send_deferred;
  const std::uint64_t late = late_total_.load(std::memory_order_relaxed);
  const std::uint64_t answered = answered_.load(std::memory_order_relaxed);
  const std::uint64_t sent = summary_.counters.probes_sent;
  const std::uint64_t answers = answered - window_answered_;
  const std::uint64_t sends = sent - window_sent_;
  bool falling_behind = false;
  // A window is judged only when it covers a whole sweep of the group's hosts (probes go
  // port by port across them, in address order): a window over a run of firewalled hosts
  // is not loss.
  if (first_pass_ && sends >= std::max<std::uint64_t>(kShareSample, hosts_.size())) {
    const double share = static_cast<double>(answers) / static_cast<double>(sends);
    falling_behind = answer_share_ > 0 && share < answer_share_ / 2;
    answer_share_ = answer_share_ == 0 ? share : 0.75 * answer_share_ + 0.25 * share;
  }
  if (drops > window_drops_ || falling_behind) {
    pacer_.back_off();
  } else if (window_paced_ && answers > 0 && late == window_late_ && deferred == window_deferred_) {
    pacer_.speed_up();
  }
  window_start_ = now;
  window_paced_ = false;
  window_drops_ = drops;
  window_deferred_ = deferred;
  window_late_ = late;
  window_answered_ = answered;
  window_sent_ = sent;
}

// One pass over every unanswered pair, port-major so consecutive probes go to different
// hosts. A retransmission pass visits the pairs in the order the previous pass sent them, so
// waiting for one pair's timeout holds back only pairs sent after it.
void RawScan::send_pass(bool each_after_its_timeout) {
  const std::size_t nports = ports_.size();
  const std::size_t nhosts = hosts_.size();
  std::size_t since_check = 0;
  for (std::size_t k = 0; k < nports; ++k) {
    const std::size_t pi = port_order_[k];
    for (std::size_t h = 0; h < nhosts; ++h) {
      HostEntry& host = hosts_[h];
      if (!host.authorized || host.timed_out) continue;
      const std::size_t pair = h * nports + pi;
      if (answer_[pair].load(std::memory_order_relaxed) != 0) continue;
      if (stopping()) {  // a relaxed load: cheap enough for every probe
        interrupted_ = true;
        return;
      }
      if (++since_check >= 256) {
        since_check = 0;
        check_host_timeouts();
        maybe_progress();
        if (host.timed_out) continue;
      }
      if (each_after_its_timeout && !wait_until_due(pair, h)) {
        if (stopping()) {
          interrupted_ = true;
          return;
        }
        continue;  // answered meanwhile
      }
      send_probe(h, pi);
    }
  }
}

bool RawScan::wait_until_due(std::size_t pair, std::size_t h) {
  const auto initial_us = to_timeout_us(timeouts_.initial * 1e6);
  for (;;) {
    if (answer_[pair].load(std::memory_order_relaxed) != 0 || stopping()) return false;
    const auto timeout =
        engine::retransmit_timeout(host_timeout_us_[h].load(std::memory_order_relaxed),
                                   group_timeout_us_.load(std::memory_order_relaxed), initial_us,
                                   settled_[h].load(std::memory_order_relaxed) > 0);
    const auto left =
        engine::until_due(now_us(), sent_at_[pair].load(std::memory_order_relaxed),
                          attempts_[pair].load(std::memory_order_relaxed) > 0, timeout);
    if (left <= std::chrono::microseconds(0)) return true;
    maybe_progress();
    // Short slices: an answer or a stop is seen within 2 ms, as in wait_for_replies().
    std::this_thread::sleep_for(std::min<std::chrono::microseconds>(left, kWaitSlice));
  }
}

void RawScan::send_probe(std::size_t h, std::size_t pi) {
  HostEntry& host = hosts_[h];
  const std::size_t pair = h * ports_.size() + pi;
  if (!host.started) {
    host.started = true;
    host.start = Clock::now();
  }
  // Discovery's neighbour probe (ARP, IPv6 neighbour solicitation) goes only to targets on
  // the capture interface's Ethernet link; for any other target it has nothing to ask, and
  // the pair is settled at once with no evidence either way.
  const bool frame = probe_.neighbor && ports_[pi] == raw::kNeighborPort;
  if (frame && !(link_ && io_->on_link(host.target.address))) {
    settle(pair, h, {PortState::filtered, Reason::unknown});
    return;
  }
  if (!pace()) {
    interrupted_ = true;
    return;
  }
  raw::ProbeFields f;
  f.src = host.src;
  f.dst = host.ip;
  f.dport = ports_[pi];
  f.ip_id = static_cast<std::uint16_t>(pair * 2654435761u >> 16);
  const std::uint32_t c = raw::cookie(key_, host.src, host.ip, f.dport);
  const std::size_t len =
      !frame       ? probe_.build(f, c, packet_, sport_base_)
      : host.ip.v6 ? raw::build_neighbor_solicitation(link_->mac, host.src, host.ip, packet_)
                   : raw::build_arp_request(link_->mac, host.src, host.ip, packet_);
  auto send = [&] {
    const std::span<const std::uint8_t> bytes{packet_.data(), len};
    return frame ? io_->send_frame(bytes, host.target.address)
                 : io_->send(bytes, host.target.address);
  };
  const auto tries = attempts_[pair].load(std::memory_order_relaxed);
  attempts_[pair].store(static_cast<std::uint8_t>(tries < 255 ? tries + 1 : 255),
                        std::memory_order_relaxed);
  // Stamped before the send: a reply may be captured before send() returns.
  const auto previous_send = sent_at_[pair].exchange(now_us(), std::memory_order_release);
  SendResult r = send();
  if (r == SendResult::retry_later) {
    std::this_thread::yield();  // a momentarily full device queue: one second chance
    r = send();
  }
  if (r == SendResult::retry_later) {
    // The kernel would not take it (ENOBUFS: usually the neighbour queue of an address that
    // does not resolve). Waiting would stall every other host; the pair stays unanswered
    // and unsent, the next pass tries again, and emit_group() reports what never left.
    attempts_[pair].store(tries, std::memory_order_relaxed);
    sent_at_[pair].store(previous_send, std::memory_order_release);  // RTTs stay true
    ++summary_.counters.send_deferred;
    return;
  }
  if (r == SendResult::unreachable) {
    // The kernel gave up resolving this on-link address (EHOSTUNREACH): that is the pair's
    // answer, as a router's host-unreachable would be; nothing left.
    attempts_[pair].store(tries, std::memory_order_relaxed);
    if (settle(pair, h, {PortState::filtered, Reason::host_unreach})) ++refused_locally_[h];
    ++summary_.counters.send_refused_locally;
    return;
  }
  if (r == SendResult::refused_by_scope) {
    host.authorized = false;  // never again for this host
    ++summary_.counters.refused_by_scope;
    return;
  }
  if (r != SendResult::sent) {
    if (summary_.error.empty()) summary_.error = "sending probes failed";
    return;
  }
  ++summary_.counters.probes_sent;
  if (tries > 0) ++summary_.counters.retransmissions;
}

// Waits for the slowest host still owing answers: its own timeout, or the group's when it
// has no RTT sample yet. Unlike a connect attempt, a raw probe's late answer is not lost (it
// is recorded whenever it comes), so a wait that was too short costs one more pass at most.
void RawScan::wait_for_replies() {
  std::chrono::microseconds wait{0};
  for (std::size_t h = 0; h < hosts_.size(); ++h) {
    if (!hosts_[h].authorized || hosts_[h].timed_out || unanswered(h) == 0) continue;
    wait = std::max(wait, reply_timeout(h));
  }
  const auto deadline = Clock::now() + wait;
  while (Clock::now() < deadline) {
    if (stopping()) {
      interrupted_ = true;
      return;
    }
    if (unanswered_count() == 0) return;
    maybe_progress();
    std::this_thread::sleep_for(kWaitSlice);
  }
}

void RawScan::check_host_timeouts() {
  const double limit = plan_.timing.host_timeout.count();
  if (limit <= 0) return;
  const auto now = Clock::now();
  for (auto& h : hosts_) {
    if (h.started && !h.timed_out &&
        std::chrono::duration<double>(now - h.start).count() >= limit) {
      h.timed_out = true;
    }
  }
}

void RawScan::maybe_progress() {
  progress_.maybe_report(Clock::now(),
                         done_before_group_ + answered_.load(std::memory_order_relaxed),
                         hosts_done_, summary_.counters.probes_sent);
}

// Paced UDP: what the host's limiter did, and any port the budget left unverified.
template <class AddNote>
void RawScan::note_paced(std::size_t h, HostResult& r, bool cut_short, AddNote add_note) {
  const PacedHost& ph = paced_hosts_[h];
  const std::uint32_t limited = limited_[h].load();
  summary_.counters.rate_limited_probes += limited;
  char period[32];
  std::snprintf(period, sizeof period, "%.2f", ph.period_s);
  if (limited > 0) {
    add_note("ICMP error rate limit detected: " + std::to_string(ph.burst) +
             " errors to the fast pass, then silence that probes at one per " + period +
             " s answered: " + std::to_string(limited) +
             " probes ran into the limit, and silent ports were probed again at that pace");
  }
  if (cut_short || ph.pending.empty()) return;
  r.inconclusive = true;
  add_note(std::to_string(ph.pending.size()) + " of " + std::to_string(ports_.size()) +
           " ports were not verified at one probe per " + period +
           " s before the time budget ran out (their silence may be the rate limit): they are "
           "left out");
}

void RawScan::emit_group() {
  const std::size_t nports = ports_.size();
  for (std::size_t h = 0; h < hosts_.size(); ++h) {
    const HostEntry& host = hosts_[h];
    HostResult r;
    r.address = host.target.address;
    r.hostname = host.target.hostname;
    r.elapsed = host.started ? Clock::now() - host.start : Clock::duration{};
    if (!host.authorized) {
      r.complete = false;
      r.note = engine::note::kOutOfScope;
      r.refused_by_scope = true;
      ++hosts_done_;
      sink_.host(r);
      continue;
    }
    if (reported_early_ && reported_early_[h].load(std::memory_order_relaxed)) {
      ++summary_.hosts_up;
      ++hosts_done_;
      continue;
    }
    const bool cut_short = host.timed_out || interrupted_ || stopping() || !summary_.error.empty();
    bool any_answer = false;
    r.ports.reserve(nports);
    // Paced UDP: ports the time budget left unverified are not reported (their silence may
    // be the rate limit); the verified ones are.
    std::vector<bool> unverified;
    if (paced_ && paced_hosts_.size() > h && !paced_hosts_[h].pending.empty() && !cut_short) {
      unverified.assign(nports, false);
      for (const std::uint32_t pi : paced_hosts_[h].pending) unverified[pi] = true;
      r.unverified_ports = paced_hosts_[h].pending.size();
    }
    for (std::size_t p = 0; p < nports; ++p) {
      const std::uint8_t a = answer_ ? answer_[h * nports + p].load() : 0;
      if (a != 0) {
        const auto o = decode(a);
        r.ports.push_back({ports_[p], proto_of(probe_.technique), o.state, o.reason, 0});
        any_answer = any_answer || proves_host_up(o.reason);
      } else if (!cut_short && (unverified.empty() || !unverified[p])) {
        r.ports.push_back({ports_[p], proto_of(probe_.technique),
                           technique_info(probe_.technique).silence, Reason::no_response, 0});
      }
    }
    // Probes the kernel never took (send_probe) are not silence: a host that answered
    // others is inconclusive; one that answered nothing (its address did not resolve) keeps
    // its silence, with the reason in its note.
    std::size_t never_sent = 0;
    std::size_t ip_pairs = 0;  // discovery's neighbour pair is a frame, not an IP probe
    std::size_t ip_never_sent = 0;
    for (std::size_t p = 0; p < nports && answer_; ++p) {
      const bool unsent =
          answer_[h * nports + p].load() == 0 && attempts_[h * nports + p].load() == 0;
      never_sent += unsent;
      if (probe_.neighbor && ports_[p] == raw::kNeighborPort) continue;
      ++ip_pairs;
      ip_never_sent += unsent;
    }
    if (never_sent > 0 && !cut_short) {
      // No IP probe ever left for an address that never answered: its neighbour did not
      // resolve. Anything less is a host with ports nobody probed.
      const std::size_t refused = refused_locally_.size() > h ? refused_locally_[h] : 0;
      const bool none_left = !any_answer && ip_never_sent + refused == ip_pairs;
      r.inconclusive = !none_left;
      r.note = std::to_string(never_sent) + " of " + std::to_string(nports) +
               " probes could not be sent (the kernel refused them: ENOBUFS" +
               (none_left ? "; an address whose neighbour does not resolve)"
                          : "), so those ports are not known");
    }
    if (cut_short) {
      r.complete = false;
      const std::size_t silent = answer_ ? unanswered(h) : nports;
      r.note = host.timed_out
                   ? engine::note::host_timeout(plan_.timing.host_timeout.count(), silent, nports)
                   : engine::note::interrupted(silent, nports);
    }
    const std::uint32_t late = late_ ? late_[h].load() : 0;
    const bool unsettled = unsettled_ && late > 0;
    auto add_note = [&r](const std::string& text) {
      r.note += (r.note.empty() ? "" : "; ") + text;
    };
    if (paced_ && paced_hosts_.size() > h) {
      note_paced(h, r, cut_short, add_note);
    } else if (rate_limited_.size() > h && rate_limited_[h]) {
      r.inconclusive = true;
      add_note(
          "rate limiting detected: silent ports probed again after 1 s drew error replies "
          "(RST/ICMP), so silent ports may be closed");
    } else if (unsettled) {
      r.inconclusive = true;
      add_note(std::to_string(late) +
               " replies needed a retransmission and the last pass still drew answers: silent "
               "ports may be wrong");
    } else if (late > 0) {
      add_note(std::to_string(late) +
               " replies needed a retransmission (loss or rate limiting); the last pass drew "
               "no new answer");
    }
    if (any_answer) ++summary_.hosts_up;
    ++hosts_done_;
    sink_.host(r);
  }
}

class RawEngine final : public ScanEngine {
 public:
  RawEngine(const raw::Probe& probe, RawOptions options)
      : probe_(probe), options_(std::move(options)) {}
  ScanSummary run(const ScanPlan& plan, ReportSink& sink, const RunControl& control) override {
    RawScan scan(probe_, options_, plan, sink, control);
    return scan.run();
  }

 private:
  const raw::Probe& probe_;
  RawOptions options_;
};

}  // namespace

std::unique_ptr<ScanEngine> engine::make_raw_ping_engine(RawOptions options) {
  return std::make_unique<RawEngine>(raw::ping_probe(), std::move(options));
}

std::unique_ptr<ScanEngine> make_raw_engine(Technique technique, RawOptions options) {
  const raw::Probe* probe = raw::probe_for(technique);
  if (!probe)
    throw std::invalid_argument("no raw probe for technique " + std::string(name(technique)));
  return std::make_unique<RawEngine>(*probe, std::move(options));
}

}  // namespace portvigil
