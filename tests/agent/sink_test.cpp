// Event sinks: the webhook sink against a real HTTP receiver on loopback, the registry, and
// the runner that delivers committed events at least once and in id order.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <asio/ip/address.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "agent_test_util.hpp"
#include "log.hpp"
#include "portvigil/config/agent_config.hpp"
#include "portvigil/exporters/event_json.hpp"
#include "portvigil/exporters/event_log.hpp"
#include "portvigil/exporters/sinks.hpp"
#include "portvigil/storage/store.hpp"
#include "sink_runner.hpp"
#include "webhook_receiver.hpp"

namespace portvigil {
namespace {

using namespace std::chrono_literals;

const std::atomic<bool> kNotCancelled{false};

SinkOptions webhook(const std::string& url, std::chrono::duration<double> timeout = 2s) {
  return SinkOptions{"hook", url, "", timeout};
}

// Two events as a commit makes them: a port that opened, then a host that appeared.
std::vector<ChangeEvent> sample_events(std::int64_t first_id = 1) {
  std::vector<ChangeEvent> events(2);
  events[0].id = first_id;
  events[0].time =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'764'000'000'123));
  events[0].job = "web";
  events[0].host = "198.18.0.2";
  events[0].change = PortChange{
      Proto::tcp, 8443, PortState::closed, Reason::reset, PortState::open, Reason::syn_ack, false};
  events[0].scan_id = 7;
  events[1] = events[0];
  events[1].id = first_id + 1;
  events[1].kind = EventKind::host_appeared;
  events[1].host = "198.18.0.3";
  events[1].ports = {{Proto::tcp, 22}};
  return events;
}

template <typename Predicate>
bool eventually(Predicate done, std::chrono::seconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

TEST(WebhookSink, PostsTheBatchAsJsonAndSucceedsOn2xx) {
  test::WebhookReceiver receiver;
  receiver.set_status(204);
  const auto sink = make_sink("webhook", webhook(receiver.url("/hook?token=s3cret")));
  const auto events = sample_events();
  const auto result = sink->deliver(events, kNotCancelled);
  EXPECT_TRUE(result.delivered) << result.error;
  ASSERT_EQ(receiver.bodies().size(), 1u);
  // The batch is the events as the event log writes them, in order, in one object.
  EXPECT_EQ(receiver.bodies()[0],
            "{\"events\":[" + event_json(events[0]) + "," + event_json(events[1]) + "]}\n");
  EXPECT_EQ(
      receiver.bodies()[0].rfind(R"({"events":[{"id":1,"time":"2025-11-24T16:00:00.123Z")", 0), 0u)
      << receiver.bodies()[0];
  const auto head = receiver.requests().at(0);
  EXPECT_EQ(head.rfind("POST /hook?token=s3cret HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: application/json"), std::string::npos) << head;
}

TEST(WebhookSink, AnythingButA2xxIsAFailureThatSaysWhy) {
  test::WebhookReceiver receiver;
  const auto sink = make_sink("webhook", webhook(receiver.url()));
  for (const int status : {500, 302, 404}) {
    receiver.set_status(status);
    const auto result = sink->deliver(sample_events(), kNotCancelled);
    EXPECT_FALSE(result.delivered) << status;
    EXPECT_EQ(result.error, "HTTP status " + std::to_string(status));
  }
  const auto refused = make_sink(
      "webhook", webhook("http://127.0.0.1:" + std::to_string(test::free_loopback_port())));
  const auto result = refused->deliver(sample_events(), kNotCancelled);
  EXPECT_FALSE(result.delivered);
  EXPECT_NE(result.error.find("onnect"), std::string::npos) << result.error;
}

TEST(WebhookSink, ASilentReceiverTimesOutAndStoppingCancels) {
  test::WebhookReceiver receiver;
  receiver.set_status(0);
  const auto sink = make_sink("webhook", webhook(receiver.url(), 500ms));
  auto started = std::chrono::steady_clock::now();
  auto result = sink->deliver(sample_events(), kNotCancelled);
  EXPECT_FALSE(result.delivered);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "the timeout did not hold";
  // A long timeout, cut short by the cancel flag (the agent stopping).
  const auto patient = make_sink("webhook", webhook(receiver.url(), 60s));
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    cancel = true;
  });
  started = std::chrono::steady_clock::now();
  result = patient->deliver(sample_events(), cancel);
  canceller.join();
  EXPECT_FALSE(result.delivered);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << "cancelling did not stop it";
}

std::vector<std::int64_t> event_ids_of(const std::string& text) {
  std::vector<std::int64_t> ids;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    ids.push_back(event_line_id(line).value_or(-1));
  return ids;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The file sink writes what the event log writes, and a batch delivered again (a crash
// between the append and the cursor's write) is not written twice.
TEST(FileSink, AppendsEventLinesAndSkipsABatchItAlreadyHas) {
  test::TempDir dir{"file-sink"};
  const auto path = dir.file("archive.jsonl");
  SinkOptions options{"archive", "", path, 2s};
  const auto events = sample_events();
  const auto want = event_json(events[0]) + "\n" + event_json(events[1]) + "\n";
  {
    const auto sink = make_sink("file", options);
    ASSERT_TRUE(sink->deliver(events, kNotCancelled).delivered);
    EXPECT_EQ(read_file(path), want);
  }
  // A new process (the cursor was not written): the same batch, then the next one.
  const auto sink = make_sink("file", options);
  ASSERT_TRUE(sink->deliver(events, kNotCancelled).delivered);
  EXPECT_EQ(read_file(path), want) << "a redelivered batch was written twice";
  const auto next = sample_events(3);
  ASSERT_TRUE(sink->deliver(next, kNotCancelled).delivered);
  EXPECT_EQ(read_file(path), want + event_json(next[0]) + "\n" + event_json(next[1]) + "\n");
  // Every line reads back as an event.
  std::istringstream lines(read_file(path));
  std::int64_t id = 0;
  for (std::string line; std::getline(lines, line);) EXPECT_EQ(event_line_id(line), ++id) << line;
}

// The path is untrusted like the event log's: a symlink is not followed and a file that is
// not an event log is not written. Both are failed deliveries (retried, so fixing the path
// on disk is enough), and so is a directory that does not exist yet.
TEST(FileSink, RefusesASymlinkAndAFileThatIsNotAnEventLogAndRetries) {
  test::TempDir dir{"file-sink"};
  const auto target = dir.file("target");
  { std::ofstream(target) << "precious\n"; }
  const auto link = dir.file("link.jsonl");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  const auto events = sample_events();
  auto result = make_sink("file", SinkOptions{"a", "", link, 2s})->deliver(events, kNotCancelled);
  EXPECT_FALSE(result.delivered);
  EXPECT_NE(result.error.find("file sink \"a\""), std::string::npos) << result.error;
  EXPECT_NE(result.error.find("symbolic link"), std::string::npos) << result.error;
  result = make_sink("file", SinkOptions{"a", "", target, 2s})->deliver(events, kNotCancelled);
  EXPECT_FALSE(result.delivered);
  EXPECT_NE(result.error.find("not an event log"), std::string::npos) << result.error;
  EXPECT_EQ(read_file(target), "precious\n");
  const auto later = dir.file("later");
  const auto sink = make_sink("file", SinkOptions{"a", "", later + "/events.jsonl", 2s});
  EXPECT_FALSE(sink->deliver(events, kNotCancelled).delivered);
  std::filesystem::create_directory(later);
  result = sink->deliver(events, kNotCancelled);
  EXPECT_TRUE(result.delivered) << result.error;
  EXPECT_EQ(event_ids_of(read_file(later + "/events.jsonl")), (std::vector<std::int64_t>{1, 2}));
}

// Opening a file with lines that are not events sets them aside, and the sink says so.
TEST(FileSink, ReportsWhatOpeningTheFileRepaired) {
  test::TempDir dir{"file-sink"};
  const auto path = dir.file("archive.jsonl");
  const auto events = sample_events();
  { std::ofstream(path) << event_json(events[0]) << "\ngarbage\n"; }
  const auto result =
      make_sink("file", SinkOptions{"a", "", path, 2s})->deliver(events, kNotCancelled);
  EXPECT_TRUE(result.delivered) << result.error;
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("set aside 1 lines"), std::string::npos) << result.notes[0];
  EXPECT_EQ(read_file(path), event_json(events[0]) + "\n" + event_json(events[1]) + "\n");
}

// The stdout sink writes the same lines on the agent's standard output.
TEST(StdoutSink, WritesOneEventLinePerEvent) {
  const auto sink = make_sink("stdout", SinkOptions{"out", "", "", 2s});
  const auto events = sample_events();
  testing::internal::CaptureStdout();
  const auto result = sink->deliver(events, kNotCancelled);
  const auto out = testing::internal::GetCapturedStdout();
  EXPECT_TRUE(result.delivered) << result.error;
  EXPECT_EQ(out, event_json(events[0]) + "\n" + event_json(events[1]) + "\n");
}

// A stdout nobody reads (a full pipe) holds up only this sink: a stop cancels the wait, and
// once the reader drains the pipe the retry prints each event once, no line torn or doubled.
TEST(StdoutSink, AFullPipeIsCancellableAndTheRetryPrintsEachLineOnce) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const int saved = ::dup(STDOUT_FILENO);
  ASSERT_GE(saved, 0);
  std::fflush(stdout);
  ASSERT_GE(::dup2(fds[1], STDOUT_FILENO), 0);
  // Fill the pipe.
  ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  std::string filler(4096, 'x');
  std::size_t filled = 0;
  while (true) {
    const auto n = ::write(fds[1], filler.data(), filler.size());
    if (n <= 0) break;
    filled += static_cast<std::size_t>(n);
  }
  ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) & ~O_NONBLOCK);
  const auto sink = make_sink("stdout", SinkOptions{"out", "", "", 30s});
  const auto events = sample_events();
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    cancel = true;
  });
  const auto started = std::chrono::steady_clock::now();
  const auto blocked = sink->deliver(events, cancel);
  canceller.join();
  const auto waited = std::chrono::steady_clock::now() - started;
  // Drain the pipe from a thread while the retry writes.
  std::string out;
  std::thread reader([&] {
    char buf[8192];
    while (true) {
      const auto n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  });
  const auto retried = sink->deliver(events, kNotCancelled);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  EXPECT_FALSE(blocked.delivered);
  EXPECT_NE(blocked.error.find("cancelled"), std::string::npos) << blocked.error;
  EXPECT_LT(waited, 3s) << "a stop did not cancel the wait";
  EXPECT_TRUE(retried.delivered) << retried.error;
  ASSERT_GE(out.size(), filled);
  EXPECT_EQ(out.substr(filled), event_json(events[0]) + "\n" + event_json(events[1]) + "\n");
}

// One encoder: a name or host that is not UTF-8 or holds control bytes still makes a line
// that is valid JSON and reads back as an event.
TEST(EventJson, HostileBytesStayValidJsonThatReadsBackAsAnEvent) {
  auto event = sample_events()[0];
  event.job = std::string("we\"b\n\x01", 6);
  event.host = std::string("host\xff\xfe\x1b[31m");
  const auto line = event_json(event);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  EXPECT_NE(line.find(R"("host":"host\ufffd\ufffd\u001b[31m")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("job":"we\"b\u000a\u0001")"), std::string::npos) << line;
  EXPECT_EQ(event_line_id(line), 1) << line;
}

TEST(SinkRegistry, BuildsEveryTypeTheConfigurationAcceptsAndNothingElse) {
  std::set<std::string_view> registered;
  for (const auto& [name, factory] : sink_registry()) registered.insert(name);
  const auto accepted = sink_type_names();
  EXPECT_EQ(registered, std::set<std::string_view>(accepted.begin(), accepted.end()));
  EXPECT_THROW((void)make_sink("carrier-pigeon", webhook("http://127.0.0.1:1/")),
               std::invalid_argument);
}

TEST(SinkRunner, LogsOnlyTheOriginOfAUrl) {
  EXPECT_EQ(url_origin("https://user:pw@hooks.example.com:8443/h/abc?token=x#f"),
            "https://hooks.example.com:8443");
  EXPECT_EQ(url_origin("http://198.18.0.9"), "http://198.18.0.9");
  EXPECT_EQ(url_origin("http://[2001:db8::1]:80?q"), "http://[2001:db8::1]:80");
}

// A store whose job "web" changes a port at every scan: one event per scan.
class SinkRunnerTest : public testing::Test {
 protected:
  test::TempDir dir{"sink"};
  std::string db = dir.file("portvigil.db");
  Store store = Store::open(db);
  Logger log{LogLevel::error};
  AgentMetrics metrics;
  bool open_ = false;

  std::int64_t make_event(
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
    HostResult h;
    h.address = asio::ip::make_address("198.18.0.2");
    h.ports.push_back({1000, Proto::tcp, open_ ? PortState::open : PortState::closed,
                       open_ ? Reason::syn_ack : Reason::reset, 64});
    const auto id = store.begin_scan("web", Technique::syn, now);
    const auto events =
        store.commit_scan(id, std::span<const HostResult>(&h, 1), ScanCounters{}, now);
    open_ = !open_;
    return events.empty() ? 0 : events.back().id;
  }
  std::vector<std::int64_t> make_events(std::size_t n) {
    std::vector<std::int64_t> ids;
    while (ids.size() < n) {
      if (const auto id = make_event()) ids.push_back(id);
    }
    return ids;
  }
  SinkConfig sink_config(const std::string& url, int batch_size = 100,
                         std::chrono::duration<double> timeout = 2s) {
    SinkConfig c;
    c.name = "hook";
    c.type = "webhook";
    c.url = url;
    c.timeout = timeout;
    c.batch_size = batch_size;
    return c;
  }
  // What the agent does when it attaches its database (attach_store).
  void set_new_cursor() {
    if (!store.sink_cursor("hook")) store.set_sink_cursor("hook", store.last_event_id());
  }
  std::unique_ptr<SinkRunner> runner(const SinkConfig& c) {
    return std::make_unique<SinkRunner>(
        c, make_sink(c.type, SinkOptions{c.name, c.url, c.path, c.timeout}), db, log, metrics);
  }
  static std::vector<std::int64_t> ids_in(const std::vector<std::string>& bodies) {
    std::vector<std::int64_t> ids;
    const std::regex event_id(R"(\{"id":(\d+))");
    for (const auto& b : bodies) {
      for (auto it = std::sregex_iterator(b.begin(), b.end(), event_id);
           it != std::sregex_iterator(); ++it) {
        ids.push_back(std::stoll((*it)[1]));
      }
    }
    return ids;
  }
};

// Until the agent sets its cursor the runner sends nothing; then it sends each event after
// the cursor once, in order, in batches of at most batch-size.
TEST_F(SinkRunnerTest, WaitsForItsCursorThenDeliversEachEventAfterItInOrderInBatches) {
  make_events(3);  // history: not sent to a sink added later
  test::WebhookReceiver receiver;
  const auto config = sink_config(receiver.url(), 2);
  auto r = runner(config);
  std::this_thread::sleep_for(300ms);
  r->wake();
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(receiver.requests().empty()) << "delivered before its cursor was set";
  EXPECT_FALSE(store.sink_cursor("hook")) << "the runner set its own cursor";
  set_new_cursor();
  const auto ids = make_events(5);
  r->wake();
  ASSERT_TRUE(eventually([&] { return ids_in(receiver.bodies()).size() >= 5; }))
      << receiver.bodies().size();
  EXPECT_EQ(ids_in(receiver.bodies()), ids);
  for (const auto& body : receiver.bodies()) {
    EXPECT_LE(ids_in({body}).size(), 2u) << "batch-size 2: " << body;
    EXPECT_EQ(body.rfind("{\"events\":[", 0), 0u) << body;
  }
  ASSERT_TRUE(eventually([&] { return store.sink_cursor("hook") == ids.back(); }));
  EXPECT_TRUE(eventually([&] {
    return metrics.render().find("portvigil_sink_pending_events{sink=\"hook\"} 0") !=
           std::string::npos;
  }));
  EXPECT_NE(metrics.render().find("portvigil_sink_events_delivered_total{sink=\"hook\"} 5"),
            std::string::npos)
      << metrics.render();
}

// The receiver down (refusing connections), then back: every event arrives once, in order,
// and the failures are counted.
TEST_F(SinkRunnerTest, AReceiverThatIsDownGetsEveryEventOnceInOrderWhenItReturns) {
  const auto port = test::free_loopback_port();
  const auto config = sink_config("http://127.0.0.1:" + std::to_string(port) + "/hook");
  set_new_cursor();
  // The events exist before the runner starts: its first attempt carries all 4 (one made
  // while it already ran could be tried alone first, and pending read 1).
  const auto ids = make_events(4);
  auto r = runner(config);
  r->wake();
  const std::regex failed(R"(portvigil_sink_delivery_failures_total\{sink="hook"\} [1-9])");
  ASSERT_TRUE(eventually([&] { return std::regex_search(metrics.render(), failed); }))
      << "no failed attempt against a closed port\n"
      << metrics.render();
  EXPECT_NE(metrics.render().find("portvigil_sink_pending_events{sink=\"hook\"} 4"),
            std::string::npos)
      << metrics.render();
  test::WebhookReceiver receiver(port);
  ASSERT_TRUE(eventually([&] { return ids_in(receiver.bodies()).size() >= 4; }, 30s));
  const auto more = make_events(2);
  r->wake();
  ASSERT_TRUE(eventually([&] { return ids_in(receiver.bodies()).size() >= 6; }));
  auto want = ids;
  want.insert(want.end(), more.begin(), more.end());
  EXPECT_EQ(ids_in(receiver.bodies()), want);
}

TEST_F(SinkRunnerTest, ARestartResumesAtTheStoredCursorAndStoppingCancelsAnAttempt) {
  test::WebhookReceiver receiver;
  const auto config = sink_config(receiver.url(), 100, 20s);
  set_new_cursor();
  auto first = runner(config);
  const auto before = make_events(2);
  first->wake();
  ASSERT_TRUE(eventually([&] { return ids_in(receiver.bodies()).size() >= 2; }));
  // The receiver hangs: the agent stops during an attempt, which must not wait for the
  // 20 s timeout (libcurl looks at the cancel flag about once a second), nor move the cursor.
  const auto answered = receiver.requests().size();
  receiver.set_status(0);
  const auto during = make_events(1);
  first->wake();
  ASSERT_TRUE(eventually([&] { return receiver.requests().size() > answered; }))
      << "the attempt to cancel never reached the receiver";
  const auto stopping = std::chrono::steady_clock::now();
  first.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 5s);
  EXPECT_EQ(store.sink_cursor("hook"), before.back());
  const auto while_down = make_events(2);
  receiver.set_status(200);
  auto second = runner(config);
  ASSERT_TRUE(eventually([&] { return ids_in(receiver.bodies()).size() >= 5; }));
  auto want = before;
  want.insert(want.end(), during.begin(), during.end());
  want.insert(want.end(), while_down.begin(), while_down.end());
  EXPECT_EQ(ids_in(receiver.bodies()), want);
}

// Retention keeps what a sink has not delivered, however old; the rest goes as usual.
TEST_F(SinkRunnerTest, RetentionKeepsTheEventsASinkHasNotDelivered) {
  const auto old = std::chrono::system_clock::now() - std::chrono::hours(24 * 100);
  std::vector<std::int64_t> ids;
  while (ids.size() < 4) {
    if (const auto id = make_event(old)) ids.push_back(id);
  }
  store.set_sink_cursor("hook", ids[1]);  // delivered up to the second
  Retention r;
  r.events = std::chrono::hours(24 * 90);
  r.keep_events_after = store.sink_cursor("hook");
  EXPECT_EQ(store.prune(r, std::chrono::system_clock::now()).events, 2u);
  const auto left = store.events_after(0, 100);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].id, ids[2]);
  EXPECT_EQ(left[1].id, ids[3]);
}

}  // namespace
}  // namespace portvigil
