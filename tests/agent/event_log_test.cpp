// The event log: JSON lines, no duplicates, and resume() after a crash between the
// database commit and the append.
#include "portvigil/exporters/event_log.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "agent_test_util.hpp"

namespace portvigil {
namespace {

using std::chrono::milliseconds;
using test::read_all;
using test::write_all;

std::vector<std::string> read_lines(const std::string& path) {
  return test::split_lines(read_all(path));
}

// The "id" of an event line, or -1 when the line is not one complete JSON event object.
std::int64_t line_id(const std::string& line) {
  if (!line.starts_with("{\"id\":") || !line.ends_with("}")) return -1;
  return std::stoll(line.substr(6));
}

ChangeEvent make_event(std::int64_t id, std::string host = "198.18.0.2") {
  ChangeEvent e;
  e.id = id;
  e.time = std::chrono::system_clock::time_point(milliseconds(1700000000123));
  e.job = "web";
  e.host = std::move(host);
  e.change.proto = Proto::tcp;
  e.change.port = 443;
  e.change.from = PortState::closed;
  e.change.from_reason = Reason::reset;
  e.change.to = PortState::open;
  e.change.to_reason = Reason::syn_ack;
  e.expected = false;
  e.scan_id = 7;
  return e;
}

TEST(EventJson, HostEventsAndAbsentPorts) {
  auto port = make_event(20);
  port.change.from_absent = true;
  EXPECT_NE(event_json(port).find("\"from\":\"absent\",\"to\":\"open\",\"from_reason\":\"none\""),
            std::string::npos)
      << event_json(port);
  ChangeEvent host = make_event(21);
  host.kind = EventKind::host_appeared;
  host.ports = {{Proto::tcp, 22}, {Proto::udp, 53}};
  EXPECT_EQ(event_json(host),
            "{\"id\":21,\"time\":\"2023-11-14T22:13:20.123Z\",\"kind\":\"host-appeared\","
            "\"job\":\"web\",\"host\":\"198.18.0.2\",\"ports\":[\"22/tcp\",\"53/udp\"],"
            "\"expected\":false,\"scan_id\":7}");
  host.kind = EventKind::host_gone_silent;
  host.ports.clear();
  EXPECT_NE(event_json(host).find("\"kind\":\"host-gone-silent\",\"job\":\"web\",\"host\":"
                                  "\"198.18.0.2\",\"ports\":[]"),
            std::string::npos)
      << event_json(host);
}

TEST(EventJson, DocumentedFields) {
  EXPECT_EQ(event_json(make_event(12)),
            "{\"id\":12,\"time\":\"2023-11-14T22:13:20.123Z\",\"kind\":\"port\",\"job\":\"web\","
            "\"host\":\"198.18.0.2\",\"proto\":\"tcp\",\"port\":443,\"from\":\"closed\","
            "\"to\":\"open\",\"from_reason\":\"reset\",\"to_reason\":\"syn-ack\","
            "\"expected\":false,\"scan_id\":7}");
  auto e = make_event(13);
  e.change.proto = Proto::udp;
  e.change.port = 53;
  e.change.from = PortState::open;
  e.change.to = PortState::open_filtered;
  e.change.from_reason = Reason::udp_response;
  e.change.to_reason = Reason::no_response;
  e.expected = true;
  const auto j = event_json(e);
  EXPECT_NE(j.find("\"proto\":\"udp\",\"port\":53"), std::string::npos) << j;
  EXPECT_NE(j.find("\"to\":\"open|filtered\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"from_reason\":\"udp-response\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"expected\":true"), std::string::npos) << j;
}

TEST(EventJson, ChangeIdFollowsTheIdWhenThereIsOne) {
  auto e = make_event(14);
  e.change_id = "3c38cf2ff8c43cacead19dbc3c7b7594";
  EXPECT_TRUE(event_json(e).starts_with(
      "{\"id\":14,\"change_id\":\"3c38cf2ff8c43cacead19dbc3c7b7594\",\"time\":"))
      << event_json(e);
  EXPECT_EQ(event_json(make_event(14)).find("change_id"), std::string::npos);
}

TEST(EventJson, EscapesOddHostNames) {
  const auto j = event_json(make_event(1, "we\"ird\\host\nname\t\x01\x1f-caf\xc3\xa9"));
  EXPECT_NE(j.find("\"host\":\"we\\\"ird\\\\host\\u000aname\\u0009\\u0001\\u001f-caf\xc3\xa9\""),
            std::string::npos)
      << j;
  EXPECT_EQ(j.find('\n'), std::string::npos) << "a raw newline would split the JSON line";
  auto e = make_event(2);
  e.job = "a\"b";
  EXPECT_NE(event_json(e).find("\"job\":\"a\\\"b\""), std::string::npos);
}

TEST(EventLog, PublishAppendsLinesAndSkipsIdsAlreadyWritten) {
  test::TempDir dir("publish");
  const auto path = dir.file("events.jsonl");
  {
    EventLog log(path);
    EXPECT_EQ(log.last_id(), 0);
    log.publish(std::vector<ChangeEvent>{make_event(1), make_event(2)});
    EXPECT_EQ(log.last_id(), 2);
    log.publish(std::vector<ChangeEvent>{make_event(2), make_event(3)});  // 2 again: skipped
    log.publish(std::vector<ChangeEvent>{});
    EXPECT_EQ(log.last_id(), 3);
  }
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i], event_json(make_event(static_cast<std::int64_t>(i) + 1)));
  }
  // Reopening finds the last id in the file and keeps skipping.
  {
    EventLog log(path);
    EXPECT_EQ(log.last_id(), 3);
    log.publish(std::vector<ChangeEvent>{make_event(1), make_event(3), make_event(4)});
  }
  lines = read_lines(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(line_id(lines[3]), 4);
}

TEST(EventLog, UnwritableFileThrowsNamingIt) {
  try {
    EventLog log("/nonexistent-dir-portvigil/events.jsonl");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-portvigil/events.jsonl"),
              std::string::npos)
        << e.what();
  }
}

// A full disk: the append fails with the file's name and errno's text, last_id() stays, and the
// file keeps only whole lines, so a later publish writes them.
TEST(EventLog, FailedAppendThrowsAndKeepsLastId) {
  EventLog full("/dev/full");
  try {
    full.publish(std::vector<ChangeEvent>{make_event(1), make_event(2)});
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/dev/full"), std::string::npos) << what;
    EXPECT_NE(what.find("2 events"), std::string::npos) << what;
    EXPECT_NE(what.find(std::strerror(ENOSPC)), std::string::npos) << what;
  }
  EXPECT_EQ(full.last_id(), 0);
}

// A store with `n` committed events of job "web" (host 198.18.0.2, port 1000 + k toggling).
class EventLogResume : public testing::Test {
 protected:
  test::TempDir dir{"resume"};
  Store store = Store::open(dir.file("portvigil.db"));
  std::string path = dir.file("events.jsonl");
  std::set<std::uint16_t> open_ports;

  std::vector<ChangeEvent> scan() {
    HostResult h;
    h.address = asio::ip::make_address("198.18.0.2");
    for (std::uint16_t p = 1000; p < 1020; ++p) {
      const bool open = open_ports.contains(p);
      h.ports.push_back({p, Proto::tcp, open ? PortState::open : PortState::closed,
                         open ? Reason::syn_ack : Reason::reset, 64});
    }
    const auto now = std::chrono::system_clock::now();
    const auto id = store.begin_scan("web", Technique::syn, now);
    return store.commit_scan(id, std::span<const HostResult>(&h, 1), ScanCounters{}, now);
  }

  // Commits scans until the store has `n` more events; returns them.
  std::vector<ChangeEvent> make_events(std::size_t n) {
    std::vector<ChangeEvent> all;
    if (!store.baseline("web", "198.18.0.2").exists) {
      EXPECT_TRUE(scan().empty());
    }
    std::uint16_t port = 1000;
    while (all.size() < n) {
      if (!open_ports.erase(port)) open_ports.insert(port);
      port = static_cast<std::uint16_t>(1000 + (port - 1000 + 7) % 20);
      for (auto& e : scan()) all.push_back(e);
    }
    return all;
  }

  // Every event of the store appears exactly once in the file, in id order, and the file
  // holds nothing else.
  void expect_file_matches_store() {
    const auto events = store.events_after(0, 100000);
    const auto text = read_all(path);
    ASSERT_TRUE(text.empty() || text.back() == '\n') << "last line unterminated";
    const auto lines = read_lines(path);
    ASSERT_EQ(lines.size(), events.size()) << text;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i], event_json(events[i])) << "line " << i + 1;
    }
  }
};

TEST_F(EventLogResume, NothingMissingWritesNothing) {
  const auto events = make_events(5);
  {
    EventLog log(path);
    log.publish(events);
  }
  EventLog log(path);
  EXPECT_EQ(log.resume(store), 0u);
  expect_file_matches_store();
}

TEST_F(EventLogResume, CrashBeforeAppendIsRepaired) {
  const auto first = make_events(6);
  {
    EventLog log(path);
    log.publish(first);
  }
  // The agent committed these, then died before publishing them.
  const auto lost = make_events(4);
  ASSERT_GE(lost.size(), 4u);
  EventLog log(path);
  EXPECT_EQ(log.resume(store), lost.size());
  EXPECT_EQ(log.last_id(), lost.back().id);
  expect_file_matches_store();
  // A second resume (next start) finds nothing to do.
  EventLog again(path);
  EXPECT_EQ(again.resume(store), 0u);
  expect_file_matches_store();
}

TEST_F(EventLogResume, LastLineRemovedIsRewritten) {
  const auto events = make_events(5);
  {
    EventLog log(path);
    log.publish(events);
  }
  auto text = read_all(path);
  text.pop_back();
  text.erase(text.rfind('\n') + 1);  // drop the whole last line
  write_all(path, text);
  ASSERT_EQ(read_lines(path).size(), events.size() - 1);
  EventLog log(path);
  EXPECT_EQ(log.resume(store), 1u);
  expect_file_matches_store();
}

TEST_F(EventLogResume, TornLastLineIsRepaired) {
  // A kill -9 in the middle of an append (stdio flushes a full buffer mid-line) leaves a
  // partial last line. Its event is in the database; the next start must write it whole.
  const auto events = make_events(5);
  {
    EventLog log(path);
    log.publish(events);
  }
  auto text = read_all(path);
  text.resize(text.size() - 40);  // cut the last line after its "id"
  write_all(path, text);
  {
    EventLog log(path);
    log.resume(store);
    const auto more = make_events(2);
    log.publish(more);
  }
  expect_file_matches_store();
}

TEST_F(EventLogResume, MissingFileIsRebuiltFromTheStore) {
  const auto events = make_events(3);
  EventLog log(path);
  EXPECT_EQ(log.resume(store), events.size());
  expect_file_matches_store();
}

// logrotate moved the file away: with the agent's high-water mark, the new file starts
// with the next new event, not with every event still in the database.
TEST_F(EventLogResume, RotatedFileIsNotRefilled) {
  const auto old = make_events(4);
  {
    EventLog log(path);
    log.publish(old);
    store.set_published_event_id(log.last_id());
  }
  std::filesystem::rename(path, path + ".1");
  const auto fresh = make_events(2);
  EventLog log(path);
  log.skip_to_if_empty(store.published_event_id());
  EXPECT_EQ(log.resume(store), fresh.size());
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), fresh.size());
  EXPECT_EQ(lines[0], event_json(fresh[0]));
}

TEST_F(EventLogResume, ResumePagesThroughLargeBacklogs) {
  // resume() reads the store 1000 events at a time; every scan flips all 20 ports.
  ASSERT_TRUE(scan().empty());
  while (store.events_after(0, 100000).size() < 2100) {
    for (std::uint16_t p = 1000; p < 1020; ++p) {
      if (!open_ports.erase(p)) open_ports.insert(p);
    }
    EXPECT_EQ(scan().size(), 20u);
  }
  EventLog log(path);
  EXPECT_EQ(log.resume(store), store.events_after(0, 100000).size());
  expect_file_matches_store();
}

}  // namespace
}  // namespace portvigil
