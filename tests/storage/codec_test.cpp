#include "codec.hpp"

#include <gtest/gtest.h>

namespace portvigil::storage_detail::codec {
namespace {

TEST(Codec, RangesRoundTrip) {
  const std::vector<PortRange> ranges{{0, 0}, {1, 1024}, {8080, 8080}, {65535, 65535}};
  EXPECT_EQ(encode_ranges(ranges), "0,1-1024,8080,65535");
  EXPECT_EQ(decode_ranges("0,1-1024,8080,65535"), ranges);
  EXPECT_TRUE(decode_ranges("").empty());
}

TEST(Codec, CorruptRangesAreErrors) {
  for (const char* bad : {"x", "1-", "5-3", "1,1", "3,2", "1,,2", "1,", "65536", "-1", "1;2"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW((void)decode_ranges(bad), StorageError);
  }
}

TEST(Codec, NamesRoundTrip) {
  EXPECT_EQ(state_from("open|filtered"), PortState::open_filtered);
  EXPECT_EQ(reason_from("syn-ack"), Reason::syn_ack);
  EXPECT_EQ(reason_from("some-future-reason"), Reason::unknown);
  EXPECT_EQ(technique_from("udp"), Technique::udp);
  EXPECT_EQ(status_from("incomplete"), ScanStatus::incomplete);
  EXPECT_THROW((void)state_from("ajar"), StorageError);
  EXPECT_THROW((void)proto_from("sctp"), StorageError);
  EXPECT_THROW((void)port_from(70000), StorageError);
}

TEST(Codec, HostEventPortListsRoundTripAndRejectGarbage) {
  const std::vector<std::pair<Proto, std::uint16_t>> ports{
      {Proto::tcp, 22}, {Proto::tcp, 65535}, {Proto::udp, 0}};
  EXPECT_EQ(encode_port_list(ports), "22/tcp,65535/tcp,0/udp");
  EXPECT_EQ(decode_port_list(encode_port_list(ports)), ports);
  EXPECT_TRUE(decode_port_list("").empty());
  for (const char* bad :
       {"22", "22/sctp", "x/tcp", "65536/tcp", "22/tcp,", ",22/tcp", "-1/tcp", "22 /tcp"}) {
    EXPECT_THROW((void)decode_port_list(bad), StorageError) << bad;
  }
  EXPECT_EQ(event_kind_from("host-appeared"), EventKind::host_appeared);
  EXPECT_THROW((void)event_kind_from("host-vanished"), StorageError);
}

TEST(Codec, TimesAreMilliseconds) {
  const auto t =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'123'456));
  EXPECT_EQ(to_ms(t), 1'700'000'123'456);
  EXPECT_EQ(from_ms(to_ms(t)), t);
  EXPECT_EQ(to_ms(t + std::chrono::microseconds(999)), 1'700'000'123'456);  // truncates
}

}  // namespace
}  // namespace portvigil::storage_detail::codec
