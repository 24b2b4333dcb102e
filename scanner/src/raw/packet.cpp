#include "packet.hpp"

#include <algorithm>
#include <cstring>

namespace portvigil::raw {
namespace {

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoIcmp6 = 58;

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
std::uint32_t get32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

std::uint32_t sum_words(std::span<const std::uint8_t> data, std::uint32_t sum) {
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += get16(data.data() + i);
  if (i < data.size()) sum += std::uint32_t{data[i]} << 8;
  return sum;
}

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// Pseudo-header sum for TCP/UDP checksums (RFC 793 / RFC 8200 section 8.1).
std::uint32_t pseudo_sum(const IpAddr& src, const IpAddr& dst, std::uint8_t proto,
                         std::size_t l4_len) {
  const std::size_t n = src.v6 ? 16 : 4;
  std::uint32_t sum = sum_words({src.bytes.data(), n}, 0);
  sum = sum_words({dst.bytes.data(), n}, sum);
  sum += proto;
  sum += static_cast<std::uint32_t>(l4_len & 0xffff) + static_cast<std::uint32_t>(l4_len >> 16);
  return sum;
}

// Writes the IP header; returns its length.
std::size_t put_ip(const ProbeFields& f, std::uint8_t proto, std::size_t l4_len, std::uint8_t* p) {
  if (!f.dst.v6) {
    p[0] = 0x45;
    p[1] = 0;
    put16(p + 2, static_cast<std::uint16_t>(20 + l4_len));
    put16(p + 4, f.ip_id);
    put16(p + 6, 0);
    p[8] = f.ttl;
    p[9] = proto;
    put16(p + 10, 0);
    std::memcpy(p + 12, f.src.bytes.data(), 4);
    std::memcpy(p + 16, f.dst.bytes.data(), 4);
    put16(p + 10, fold(sum_words({p, 20}, 0)));
    return 20;
  }
  put32(p, 0x60000000u | (f.ip_id & 0xfffffu));
  put16(p + 4, static_cast<std::uint16_t>(l4_len));
  p[6] = proto;
  p[7] = f.ttl;
  std::memcpy(p + 8, f.src.bytes.data(), 16);
  std::memcpy(p + 24, f.dst.bytes.data(), 16);
  return 40;
}

}  // namespace

IpAddr to_ip(const asio::ip::address& a) {
  IpAddr out;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    std::memcpy(out.bytes.data(), b.data(), 4);
  } else {
    const auto b = a.to_v6().to_bytes();
    std::memcpy(out.bytes.data(), b.data(), 16);
    out.v6 = true;
  }
  return out;
}

asio::ip::address to_asio(const IpAddr& a) {
  if (!a.v6) {
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), a.bytes.data(), 4);
    return asio::ip::address_v4(b);
  }
  asio::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), a.bytes.data(), 16);
  return asio::ip::address_v6(b);
}

std::uint16_t internet_checksum(std::span<const std::uint8_t> data, std::uint32_t initial) {
  return fold(sum_words(data, initial));
}

std::size_t build_tcp(const ProbeFields& f, std::span<std::uint8_t> out) {
  const bool syn = (f.tcp_flags & tcp_flag::syn) != 0;
  const std::size_t tcp_len = syn ? 24 : 20;  // SYNs carry MSS, as real stacks' do
  const std::size_t ip_len = f.dst.v6 ? 40 : 20;
  if (out.size() < ip_len + tcp_len) return 0;
  std::uint8_t* p = out.data();
  put_ip(f, kProtoTcp, tcp_len, p);
  std::uint8_t* t = p + ip_len;
  put16(t, f.sport);
  put16(t + 2, f.dport);
  put32(t + 4, f.seq);
  put32(t + 8, f.ack);
  t[12] = static_cast<std::uint8_t>((tcp_len / 4) << 4);
  t[13] = f.tcp_flags;
  put16(t + 14, 1024);  // window
  put16(t + 16, 0);     // checksum, filled below
  put16(t + 18, 0);     // urgent pointer
  if (syn) {
    t[20] = 2;  // MSS option
    t[21] = 4;
    put16(t + 22, 1460);
  }
  put16(t + 16, fold(sum_words({t, tcp_len}, pseudo_sum(f.src, f.dst, kProtoTcp, tcp_len))));
  return ip_len + tcp_len;
}

std::size_t build_udp(const ProbeFields& f, std::span<std::uint8_t> out) {
  const std::size_t udp_len = 8 + f.udp_payload.size();
  const std::size_t ip_len = f.dst.v6 ? 40 : 20;
  if (out.size() < ip_len + udp_len || udp_len > 0xffff - 40) return 0;
  std::uint8_t* p = out.data();
  put_ip(f, kProtoUdp, udp_len, p);
  std::uint8_t* u = p + ip_len;
  put16(u, f.sport);
  put16(u + 2, f.dport);
  put16(u + 4, static_cast<std::uint16_t>(udp_len));
  put16(u + 6, 0);
  if (!f.udp_payload.empty()) std::memcpy(u + 8, f.udp_payload.data(), f.udp_payload.size());
  std::uint16_t sum = fold(sum_words({u, udp_len}, pseudo_sum(f.src, f.dst, kProtoUdp, udp_len)));
  if (sum == 0) sum = 0xffff;  // zero means "no checksum" in UDP
  put16(u + 6, sum);
  return ip_len + udp_len;
}

std::size_t build_echo(const ProbeFields& f, bool reply, std::uint16_t id, std::uint16_t sequence,
                       std::span<std::uint8_t> out) {
  constexpr std::size_t icmp_len = 8;
  const std::size_t ip_len = f.dst.v6 ? 40 : 20;
  if (out.size() < ip_len + icmp_len) return 0;
  std::uint8_t* p = out.data();
  put_ip(f, f.dst.v6 ? kProtoIcmp6 : kProtoIcmp, icmp_len, p);
  std::uint8_t* icmp = p + ip_len;
  icmp[0] = f.dst.v6 ? (reply ? 129 : 128) : (reply ? 0 : 8);
  icmp[1] = 0;
  put16(icmp + 2, 0);
  put16(icmp + 4, id);
  put16(icmp + 6, sequence);
  // ICMPv6 checksums cover a pseudo-header (RFC 4443 section 2.3); ICMPv4 ones do not.
  const std::uint32_t initial = f.dst.v6 ? pseudo_sum(f.src, f.dst, kProtoIcmp6, icmp_len) : 0;
  put16(icmp + 2, fold(sum_words({icmp, icmp_len}, initial)));
  return ip_len + icmp_len;
}

namespace {

// Reads the IP header at `p` (length n). Sets family/addresses/proto and the offset of the
// transport header. IPv6 extension headers are walked for the common kinds.
bool read_ip_header(const std::uint8_t* p, std::size_t n, IpAddr& src, IpAddr& dst,
                    std::uint8_t& proto, std::uint8_t& ttl, std::size_t& l4_off,
                    std::size_t& l4_len, bool& is_fragment_tail) {
  if (n < 1) return false;
  const unsigned version = p[0] >> 4;
  is_fragment_tail = false;
  if (version == 4) {
    if (n < 20) return false;
    const std::size_t ihl = std::size_t{p[0] & 0x0fu} * 4;
    if (ihl < 20 || ihl > n) return false;
    std::size_t total = get16(p + 2);
    if (total < ihl) return false;
    if (total > n) total = n;  // quoted packets inside ICMP are usually truncated
    const std::uint16_t frag = get16(p + 6);
    is_fragment_tail = (frag & 0x1fff) != 0;
    ttl = p[8];
    proto = p[9];
    src = IpAddr{};
    dst = IpAddr{};
    std::memcpy(src.bytes.data(), p + 12, 4);
    std::memcpy(dst.bytes.data(), p + 16, 4);
    l4_off = ihl;
    l4_len = total - ihl;
    return true;
  }
  if (version == 6) {
    if (n < 40) return false;
    std::size_t payload = get16(p + 4);
    ttl = p[7];
    src = IpAddr{};
    dst = IpAddr{};
    src.v6 = dst.v6 = true;
    std::memcpy(src.bytes.data(), p + 8, 16);
    std::memcpy(dst.bytes.data(), p + 24, 16);
    std::uint8_t next = p[6];
    std::size_t off = 40;
    const std::size_t end = payload + 40 < n ? payload + 40 : n;
    // Hop-by-hop (0), routing (43), fragment (44), destination options (60).
    for (int hops = 0; hops < 8; ++hops) {
      if (next != 0 && next != 43 && next != 44 && next != 60) break;
      if (off + 8 > end) return false;
      if (next == 44) {
        is_fragment_tail = (get16(p + off + 2) & 0xfff8) != 0;
        next = p[off];
        off += 8;
        continue;
      }
      const std::size_t len = (std::size_t{p[off + 1]} + 1) * 8;
      next = p[off];
      off += len;
    }
    if (off > end) return false;
    proto = next;
    l4_off = off;
    l4_len = end - off;
    return true;
  }
  return false;
}

bool parse_quoted(const std::uint8_t* p, std::size_t n, Reply& out) {
  IpAddr src;
  IpAddr dst;
  std::uint8_t proto = 0;
  std::uint8_t ttl = 0;
  std::size_t off = 0;
  std::size_t len = 0;
  bool frag = false;
  if (!read_ip_header(p, n, src, dst, proto, ttl, off, len, frag) || frag) return false;
  if (proto != kProtoTcp && proto != kProtoUdp) return false;
  if (len < 4) return false;  // RFC 792 guarantees 8 bytes of the quoted transport header
  out.quoted_src = src;
  out.quoted_dst = dst;
  out.quoted_proto = proto;
  out.sport = get16(p + off);
  out.dport = get16(p + off + 2);
  out.quoted_has_seq = proto == kProtoTcp && len >= 8;
  if (out.quoted_has_seq) out.seq = get32(p + off + 4);
  out.quoted_ip_id = src.v6 ? get32(p) & 0xfffffu : get16(p + 4);
  out.quoted_has_udp_header = proto == kProtoUdp && len >= 8;
  if (out.quoted_has_udp_header) {
    out.quoted_udp_len = get16(p + off + 4);
    out.quoted_udp_sum = get16(p + off + 6);
  }
  return true;
}

}  // namespace

bool parse_ip(std::span<const std::uint8_t> packet, Reply& out) {
  out = Reply{};
  const std::uint8_t* p = packet.data();
  const std::size_t n = packet.size();
  std::uint8_t proto = 0;
  std::size_t off = 0;
  std::size_t len = 0;
  bool frag = false;
  if (!read_ip_header(p, n, out.src, out.dst, proto, out.ttl, off, len, frag) || frag) {
    return false;
  }
  const std::uint8_t* l4 = p + off;
  if (proto == kProtoTcp) {
    if (len < 20) return false;
    out.kind = Reply::Kind::tcp;
    out.sport = get16(l4);
    out.dport = get16(l4 + 2);
    out.seq = get32(l4 + 4);
    out.ack = get32(l4 + 8);
    out.flags = l4[13];
    return true;
  }
  if (proto == kProtoUdp) {
    if (len < 8) return false;
    out.kind = Reply::Kind::udp;
    out.sport = get16(l4);
    out.dport = get16(l4 + 2);
    // The payload ends where the UDP length says, if that is inside what was captured.
    const std::size_t udp_len = get16(l4 + 4);
    const std::size_t end = udp_len >= 8 && udp_len <= len ? udp_len : len;
    out.payload = std::span<const std::uint8_t>(l4 + 8, end - 8);
    return true;
  }
  // Solicited neighbour advertisement (ICMPv6 type 136): host discovery on an IPv6 link.
  // Only with hop limit 255, which no router forwards (RFC 4861 7.1.2), and with the
  // Override flag: a host answering a multicast solicitation for its own unicast address
  // sets it, a proxy (or an anycast address) must not (RFC 4861 7.2.4, 7.2.8), and a proxy's
  // answer proves nothing about the host it speaks for.
  if (proto == kProtoIcmp6 && out.src.v6 && len >= 24 && l4[0] == 136 && l4[1] == 0) {
    constexpr std::uint8_t kSolicited = 0x40;
    constexpr std::uint8_t kOverride = 0x20;
    if (out.ttl != 255 || (l4[4] & kSolicited) == 0 || (l4[4] & kOverride) == 0) return false;
    out.kind = Reply::Kind::nd_advert;
    out.icmp_type = l4[0];
    std::memcpy(out.src.bytes.data(), l4 + 8, 16);  // the address it answers for
    out.sport = out.dport = kNeighborPort;
    return true;
  }
  // Echo reply (ICMP type 0 / ICMPv6 type 129): host discovery.
  if (len >= 8 && ((proto == kProtoIcmp && !out.src.v6 && l4[0] == 0 && l4[1] == 0) ||
                   (proto == kProtoIcmp6 && out.src.v6 && l4[0] == 129 && l4[1] == 0))) {
    out.kind = Reply::Kind::echo_reply;
    out.icmp_type = l4[0];
    out.echo_id = get16(l4 + 4);
    out.echo_sequence = get16(l4 + 6);
    return true;
  }
  // ICMP destination unreachable (type 3) / ICMPv6 destination unreachable (type 1).
  const bool icmp4 = proto == kProtoIcmp && !out.src.v6 && len >= 8 && l4[0] == 3;
  const bool icmp6 = proto == kProtoIcmp6 && out.src.v6 && len >= 8 && l4[0] == 1;
  if (!icmp4 && !icmp6) return false;
  out.kind = Reply::Kind::unreachable;
  out.icmp_type = l4[0];
  out.icmp_code = l4[1];
  return parse_quoted(l4 + 8, len - 8, out);
}

namespace {

// RFC 826 over Ethernet/IPv4 only: htype 1, ptype 0x0800, hlen 6, plen 4, operation 2.
bool parse_arp(std::span<const std::uint8_t> arp, Reply& out) {
  out = Reply{};
  if (arp.size() < 28) return false;
  const std::uint8_t* a = arp.data();
  if (get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 || get16(a + 6) != 2) {
    return false;
  }
  out.kind = Reply::Kind::arp_reply;
  std::memcpy(out.arp_mac.data(), a + 8, 6);
  std::memcpy(out.src.bytes.data(), a + 14, 4);
  std::memcpy(out.dst.bytes.data(), a + 24, 4);
  out.sport = out.dport = kNeighborPort;
  return true;
}

std::size_t put_arp(std::uint16_t operation, const MacAddress& eth_dst, const MacAddress& sha,
                    const IpAddr& spa, const MacAddress& tha, const IpAddr& tpa,
                    std::span<std::uint8_t> out) {
  if (out.size() < 42 || spa.v6 || tpa.v6) return 0;
  std::uint8_t* p = out.data();
  std::memcpy(p, eth_dst.data(), 6);
  std::memcpy(p + 6, sha.data(), 6);
  put16(p + 12, 0x0806);
  std::uint8_t* a = p + 14;
  put16(a, 1);
  put16(a + 2, 0x0800);
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, operation);
  std::memcpy(a + 8, sha.data(), 6);
  std::memcpy(a + 14, spa.bytes.data(), 4);
  std::memcpy(a + 18, tha.data(), 6);
  std::memcpy(a + 24, tpa.bytes.data(), 4);
  return 42;
}

}  // namespace

std::size_t build_arp_request(const MacAddress& our_mac, const IpAddr& our_ip, const IpAddr& target,
                              std::span<std::uint8_t> out) {
  constexpr MacAddress kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  return put_arp(1, kBroadcast, our_mac, our_ip, MacAddress{}, target, out);
}

namespace {

// Ethernet + IPv6 (hop limit 255) + an ICMPv6 neighbour message of type 135 or 136 for
// `target`, with a link-layer address option of `option_type` carrying `src_mac`.
std::size_t put_neighbor_message(std::uint8_t type, std::uint8_t flags, const MacAddress& eth_dst,
                                 const MacAddress& src_mac, const IpAddr& src, const IpAddr& dst,
                                 const IpAddr& target, std::uint8_t option_type,
                                 std::span<std::uint8_t> out) {
  constexpr std::size_t kIcmpLen = 32;  // header 8, target 16, option 8
  if (out.size() < 14 + 40 + kIcmpLen || !src.v6 || !dst.v6 || !target.v6) return 0;
  std::uint8_t* p = out.data();
  std::memcpy(p, eth_dst.data(), 6);
  std::memcpy(p + 6, src_mac.data(), 6);
  put16(p + 12, 0x86dd);
  ProbeFields f;
  f.src = src;
  f.dst = dst;
  f.ttl = 255;
  put_ip(f, kProtoIcmp6, kIcmpLen, p + 14);
  std::uint8_t* icmp = p + 54;
  icmp[0] = type;
  icmp[1] = 0;
  put16(icmp + 2, 0);
  put32(icmp + 4, std::uint32_t{flags} << 24);
  std::memcpy(icmp + 8, target.bytes.data(), 16);
  icmp[24] = option_type;
  icmp[25] = 1;  // length in units of 8 bytes
  std::memcpy(icmp + 26, src_mac.data(), 6);
  put16(icmp + 2, fold(sum_words({icmp, kIcmpLen}, pseudo_sum(src, dst, kProtoIcmp6, kIcmpLen))));
  return 14 + 40 + kIcmpLen;
}

}  // namespace

std::size_t build_neighbor_solicitation(const MacAddress& our_mac, const IpAddr& our_ip,
                                        const IpAddr& target, std::span<std::uint8_t> out) {
  // Solicited-node multicast ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX (RFC 4291 2.7.1,
  // RFC 2464 7).
  IpAddr group;
  group.v6 = true;
  group.bytes = {0xff,
                 0x02,
                 0,
                 0,
                 0,
                 0,
                 0,
                 0,
                 0,
                 0,
                 0,
                 0x01,
                 0xff,
                 target.bytes[13],
                 target.bytes[14],
                 target.bytes[15]};
  const MacAddress mac{0x33, 0x33, 0xff, target.bytes[13], target.bytes[14], target.bytes[15]};
  return put_neighbor_message(135, 0, mac, our_mac, our_ip, group, target, 1, out);
}

std::size_t build_neighbor_advertisement(const MacAddress& from_mac, const IpAddr& from,
                                         const MacAddress& to_mac, const IpAddr& to,
                                         std::span<std::uint8_t> out) {
  // Solicited and Override (RFC 4861 4.4), target link-layer address option (type 2).
  return put_neighbor_message(136, 0x60, to_mac, from_mac, from, to, from, 2, out);
}

std::size_t build_arp_reply(const MacAddress& from_mac, const IpAddr& from,
                            const MacAddress& to_mac, const IpAddr& to,
                            std::span<std::uint8_t> out) {
  return put_arp(2, to_mac, from_mac, from, to_mac, to, out);
}

bool parse_frame(std::span<const std::uint8_t> frame, int datalink, Reply& out) {
  std::size_t off = 0;
  std::uint16_t ethertype = 0;
  const std::uint8_t* p = frame.data();
  const std::size_t n = frame.size();
  switch (datalink) {
    case kDltEthernet:
      if (n < 14) return false;
      ethertype = get16(p + 12);
      off = 14;
      // 802.1Q / 802.1ad tags, at most two.
      for (int i = 0; i < 2 && (ethertype == 0x8100 || ethertype == 0x88a8); ++i) {
        if (n < off + 4) return false;
        ethertype = get16(p + off + 2);
        off += 4;
      }
      if (ethertype == 0x0806) return parse_arp(frame.subspan(off), out);
      if (ethertype != 0x0800 && ethertype != 0x86dd) return false;
      break;
    case kDltLinuxSll:
      if (n < 16) return false;
      ethertype = get16(p + 14);
      if (ethertype != 0x0800 && ethertype != 0x86dd) return false;
      off = 16;
      break;
    case kDltLinuxSll2:
      if (n < 20) return false;
      ethertype = get16(p);
      if (ethertype != 0x0800 && ethertype != 0x86dd) return false;
      off = 20;
      break;
    case kDltNull:
      if (n < 4) return false;
      off = 4;
      break;
    case kDltRaw:
    case kDltRaw2:
      off = 0;
      break;
    default:
      return false;
  }
  return parse_ip(frame.subspan(off), out);
}

std::size_t build_unreachable(const IpAddr& from, const IpAddr& to, std::uint8_t code,
                              std::span<const std::uint8_t> offending,
                              std::span<std::uint8_t> out) {
  // ICMPv4 quotes the IP header + 8 bytes (RFC 792); ICMPv6 as much as fits in 1280.
  const std::size_t quote = std::min<std::size_t>(offending.size(), to.v6 ? 1232 : 28);
  const std::size_t icmp_len = 8 + quote;
  ProbeFields f;
  f.src = from;
  f.dst = to;
  f.ttl = 64;
  const std::size_t ip_len = to.v6 ? 40 : 20;
  if (out.size() < ip_len + icmp_len) return 0;
  std::uint8_t* p = out.data();
  put_ip(f, to.v6 ? kProtoIcmp6 : kProtoIcmp, icmp_len, p);
  std::uint8_t* icmp = p + ip_len;
  icmp[0] = to.v6 ? 1 : 3;
  icmp[1] = code;
  put16(icmp + 2, 0);
  put32(icmp + 4, 0);
  std::memcpy(icmp + 8, offending.data(), quote);
  const std::uint32_t initial = to.v6 ? pseudo_sum(from, to, kProtoIcmp6, icmp_len) : 0;
  put16(icmp + 2, fold(sum_words({icmp, icmp_len}, initial)));
  return ip_len + icmp_len;
}

}  // namespace portvigil::raw
