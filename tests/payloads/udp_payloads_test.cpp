// Structural checks of the UDP probe payloads: every payload is parsed back with an independent,
// minimal decoder of its protocol, so a wrong length, flag or offset fails here instead of making
// a service silently ignore the probe.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "raw/udp_payloads.hpp"

namespace portvigil::raw {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::size_t kMaxIpv4UdpPayload = 1500 - 20 - 8;  // 1472 on a 1500-byte MTU link.

std::uint16_t be16(Bytes b, std::size_t off) {
  return static_cast<std::uint16_t>((b[off] << 8) | b[off + 1]);
}

std::uint32_t be32(Bytes b, std::size_t off) {
  return (std::uint32_t{be16(b, off)} << 16) | be16(b, off + 2);
}

std::string as_text(Bytes b) {
  return std::string(b.begin(), b.end());
}

// ----- DNS name decoding (RFC 1035 section 4.1.2 / 3.1), no compression pointers expected. -----

// Reads the name at `pos`, advancing `pos` past it. nullopt if malformed.
std::optional<std::vector<std::string>> read_dns_name(Bytes b, std::size_t& pos) {
  std::vector<std::string> labels;
  std::size_t total = 0;
  while (true) {
    if (pos >= b.size()) return std::nullopt;
    const std::uint8_t len = b[pos++];
    if (len == 0) break;
    if (len > 63) return std::nullopt;  // Label too long, or a compression pointer.
    if (pos + len > b.size()) return std::nullopt;
    labels.emplace_back(b.begin() + static_cast<std::ptrdiff_t>(pos),
                        b.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
    total += 1u + len;
    if (total > 254) return std::nullopt;  // Name longer than 255 octets.
  }
  return labels;
}

struct DnsHeader {
  std::uint16_t id, flags, qd, an, ns, ar;
};

DnsHeader dns_header(Bytes b) {
  return {be16(b, 0), be16(b, 2), be16(b, 4), be16(b, 6), be16(b, 8), be16(b, 10)};
}

// ----- BER (X.690) decoding: definite lengths, single-byte tags. -----

struct Tlv {
  std::uint8_t tag = 0;
  std::vector<std::uint8_t> content;
  std::vector<Tlv> children;  // Parsed content of constructed encodings.
};

// Parses a sequence of TLVs that must exactly fill `b`; constructed TLVs (bit 0x20 of the tag)
// are parsed recursively, so every length at every level is checked against the bytes present.
std::optional<std::vector<Tlv>> parse_ber(Bytes b) {
  std::vector<Tlv> out;
  std::size_t pos = 0;
  while (pos < b.size()) {
    Tlv t;
    t.tag = b[pos++];
    if ((t.tag & 0x1f) == 0x1f) return std::nullopt;  // Multi-byte tags are not expected.
    if (pos >= b.size()) return std::nullopt;
    std::size_t len = b[pos++];
    if (len & 0x80) {  // Long form: low bits give the number of length octets.
      const std::size_t n = len & 0x7f;
      if (n == 0 || n > 2 || pos + n > b.size()) return std::nullopt;  // No indefinite form.
      len = 0;
      for (std::size_t i = 0; i < n; ++i) len = (len << 8) | b[pos++];
    }
    if (pos + len > b.size()) return std::nullopt;
    t.content.assign(b.begin() + static_cast<std::ptrdiff_t>(pos),
                     b.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
    if (t.tag & 0x20) {
      auto kids = parse_ber(t.content);
      if (!kids) return std::nullopt;
      t.children = std::move(*kids);
    }
    out.push_back(std::move(t));
  }
  return out;
}

// ----- Text protocols (HTTPU, SIP): CRLF lines and headers. -----

struct TextMessage {
  std::string start_line;
  std::multimap<std::string, std::string> headers;  // Lower-cased names, trimmed values.
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// Requires every line to end in CRLF, no bare CR or LF, and the header block to end with an empty
// line that is the end of the datagram (no body).
std::optional<TextMessage> parse_text_message(std::string_view text) {
  TextMessage msg;
  bool first = true;
  while (true) {
    const auto eol = text.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;  // Unterminated line.
    const std::string_view line = text.substr(0, eol);
    if (line.find_first_of("\r\n") != std::string_view::npos) return std::nullopt;  // Bare CR/LF.
    text.remove_prefix(eol + 2);
    if (line.empty()) break;
    if (first) {
      msg.start_line = std::string(line);
      first = false;
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    msg.headers.emplace(lower(std::string(line.substr(0, colon))), trim(line.substr(colon + 1)));
  }
  if (first || !text.empty()) return std::nullopt;  // No start line, or bytes after the blank line.
  return msg;
}

std::string header(const TextMessage& m, const std::string& name) {
  auto it = m.headers.find(name);
  return it == m.headers.end() ? std::string("<missing>") : it->second;
}

// ================================================================================================

TEST(UdpPayloads, UnknownPortsSendAnEmptyDatagram) {
  for (unsigned p : {0u, 1u, 7u, 22u, 80u, 443u, 1024u, 4444u, 65535u}) {
    const auto port = static_cast<std::uint16_t>(p);
    EXPECT_TRUE(udp_payload(port).empty()) << port;
    EXPECT_EQ(udp_payload_protocol(port), "") << port;
  }
}

TEST(UdpPayloads, SyslogIsDeliberatelyEmpty) {
  EXPECT_TRUE(udp_payload(514).empty());
  EXPECT_EQ(udp_payload_protocol(514), "syslog");
}

TEST(UdpPayloads, ProtocolNames) {
  const std::map<std::uint16_t, std::string_view> expected = {
      {53, "dns"},       {67, "dhcp"},        {69, "tftp"},   {111, "rpcbind"},
      {123, "ntp"},      {137, "netbios-ns"}, {161, "snmp"},  {500, "ike"},
      {514, "syslog"},   {1900, "ssdp"},      {3478, "stun"}, {5060, "sip"},
      {5351, "nat-pmp"}, {5353, "mdns"},      {5683, "coap"}, {11211, "memcached"},
  };
  for (const auto& [port, name] : expected) {
    EXPECT_EQ(udp_payload_protocol(port), name) << port;
    if (port != 514) {
      EXPECT_FALSE(udp_payload(port).empty()) << port;
    }
  }
}

TEST(UdpPayloads, EveryPayloadFitsOneIpv4DatagramAndHasAName) {
  std::size_t with_payload = 0;
  for (unsigned p = 0; p <= 65535; ++p) {
    const auto port = static_cast<std::uint16_t>(p);
    const Bytes b = udp_payload(port);
    EXPECT_LE(b.size(), kMaxIpv4UdpPayload) << port;
    if (!b.empty()) {
      ++with_payload;
      EXPECT_NE(udp_payload_protocol(port), "") << port;
    }
  }
  EXPECT_EQ(with_payload, 15u);
}

TEST(UdpPayloads, SpansAreStable) {
  const Bytes a = udp_payload(53);
  const Bytes b = udp_payload(53);
  EXPECT_EQ(a.data(), b.data());
  EXPECT_EQ(a.size(), b.size());
}

// RFC 1035: "." IN NS, recursion desired.
TEST(UdpPayloads, Dns) {
  const Bytes b = udp_payload(53);
  ASSERT_GE(b.size(), 12u + 1 + 4);
  const DnsHeader h = dns_header(b);
  EXPECT_EQ(h.flags & 0x8000, 0) << "QR must be 0 (query)";
  EXPECT_EQ((h.flags >> 11) & 0xf, 0) << "OPCODE must be QUERY";
  EXPECT_EQ(h.flags & 0x0100, 0x0100) << "RD must be set";
  EXPECT_EQ(h.flags & 0x000f, 0) << "RCODE must be 0";
  EXPECT_EQ(h.qd, 1);
  EXPECT_EQ(h.an, 0);
  EXPECT_EQ(h.ns, 0);
  EXPECT_EQ(h.ar, 0);
  std::size_t pos = 12;
  const auto labels = read_dns_name(b, pos);
  ASSERT_TRUE(labels.has_value());
  EXPECT_TRUE(labels->empty()) << "expected the root name";
  ASSERT_EQ(pos + 4, b.size()) << "QTYPE and QCLASS must end the message";
  EXPECT_EQ(be16(b, pos), 2) << "QTYPE NS";
  EXPECT_EQ(be16(b, pos + 2), 1) << "QCLASS IN";
}

// RFC 6762/6763: _services._dns-sd._udp.local PTR, QU bit.
TEST(UdpPayloads, Mdns) {
  const Bytes b = udp_payload(5353);
  ASSERT_GE(b.size(), 12u);
  const DnsHeader h = dns_header(b);
  EXPECT_EQ(h.id, 0);
  EXPECT_EQ(h.flags, 0) << "standard query, RD clear (RFC 6762 section 18)";
  EXPECT_EQ(h.qd, 1);
  EXPECT_EQ(h.an, 0);
  EXPECT_EQ(h.ns, 0);
  EXPECT_EQ(h.ar, 0);
  std::size_t pos = 12;
  const auto labels = read_dns_name(b, pos);
  ASSERT_TRUE(labels.has_value());
  EXPECT_EQ(*labels, (std::vector<std::string>{"_services", "_dns-sd", "_udp", "local"}));
  ASSERT_EQ(pos + 4, b.size());
  EXPECT_EQ(be16(b, pos), 12) << "QTYPE PTR";
  const std::uint16_t qclass = be16(b, pos + 2);
  EXPECT_EQ(qclass & 0x8000, 0x8000) << "unicast-response (QU) bit";
  EXPECT_EQ(qclass & 0x7fff, 1) << "class IN";
}

// RFC 5905 section 7.3.
TEST(UdpPayloads, Ntp) {
  const Bytes b = udp_payload(123);
  ASSERT_EQ(b.size(), 48u);
  const unsigned li = b[0] >> 6;
  const unsigned vn = (b[0] >> 3) & 0x7;
  const unsigned mode = b[0] & 0x7;
  EXPECT_TRUE(li == 0 || li == 3) << li;
  EXPECT_EQ(vn, 4u);
  EXPECT_EQ(mode, 3u) << "client";
  EXPECT_NE(be32(b, 40) | be32(b, 44), 0u) << "transmit timestamp should identify the probe";
}

// RFC 1157: SNMPv1 GetRequest, community "public", sysDescr.0.
TEST(UdpPayloads, Snmp) {
  const Bytes b = udp_payload(161);
  const auto top = parse_ber(b);
  ASSERT_TRUE(top.has_value()) << "BER lengths do not match the bytes";
  ASSERT_EQ(top->size(), 1u) << "exactly one Message SEQUENCE filling the datagram";
  const Tlv& msg = top->front();
  EXPECT_EQ(msg.tag, 0x30);
  ASSERT_EQ(msg.children.size(), 3u) << "version, community, data";

  const Tlv& version = msg.children[0];
  EXPECT_EQ(version.tag, 0x02);
  EXPECT_EQ(version.content, std::vector<std::uint8_t>{0x00}) << "version-1";

  const Tlv& community = msg.children[1];
  EXPECT_EQ(community.tag, 0x04);
  EXPECT_EQ(as_text(community.content), "public");

  const Tlv& pdu = msg.children[2];
  EXPECT_EQ(pdu.tag, 0xa0) << "GetRequest-PDU";
  ASSERT_EQ(pdu.children.size(), 4u);
  EXPECT_EQ(pdu.children[0].tag, 0x02) << "request-id";
  EXPECT_FALSE(pdu.children[0].content.empty());
  EXPECT_EQ(pdu.children[0].content.front() & 0x80, 0) << "request-id should be non-negative";
  EXPECT_EQ(pdu.children[1].tag, 0x02);
  EXPECT_EQ(pdu.children[1].content, std::vector<std::uint8_t>{0x00}) << "error-status";
  EXPECT_EQ(pdu.children[2].tag, 0x02);
  EXPECT_EQ(pdu.children[2].content, std::vector<std::uint8_t>{0x00}) << "error-index";

  const Tlv& list = pdu.children[3];
  EXPECT_EQ(list.tag, 0x30);
  ASSERT_EQ(list.children.size(), 1u);
  const Tlv& varbind = list.children[0];
  EXPECT_EQ(varbind.tag, 0x30);
  ASSERT_EQ(varbind.children.size(), 2u);
  EXPECT_EQ(varbind.children[0].tag, 0x06);
  // 1.3.6.1.2.1.1.1.0: first octet 40*1+3, then one octet per remaining (small) arc.
  EXPECT_EQ(varbind.children[0].content,
            (std::vector<std::uint8_t>{0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00}));
  EXPECT_EQ(varbind.children[1].tag, 0x05) << "NULL value";
  EXPECT_TRUE(varbind.children[1].content.empty());
}

TEST(UdpPayloads, BerParserRejectsWrongLengths) {
  // The decoder used above must actually catch bad lengths, or the SNMP test proves nothing.
  const std::vector<std::uint8_t> too_long = {0x30, 0x04, 0x02, 0x01, 0x00};
  const std::vector<std::uint8_t> inner_bad = {0x30, 0x03, 0x02, 0x02, 0x00};
  const std::vector<std::uint8_t> good = {0x30, 0x03, 0x02, 0x01, 0x00};
  EXPECT_FALSE(parse_ber(too_long).has_value());
  EXPECT_FALSE(parse_ber(inner_bad).has_value());
  EXPECT_TRUE(parse_ber(good).has_value());
}

// RFC 1002 section 4.2.17: NBSTAT for "*", RFC 1001 section 14.1 first-level encoding.
TEST(UdpPayloads, NetbiosNs) {
  const Bytes b = udp_payload(137);
  ASSERT_EQ(b.size(), 12u + 34 + 4);
  const DnsHeader h = dns_header(b);
  EXPECT_EQ(h.flags & 0x8000, 0) << "R=0, request";
  EXPECT_EQ((h.flags >> 11) & 0xf, 0) << "OPCODE query";
  EXPECT_EQ(h.flags & 0x0010, 0) << "B=0, unicast";
  EXPECT_EQ(h.qd, 1);
  EXPECT_EQ(h.an, 0);
  EXPECT_EQ(h.ns, 0);
  EXPECT_EQ(h.ar, 0);

  // The encoded name: one 32-byte label then the empty scope: 34 bytes.
  EXPECT_EQ(b[12], 32);
  EXPECT_EQ(b[12 + 33], 0);
  const std::string encoded(b.begin() + 13, b.begin() + 45);
  EXPECT_EQ(encoded, "CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  // Decode it back: each pair of characters 'A'+high nibble, 'A'+low nibble.
  std::string decoded;
  for (std::size_t i = 0; i < 32; i += 2) {
    const int hi = encoded[i] - 'A';
    const int lo = encoded[i + 1] - 'A';
    ASSERT_TRUE(hi >= 0 && hi < 16 && lo >= 0 && lo < 16);
    decoded.push_back(static_cast<char>(hi * 16 + lo));
  }
  EXPECT_EQ(decoded, std::string("*") + std::string(15, '\0'));

  EXPECT_EQ(be16(b, 46), 0x0021) << "QUESTION_TYPE NBSTAT";
  EXPECT_EQ(be16(b, 48), 0x0001) << "QUESTION_CLASS IN";
}

// UPnP Device Architecture 1.1 section 1.3.2.
TEST(UdpPayloads, Ssdp) {
  const std::string text = as_text(udp_payload(1900));
  ASSERT_GE(text.size(), 4u);
  EXPECT_EQ(text.substr(text.size() - 4), "\r\n\r\n");
  const auto msg = parse_text_message(text);
  ASSERT_TRUE(msg.has_value()) << "lines must end with CRLF and the block with an empty line";
  EXPECT_EQ(msg->start_line, "M-SEARCH * HTTP/1.1");
  EXPECT_EQ(header(*msg, "host"), "239.255.255.250:1900");
  EXPECT_EQ(header(*msg, "man"), "\"ssdp:discover\"");
  EXPECT_EQ(header(*msg, "mx"), "1");
  EXPECT_EQ(header(*msg, "st"), "ssdp:all");
}

// RFC 2131/2132: DHCPDISCOVER.
TEST(UdpPayloads, Dhcp) {
  const Bytes b = udp_payload(67);
  ASSERT_GE(b.size(), 300u) << "BOOTP minimum message size";
  EXPECT_EQ(b[0], 1) << "op BOOTREQUEST";
  EXPECT_EQ(b[1], 1) << "htype Ethernet";
  EXPECT_EQ(b[2], 6) << "hlen";
  EXPECT_EQ(b[3], 0) << "hops";
  EXPECT_NE(be32(b, 4), 0u) << "xid";
  for (std::size_t off = 12; off < 28; ++off) EXPECT_EQ(b[off], 0) << "ciaddr..giaddr @" << off;
  // chaddr: either all zero or a locally administered unicast MAC.
  const bool zero_mac = std::all_of(b.begin() + 28, b.begin() + 34, [](auto v) { return v == 0; });
  EXPECT_TRUE(zero_mac || (b[28] & 0x03) == 0x02) << "chaddr";
  for (std::size_t off = 34; off < 236; ++off) EXPECT_EQ(b[off], 0) << "chaddr pad/sname/file";
  EXPECT_EQ(be32(b, 236), 0x63825363u) << "magic cookie 99.130.83.99";

  // Walk the options (RFC 2132 section 2): pad (0) is one byte; end (255) stops the walk.
  std::size_t pos = 240;
  std::optional<std::size_t> end_at;
  std::map<int, std::vector<std::uint8_t>> options;
  while (pos < b.size()) {
    const std::uint8_t code = b[pos];
    if (code == 0) {
      ++pos;
      continue;
    }
    if (code == 255) {
      end_at = pos;
      break;
    }
    ASSERT_LT(pos + 1, b.size());
    const std::size_t len = b[pos + 1];
    ASSERT_LE(pos + 2 + len, b.size()) << "option " << int{code} << " overruns the message";
    options[code].assign(b.begin() + static_cast<std::ptrdiff_t>(pos + 2),
                         b.begin() + static_cast<std::ptrdiff_t>(pos + 2 + len));
    pos += 2 + len;
  }
  ASSERT_TRUE(end_at.has_value()) << "no End option";
  for (std::size_t off = *end_at + 1; off < b.size(); ++off) EXPECT_EQ(b[off], 0) << off;
  EXPECT_EQ(b.back(), 255) << "the datagram ends with the End option";
  ASSERT_TRUE(options.count(53));
  EXPECT_EQ(options[53], std::vector<std::uint8_t>{1}) << "DHCP Message Type = DHCPDISCOVER";
}

// RFC 1350: RRQ, filename NUL, mode NUL.
TEST(UdpPayloads, Tftp) {
  const Bytes b = udp_payload(69);
  ASSERT_GE(b.size(), 2u + 2 + 6);
  EXPECT_EQ(be16(b, 0), 1) << "opcode RRQ";
  const std::string rest(b.begin() + 2, b.end());
  const auto nul1 = rest.find('\0');
  ASSERT_NE(nul1, std::string::npos);
  const auto nul2 = rest.find('\0', nul1 + 1);
  ASSERT_NE(nul2, std::string::npos);
  EXPECT_EQ(nul2 + 1, rest.size()) << "nothing after the mode string";
  const std::string filename = rest.substr(0, nul1);
  const std::string mode = rest.substr(nul1 + 1, nul2 - nul1 - 1);
  EXPECT_FALSE(filename.empty());
  EXPECT_LE(filename.size(), 32u) << "short filename";
  for (char c : filename) EXPECT_TRUE(std::isprint(static_cast<unsigned char>(c))) << filename;
  EXPECT_EQ(lower(mode), "octet");
}

// RFC 7296: IKE_SA_INIT.
TEST(UdpPayloads, Ike) {
  const Bytes b = udp_payload(500);
  ASSERT_GE(b.size(), 28u);
  EXPECT_NE(be32(b, 0) | be32(b, 4), 0u) << "initiator SPI must not be zero";
  EXPECT_EQ(be32(b, 8) | be32(b, 12), 0u) << "responder SPI is zero in IKE_SA_INIT";
  EXPECT_EQ(b[17] >> 4, 2) << "major version";
  EXPECT_EQ(b[17] & 0x0f, 0) << "minor version";
  EXPECT_EQ(b[18], 34) << "exchange type IKE_SA_INIT";
  EXPECT_EQ(b[19] & 0x08, 0x08) << "Initiator flag";
  EXPECT_EQ(b[19] & 0x20, 0) << "Response flag clear";
  EXPECT_EQ(be32(b, 20), 0u) << "message ID";
  EXPECT_EQ(be32(b, 24), b.size()) << "length field equals the datagram size";

  // Walk the payload chain; each generic header's length must be consistent and the chain must
  // end exactly at the end of the message.
  std::map<int, std::pair<std::size_t, std::size_t>> payloads;  // type -> (offset, length)
  int next = b[16];
  std::size_t pos = 28;
  while (next != 0) {
    ASSERT_LE(pos + 4, b.size()) << "payload header past the end";
    const std::size_t len = be16(b, pos + 2);
    ASSERT_GE(len, 4u);
    ASSERT_LE(pos + len, b.size()) << "payload " << next << " overruns the message";
    EXPECT_FALSE(payloads.count(next)) << "duplicate payload " << next;
    payloads[next] = {pos, len};
    next = b[pos];
    pos += len;
  }
  EXPECT_EQ(pos, b.size());
  ASSERT_TRUE(payloads.count(33)) << "SA";
  ASSERT_TRUE(payloads.count(34)) << "KE";
  ASSERT_TRUE(payloads.count(40)) << "Nonce";

  // SA: one proposal whose transforms fill it exactly.
  const auto [sa, sa_len] = payloads[33];
  std::size_t p = sa + 4;
  EXPECT_EQ(b[p], 0) << "single (last) proposal";
  const std::size_t prop_len = be16(b, p + 2);
  EXPECT_EQ(prop_len, sa_len - 4);
  EXPECT_EQ(b[p + 4], 1) << "proposal number";
  EXPECT_EQ(b[p + 5], 1) << "protocol IKE";
  EXPECT_EQ(b[p + 6], 0) << "SPI size";
  const unsigned n_transforms = b[p + 7];
  std::size_t t = p + 8;
  std::set<int> types;
  int dh_group = -1;
  for (unsigned k = 0; k < n_transforms; ++k) {
    ASSERT_LE(t + 8, p + prop_len);
    const std::size_t t_len = be16(b, t + 2);
    ASSERT_GE(t_len, 8u);
    EXPECT_EQ(b[t], k + 1 == n_transforms ? 0 : 3) << "last-substruc of transform " << k;
    types.insert(b[t + 4]);
    if (b[t + 4] == 4) dh_group = be16(b, t + 6);
    t += t_len;
  }
  EXPECT_EQ(t, p + prop_len) << "transforms fill the proposal";
  EXPECT_EQ(types, (std::set<int>{1, 2, 3, 4})) << "ENCR, PRF, INTEG, D-H";

  // KE: group matches the proposed D-H transform; group 14 carries a 256-byte value.
  const auto [ke, ke_len] = payloads[34];
  EXPECT_EQ(be16(b, ke + 4), dh_group);
  if (dh_group == 14) {
    EXPECT_EQ(ke_len, 8u + 256);
  }
  // Nonce: 16..256 bytes (section 3.9).
  const auto [nonce, nonce_len] = payloads[40];
  (void)nonce;
  EXPECT_GE(nonce_len - 4, 16u);
  EXPECT_LE(nonce_len - 4, 256u);
}

// RFC 3261: OPTIONS.
TEST(UdpPayloads, Sip) {
  const std::string text = as_text(udp_payload(5060));
  ASSERT_GE(text.size(), 4u);
  EXPECT_EQ(text.substr(text.size() - 4), "\r\n\r\n");
  const auto msg = parse_text_message(text);
  ASSERT_TRUE(msg.has_value()) << "lines must end with CRLF, headers with an empty line";
  EXPECT_EQ(msg->start_line.rfind("OPTIONS sip:", 0), 0u) << msg->start_line;
  EXPECT_EQ(msg->start_line.substr(msg->start_line.size() - 8), " SIP/2.0");
  for (const char* h : {"via", "from", "to", "call-id", "cseq", "max-forwards", "content-length"}) {
    EXPECT_EQ(msg->headers.count(h), 1u) << h;
  }
  EXPECT_EQ(header(*msg, "content-length"), "0");
  EXPECT_EQ(header(*msg, "cseq"), "1 OPTIONS");
  EXPECT_EQ(header(*msg, "max-forwards"), "70");
  const std::string via = header(*msg, "via");
  EXPECT_EQ(via.rfind("SIP/2.0/UDP 192.0.2.1", 0), 0u) << via;
  EXPECT_NE(via.find(";branch=z9hG4bK"), std::string::npos) << via;
  EXPECT_NE(header(*msg, "from").find(";tag="), std::string::npos);
  EXPECT_NE(header(*msg, "call-id"), "");
}

// memcached protocol.txt, "UDP protocol".
TEST(UdpPayloads, Memcached) {
  const Bytes b = udp_payload(11211);
  ASSERT_EQ(b.size(), 8u + 7);
  EXPECT_EQ(be16(b, 2), 0) << "sequence number";
  EXPECT_EQ(be16(b, 4), 1) << "total datagrams";
  EXPECT_EQ(be16(b, 6), 0) << "reserved";
  EXPECT_EQ(as_text(b.subspan(8)), "stats\r\n");
}

// RFC 5531 / RFC 1833: portmapper NULL call.
TEST(UdpPayloads, Rpcbind) {
  const Bytes b = udp_payload(111);
  ASSERT_EQ(b.size(), 40u);
  EXPECT_EQ(be32(b, 4), 0u) << "CALL";
  EXPECT_EQ(be32(b, 8), 2u) << "RPC version";
  EXPECT_EQ(be32(b, 12), 100000u) << "portmapper program";
  EXPECT_EQ(be32(b, 16), 2u) << "program version";
  EXPECT_EQ(be32(b, 20), 0u) << "NULL procedure";
  for (std::size_t off = 24; off < 40; off += 4) EXPECT_EQ(be32(b, off), 0u) << "AUTH_NONE";
}

// RFC 8489: Binding request.
TEST(UdpPayloads, Stun) {
  const Bytes b = udp_payload(3478);
  ASSERT_EQ(b.size(), 20u);
  EXPECT_EQ(be16(b, 0), 0x0001) << "Binding request";
  EXPECT_EQ(be16(b, 2), b.size() - 20) << "message length excludes the header";
  EXPECT_EQ(be32(b, 4), 0x2112a442u) << "magic cookie";
}

// RFC 6886: external address request.
TEST(UdpPayloads, NatPmp) {
  const Bytes b = udp_payload(5351);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0], 0) << "version";
  EXPECT_EQ(b[1], 0) << "opcode";
}

// RFC 7252: CON GET /.well-known/core.
TEST(UdpPayloads, Coap) {
  const Bytes b = udp_payload(5683);
  ASSERT_GE(b.size(), 4u);
  EXPECT_EQ(b[0] >> 6, 1) << "version";
  EXPECT_EQ((b[0] >> 4) & 0x3, 0) << "confirmable";
  const std::size_t tkl = b[0] & 0x0f;
  EXPECT_EQ(b[1], 0x01) << "GET";
  std::size_t pos = 4 + tkl;
  unsigned option = 0;
  std::vector<std::string> path;
  while (pos < b.size()) {
    ASSERT_NE(b[pos], 0xff) << "no payload expected";
    const unsigned delta = b[pos] >> 4;
    const std::size_t len = b[pos] & 0x0f;
    ASSERT_LT(delta, 13u) << "extended deltas not expected";
    ASSERT_LT(len, 13u) << "extended lengths not expected";
    option += delta;
    ++pos;
    ASSERT_LE(pos + len, b.size());
    if (option == 11) {
      path.emplace_back(b.begin() + static_cast<std::ptrdiff_t>(pos),
                        b.begin() + static_cast<std::ptrdiff_t>(pos + len));
    }
    pos += len;
  }
  EXPECT_EQ(path, (std::vector<std::string>{".well-known", "core"}));
}

}  // namespace
}  // namespace portvigil::raw
