// Reading an untrusted event log back: only whole event lines count, anything else is set
// aside in <path>.corrupt-<time>, and no text can move the database's event id sequence
// beyond 2^53 (issue #11: one line with "id":99999999999999999999 exhausted it).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "agent_test_util.hpp"
#include "portvigil/exporters/event_log.hpp"
#include "portvigil/exporters/event_log_line.hpp"
#include "portvigil/exporters/reports.hpp"

namespace portvigil {
namespace {

using test::read_all;
using test::write_all;

ChangeEvent make_event(std::int64_t id) {
  ChangeEvent e;
  e.id = id;
  e.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
  e.job = "web";
  e.host = "198.18.0.2";
  e.change.proto = Proto::tcp;
  e.change.port = 443;
  e.change.from = PortState::closed;
  e.change.from_reason = Reason::reset;
  e.change.to = PortState::open;
  e.change.to_reason = Reason::syn_ack;
  e.scan_id = 7;
  return e;
}

std::string line(std::int64_t id) {
  return event_json(make_event(id)) + "\n";
}

// The files next to `path` whose names start with its name plus ".corrupt-".
std::vector<std::string> corrupt_copies(const std::string& path) {
  std::vector<std::string> out;
  const auto p = std::filesystem::path(path);
  for (const auto& e : std::filesystem::directory_iterator(p.parent_path())) {
    if (e.path().filename().string().starts_with(p.filename().string() + ".corrupt-")) {
      out.push_back(e.path().string());
    }
  }
  return out;
}

TEST(EventLineId, ReadsWhatEventJsonWrites) {
  EXPECT_EQ(event_line_id(event_json(make_event(12))), 12);
  EXPECT_EQ(event_line_id(event_json(make_event(kMaxEventLineId))), kMaxEventLineId);
  auto odd = make_event(3);
  odd.host = "we\"ird\\host\nname\x01-caf\xc3\xa9";
  EXPECT_EQ(event_line_id(event_json(odd)), 3);
  auto with_change_id = make_event(4);
  with_change_id.change_id = "3c38cf2ff8c43cacead19dbc3c7b7594";
  EXPECT_EQ(event_line_id(event_json(with_change_id)), 4);
}

// An event that opened a port carries what answered there, in the reports' encoding, and
// still reads back as an event; a hostile Server header stays inside its string.
TEST(EventLineId, EventsWithAServiceAreEvents) {
  auto e = make_event(5);
  ServiceIdentity s;
  s.outcome = ServiceOutcome::identified;
  s.protocol = "https";
  TlsCertificate c;
  c.version = "TLSv1.3";
  c.subject_cn = "staging.internal";
  c.sans = {"staging.internal", "198.18.0.7"};
  c.self_signed = true;
  s.tls = c;
  s.http = HttpHead{200, "HTTP/1.1 200 OK", "Jetty\"},\"id\":999,\"x\":{\""};
  e.service = s;
  const std::string json = event_json(e);
  EXPECT_EQ(event_line_id(json), 5);
  EXPECT_NE(json.find(",\"service\":" + service_json(s) + "}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"subject_cn\": \"staging.internal\""), std::string::npos) << json;
  EXPECT_EQ(event_json(make_event(5)).find("service"), std::string::npos) << "no service: no key";
}

// Other event kinds (host appeared / gone silent) have other fields: still events.
TEST(EventLineId, ToleratesOtherEventKinds) {
  EXPECT_EQ(event_line_id(R"({"id":5,"time":"2026-01-02T03:04:05.678Z","job":"web",)"
                          R"("host":"198.18.0.2","kind":"host-appeared","ports":[22,443],)"
                          R"("expected":false,"scan_id":9})"),
            5);
  EXPECT_EQ(event_line_id(R"({"id":6,"time":"2026-01-02T03:04:05.678Z","job":"web",)"
                          R"("host":"h","kind":"port","proto":"tcp","port":22,"from":"absent",)"
                          R"("to":"open","note":{"a":[1,2.5e3,null,true,"x"]}})"),
            6);
}

TEST(EventLineId, RejectsAnythingElse) {
  const std::string ok_rest = R"(,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h"})";
  for (const std::string id : {"99999999999999999999", "9223372036854775807", "9007199254740993",
                               "0", "-1", "1.0", "1e3", "\"5\"", "01", "true", "null", "[1]"}) {
    EXPECT_FALSE(event_line_id("{\"id\":" + id + ok_rest)) << id;
  }
  EXPECT_TRUE(event_line_id("{\"id\":1" + ok_rest));
  const std::vector<std::string> bad = {
      "",
      "{}",
      "garbage",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web"})",  // no host
      R"({"id":1,"job":"web","host":"h"})",                         // no time
      R"({"id":1,"time":"yesterday","job":"web","host":"h"})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":7,"host":"h"})",
      R"({"id":1,"id":2,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h"})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h"} x)",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h",})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h","port":70000})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h","expected":1})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h","change_id":7})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h","x":1,"x":2})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h\u00zz"})",
      R"({"\u0069d":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h"})",
      "{\"id\":1,\"time\":\"2026-01-02T03:04:05.678Z\",\"job\":\"w\teb\",\"host\":\"h\"}",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h","n":[[[[[[[[[1]]]]]]]]]})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h","n":[1,]})",
      R"({"id":1,"time":"2026-01-02T03:04:05.678Z","job":"web","host":"h","n":-})",
  };
  for (const auto& l : bad) EXPECT_FALSE(event_line_id(l)) << l;
  std::string huge = "{\"id\":1" + ok_rest;
  huge.insert(huge.size() - 1, ",\"pad\":\"" + std::string(kMaxEventLineBytes, 'a') + "\"");
  EXPECT_FALSE(event_line_id(huge));
}

// The reported case: a garbage line with a 20-digit id among good lines.
TEST(EventLogRecovery, HugeIdLineIsSetAsideAndIdsStaySane) {
  test::TempDir dir("recover-huge");
  const auto path = dir.file("events.jsonl");
  const std::string original =
      line(1) + line(2) + "{\"id\":99999999999999999999,\"junk\":1}\n" + line(3);
  write_all(path, original);
  EventLog log(path);
  EXPECT_EQ(log.last_id(), 3);
  EXPECT_EQ(read_all(path), line(1) + line(2) + line(3));
  const auto copies = corrupt_copies(path);
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(read_all(copies[0]), original);
  ASSERT_EQ(log.notes().size(), 1u);
  EXPECT_NE(log.notes()[0].find("set aside 1 lines"), std::string::npos) << log.notes()[0];
  EXPECT_NE(log.notes()[0].find(copies[0]), std::string::npos) << log.notes()[0];

  // The database continues after 3, and new events are appended after the kept lines.
  auto store = Store::open(dir.file("portvigil.db"));
  store.continue_event_ids_after(log.last_id());
  log.publish(std::vector<ChangeEvent>{make_event(4)});
  EXPECT_EQ(read_all(path), line(1) + line(2) + line(3) + line(4));
  // Reopening finds nothing more to set aside.
  EventLog again(path);
  EXPECT_EQ(again.last_id(), 4);
  EXPECT_TRUE(again.notes().empty());
  EXPECT_EQ(corrupt_copies(path).size(), 1u);
}

TEST(EventLogRecovery, IdsOutOfOrderOrJumpingAreSetAside) {
  test::TempDir dir("recover-order");
  const auto path = dir.file("events.jsonl");
  // 5 after 7 goes backwards; 7 + 2^32 + 1 jumps too far; 9 is fine again.
  write_all(path, line(1) + line(7) + line(5) + line(7) + line(7 + kMaxEventIdJump + 1) + line(9));
  EventLog log(path);
  EXPECT_EQ(log.last_id(), 9);
  EXPECT_EQ(read_all(path), line(1) + line(7) + line(9));
  ASSERT_EQ(log.notes().size(), 1u);
  EXPECT_NE(log.notes()[0].find("set aside 3 lines"), std::string::npos) << log.notes()[0];
}

TEST(EventLogRecovery, UnterminatedGarbageIsSetAsideNotCut) {
  test::TempDir dir("recover-tail");
  const auto path = dir.file("events.jsonl");
  write_all(path, line(1) + "operator notes, no newline");
  EventLog log(path);
  EXPECT_EQ(log.last_id(), 1);
  EXPECT_EQ(read_all(path), line(1));
  ASSERT_EQ(corrupt_copies(path).size(), 1u);
  EXPECT_EQ(read_all(corrupt_copies(path)[0]), line(1) + "operator notes, no newline");
}

TEST(EventLogRecovery, TornLineAfterGarbageIsDroppedWithIt) {
  test::TempDir dir("recover-torn");
  const auto path = dir.file("events.jsonl");
  const auto torn = line(3).substr(0, 30);
  write_all(path, line(1) + "junk\n" + line(2) + torn);
  EventLog log(path);
  EXPECT_EQ(log.last_id(), 2);
  EXPECT_EQ(read_all(path), line(1) + line(2));
}

TEST(EventLogRecovery, ControlBytesInTheNoteAreEscaped) {
  test::TempDir dir("recover-note");
  const auto path = dir.file("events.jsonl");
  write_all(path, line(1) + "forged\r2026-01-01T00:00:00Z ERROR x\x1b[31m\n");
  EventLog log(path);
  ASSERT_EQ(log.notes().size(), 1u);
  EXPECT_EQ(log.notes()[0].find_first_of("\r\n\x1b"), std::string::npos) << log.notes()[0];
  EXPECT_NE(log.notes()[0].find("forged\\x0d2026"), std::string::npos) << log.notes()[0];
}

TEST(EventLogScanner, ChunkBoundariesDoNotMatter) {
  const std::string text = line(1) + "junk\n" + line(2) + line(3).substr(0, 20);
  EventLogScanner whole;
  whole.feed(text);
  whole.finish();
  for (std::size_t chunk = 1; chunk < 40; ++chunk) {
    EventLogScanner s;
    for (std::size_t i = 0; i < text.size(); i += chunk)
      s.feed(std::string_view(text).substr(i, chunk));
    s.finish();
    EXPECT_EQ(s.last_id(), whole.last_id());
    EXPECT_EQ(s.events(), 2u);
    ASSERT_EQ(s.bad().size(), 1u);
    EXPECT_EQ(s.bad()[0].offset, line(1).size());
    EXPECT_EQ(s.bad()[0].length, 5u);
    ASSERT_TRUE(s.torn());
    EXPECT_EQ(s.torn()->offset, line(1).size() + 5 + line(2).size());
  }
}

TEST(EventLogScanner, OverlongLineIsBoundedAndBad) {
  EventLogScanner s;
  s.feed(line(1));
  const std::string block(1 << 20, 'x');
  for (int i = 0; i < 8; ++i) s.feed(block);
  s.feed("\n");
  s.feed(line(2));
  s.finish();
  EXPECT_EQ(s.events(), 2u);
  EXPECT_EQ(s.last_id(), 2);
  ASSERT_EQ(s.bad().size(), 1u);
  EXPECT_EQ(s.bad()[0].length, 8u * (1 << 20) + 1);
}

}  // namespace
}  // namespace portvigil
