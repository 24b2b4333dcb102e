#include <string>

#include <gtest/gtest.h>

#include "portvigil/common/version.hpp"
#include "portvigil/exporters/reports.hpp"
#include "sample_scan.hpp"

namespace portvigil {
namespace {

using sample::contains;
using sample::run;
using sample::sample_info;
using sample::sample_summary;
using sample::shell_quote;
using sample::TempFile;

std::string json(const std::vector<HostResult>& hosts, const ScanInfo& info = sample_info(),
                 const ScanSummary& summary = sample_summary(1)) {
  return sample::render([](std::ostream& out) { return make_json_report(out); }, info, hosts,
                        summary);
}

// Loads `doc` with Python's json module (strict: no NaN, no duplicate-free guarantee needed)
// and prints the value of `expr`, with the document bound to `d`.
sample::CommandResult py_json(const std::string& doc, const std::string& expr) {
  TempFile file("doc.json", doc);
  return run("python3 -c " +
             shell_quote("import json, sys\n"
                         "def bad(c): raise ValueError(c)\n"
                         "d = json.load(open(sys.argv[1], encoding='utf-8'), parse_constant=bad)\n"
                         "print(json.dumps(" +
                         expr + ", sort_keys=True))") +
             " " + shell_quote(file.path()));
}

TEST(JsonReport, DocumentParsesAndHasTopLevelFields) {
  ScanSummary s = sample_summary(2);
  s.counters.retransmissions = 7;
  s.counters.refused_by_scope = 3;
  const auto doc = json({sample::mixed_host(), sample::ipv6_host()}, sample_info(), s);
  const auto got = py_json(doc,
                           "[d['scanner'], d['version'], d['args'], d['technique'], d['start'], "
                           "d['ports_scanned'], len(d['hosts']), d['end'], d['elapsed_seconds'], "
                           "d['stats'], d['interrupted'], d['error']]");
  ASSERT_EQ(got.exit_code, 0) << got.output << doc;
  EXPECT_EQ(got.output, "[\"portvigil\", \"" + std::string{kVersion} +
                            "\", \"portvigil -sT -p1-1000 198.18.0.2\", \"connect\", "
                            "\"2026-11-23T12:00:00Z\", {\"tcp\": 1000, \"udp\": 0}, 2, "
                            "\"2026-11-23T12:00:01Z\", 1.234, {\"capture_drops\": 0, "
                            "\"effective_rate\": 0.0, \"hosts_total\": 2, \"hosts_up\": 2, "
                            "\"probes_sent\": 2000, \"refused_by_scope\": 3, \"responses\": 1994, "
                            "\"retransmissions\": 7}, false, \"\"]\n");
}

TEST(JsonReport, MixedHostListsExactlyTheNonMajorityPorts) {
  const auto doc = json({sample::mixed_host()});
  const auto got = py_json(doc, "d['hosts'][0]");
  ASSERT_EQ(got.exit_code, 0) << got.output << doc;
  EXPECT_EQ(got.output,
            "{\"address\": \"198.18.0.2\", \"complete\": true, \"elapsed_seconds\": 0.5, "
            "\"family\": \"ipv4\", \"hostname\": \"\", \"inconclusive\": false, \"majority\": "
            "{\"tcp\": {\"count\": 995, "
            "\"reasons\": {\"conn-refused\": 995}, \"state\": \"closed\"}}, \"note\": \"\", "
            "\"ports\": ["
            "{\"port\": 22, \"proto\": \"tcp\", \"reason\": \"syn-ack\", \"service\": \"ssh\", "
            "\"state\": \"open\", \"ttl\": 64}, "
            "{\"port\": 25, \"proto\": \"tcp\", \"reason\": \"admin-prohibited\", \"service\": "
            "\"smtp\", \"state\": \"filtered\", \"ttl\": 0}, "
            "{\"port\": 53, \"proto\": \"tcp\", \"reason\": \"no-response\", \"service\": "
            "\"domain\", \"state\": \"filtered\", \"ttl\": 0}, "
            "{\"port\": 80, \"proto\": \"tcp\", \"reason\": \"syn-ack\", \"service\": \"http\", "
            "\"state\": \"open\", \"ttl\": 64}, "
            "{\"port\": 443, \"proto\": \"tcp\", \"reason\": \"no-response\", \"service\": "
            "\"https\", \"state\": \"filtered\", \"ttl\": 0}], \"status_reason\": \"user-set\"}\n");
}

TEST(JsonReport, IdentifiedServicesAreListedPerHostWithTheirCertificate) {
  const std::string doc = json({sample::identified_host()});
  const auto r = py_json(doc, "d['hosts'][0]['services']");
  ASSERT_EQ(r.exit_code, 0) << r.output << doc;
  EXPECT_TRUE(contains(r.output, R"("port": 22)")) << r.output;
  EXPECT_TRUE(contains(r.output, R"("protocol": "ssh")")) << r.output;
  EXPECT_TRUE(contains(r.output, R"("server": "Jetty/9 <\"x\">, a&b")")) << r.output;
  EXPECT_TRUE(contains(r.output, R"("not_after": "2026-12-23T12:00:00Z")")) << r.output;
  EXPECT_TRUE(contains(r.output, R"("sans": ["staging.internal", "198.18.0.2"])")) << r.output;
  EXPECT_TRUE(contains(r.output, R"("self_signed": true)")) << r.output;
  // Without identification there is no services key at all.
  const auto plain = py_json(json({sample::mixed_host()}), "'services' in d['hosts'][0]");
  EXPECT_EQ(plain.output, "false\n");
}

TEST(JsonReport, Ipv6HostMajorityPerProtocolEvenBelowThreshold) {
  const auto doc = json({sample::ipv6_host()});
  const auto got =
      py_json(doc,
              "[d['hosts'][0]['family'], d['hosts'][0]['hostname'], "
              "d['hosts'][0]['majority'], "
              "[(p['proto'], p['port'], p['state']) for p in d['hosts'][0]['ports']]]");
  ASSERT_EQ(got.exit_code, 0) << got.output << doc;
  // udp has only 3 ports (no collapse in table/XML) but JSON still separates its majority.
  EXPECT_EQ(got.output,
            "[\"ipv6\", \"gw.example\", {\"tcp\": {\"count\": 98, \"reasons\": "
            "{\"admin-prohibited\": 8, \"no-response\": 90}, \"state\": \"filtered\"}, "
            "\"udp\": {\"count\": 2, \"reasons\": {\"no-response\": 2}, \"state\": "
            "\"open|filtered\"}}, [[\"tcp\", 22, \"open\"], [\"tcp\", 23, \"closed\"], "
            "[\"udp\", 161, \"open\"]]]\n");
  // Reasons are written largest first.
  EXPECT_TRUE(contains(doc, "\"reasons\": {\"no-response\": 90, \"admin-prohibited\": 8}"));
}

TEST(JsonReport, SmallHostStillSeparatesMajority) {
  const auto doc = json({sample::small_host()});
  const auto got = py_json(doc, "[d['hosts'][0]['majority'], len(d['hosts'][0]['ports'])]");
  ASSERT_EQ(got.exit_code, 0) << got.output << doc;
  EXPECT_EQ(got.output,
            "[{\"tcp\": {\"count\": 9, \"reasons\": {\"conn-refused\": 9}, \"state\": "
            "\"closed\"}}, 1]\n");
}

TEST(JsonReport, IncompleteHostAndInterruptedScan) {
  ScanSummary s = sample_summary(1);
  s.interrupted = true;
  s.error = "interrupted by signal";
  const auto doc = json({sample::incomplete_host()}, sample_info(), s);
  const auto got = py_json(
      doc, "[d['hosts'][0]['complete'], d['hosts'][0]['note'], d['interrupted'], d['error']]");
  ASSERT_EQ(got.exit_code, 0) << got.output << doc;
  EXPECT_EQ(got.output, "[false, \"host timeout after 30s\", true, \"interrupted by signal\"]\n");
}

TEST(JsonReport, EmptyScanIsValid) {
  const auto doc = json({}, sample_info(), sample_summary(0));
  EXPECT_TRUE(contains(doc, "\"hosts\": [],\n"));
  const auto got = py_json(doc, "d['hosts']");
  ASSERT_EQ(got.exit_code, 0) << got.output << doc;
  EXPECT_EQ(got.output, "[]\n");
}

TEST(JsonReport, HostWithoutPorts) {
  HostResult h = sample::host_at("192.0.2.1");
  h.complete = false;
  h.note = "refused by scope";
  const auto doc = json({h});
  const auto got = py_json(doc, "[d['hosts'][0]['majority'], d['hosts'][0]['ports']]");
  ASSERT_EQ(got.exit_code, 0) << got.output << doc;
  EXPECT_EQ(got.output, "[{}, []]\n");
}

TEST(JsonReport, NastyStringsAreEscaped) {
  const std::string args = "portvigil \"q\" \\back <x> & \x01\x1f\x7f\ttab\nnl caf\xc3\xa9 \xff";
  HostResult h = sample::small_host();
  h.hostname = "h\"\\\n";
  const auto doc = json({h}, sample_info(args));
  EXPECT_TRUE(contains(doc,
                       "\"args\": \"portvigil \\\"q\\\" \\\\back <x> & \\u0001\\u001f\\u007f"
                       "\\u0009tab\\u000anl caf\xc3\xa9 \\ufffd\","))
      << doc;
  EXPECT_TRUE(contains(doc, "\"hostname\": \"h\\\"\\\\\\u000a\"")) << doc;
  // Python decodes it back to the original, with the invalid byte replaced.
  const auto got = py_json(doc, "[d['args'].encode().hex(), d['hosts'][0]['hostname']]");
  ASSERT_EQ(got.exit_code, 0) << got.output << doc;
  const std::string expected =
      "portvigil \"q\" \\back <x> & \x01\x1f\x7f\ttab\nnl caf\xc3\xa9 \xef\xbf\xbd";
  EXPECT_EQ(got.output, "[\"" + sample::hex_of(expected) + "\", \"h\\\"\\\\\\n\"]\n");
}

TEST(JsonReport, StreamsEachHostBeforeEnd) {
  std::ostringstream out;
  auto sink = make_json_report(out);
  sink->begin(sample_info());
  EXPECT_TRUE(contains(out.str(), "\"hosts\": ["));
  sink->host(sample::mixed_host());
  EXPECT_TRUE(contains(out.str(), "\"address\": \"198.18.0.2\""));
  sink->host(sample::small_host());
  EXPECT_TRUE(contains(out.str(), "\"address\": \"198.18.9.5\""));
  EXPECT_FALSE(contains(out.str(), "\"stats\""));
  sink->end(sample_summary(2));
  const auto got = py_json(out.str(), "[h['address'] for h in d['hosts']]");
  ASSERT_EQ(got.exit_code, 0) << got.output;
  EXPECT_EQ(got.output, "[\"198.18.0.2\", \"198.18.9.5\"]\n");
}

}  // namespace
}  // namespace portvigil
