#include "config_syntax.hpp"

#include <algorithm>
#include <bitset>
#include <cctype>
#include <charconv>
#include <cmath>

namespace portvigil::config_detail {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? s.npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A decimal number in [lo, hi], digits only; nullopt otherwise.
std::optional<unsigned long> number(std::string_view digits, unsigned long lo, unsigned long hi) {
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  unsigned long v = 0;
  const auto* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, v);
  if (ec != std::errc{} || ptr != end || v < lo || v > hi) return std::nullopt;
  return v;
}

u128 all_ones(unsigned bits) {
  return bits == 128 ? ~u128{0} : ((u128{1} << bits) - 1);
}

u128 prefix_mask(unsigned prefix, unsigned bits) {
  if (prefix == 0) return 0;
  return all_ones(bits) & ~((u128{1} << (bits - prefix)) - 1);
}

bool looks_numeric_v4(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ',' || c == '*';
  });
}

bool valid_hostname(std::string_view host) {
  return !host.empty() && host.front() != '-' && host.front() != '.' &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
         });
}

// The prefix length after '/', checked against the family's width.
unsigned parse_prefix(std::string_view whole, std::string_view digits, bool v6) {
  const unsigned bits = v6 ? 128 : 32;
  const auto p = number(digits, 0, bits);
  if (!p) {
    throw SyntaxProblem(display(whole) + ": expected an IPv" + (v6 ? "6" : "4") +
                        " prefix length from 0 to " + std::to_string(bits) + ", got " +
                        display(digits));
  }
  return static_cast<unsigned>(*p);
}

asio::ip::address from_u128(u128 value, bool v6) {
  if (!v6) return asio::ip::address_v4(static_cast<std::uint32_t>(value));
  asio::ip::address_v6::bytes_type b;
  for (int i = 15; i >= 0; --i) {
    b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(value & 0xff);
    value >>= 8;
  }
  return asio::ip::address_v6(b);
}

Range block(const asio::ip::address& a, unsigned prefix) {
  const unsigned bits = a.is_v6() ? 128 : 32;
  Range r;
  r.v6 = a.is_v6();
  r.first = to_u128(a) & prefix_mask(prefix, bits);
  r.last = r.first | (all_ones(bits) & ~prefix_mask(prefix, bits));
  return r;
}

// Nmap octet ranges ("198.18.0.1-20", "10.0-1.*.1,3"): the bounding range of the addresses.
Range octet_bounds(std::string_view text) {
  const auto parts = split(text, '.');
  if (parts.size() != 4) {
    throw SyntaxProblem(
        display(text) + ": expected 4 dot-separated octets, got " + std::to_string(parts.size()) +
        (text.find(',') != text.npos && parts.size() > 4 ? " (write each target as its own string)"
                                                         : ""));
  }
  std::uint32_t low = 0;
  std::uint32_t high = 0;
  for (const auto part : parts) {
    std::bitset<256> set;
    if (part.empty()) throw SyntaxProblem(display(text) + ": expected 4 non-empty octets");
    for (const auto item : split(part, ',')) {
      if (item == "*") {
        set.set();
        continue;
      }
      const auto dash = item.find('-');
      const auto lo =
          dash == 0 ? std::optional<unsigned long>(0) : number(item.substr(0, dash), 0, 255);
      const auto hi = dash == std::string_view::npos ? lo
                      : dash + 1 == item.size()      ? std::optional<unsigned long>(255)
                                                     : number(item.substr(dash + 1), 0, 255);
      if (!lo || !hi) {
        throw SyntaxProblem(display(text) +
                            ": expected octets 0-255, ranges such as 1-20 or *, "
                            "got " +
                            display(item));
      }
      if (*lo > *hi) {
        throw SyntaxProblem(display(text) + ": octet range " + display(item) +
                            " is reversed; expected start <= end");
      }
      for (auto v = *lo; v <= *hi; ++v) set.set(v);
    }
    std::uint32_t min = 0;
    std::uint32_t max = 255;
    while (!set.test(min)) ++min;
    while (!set.test(max)) --max;
    low = (low << 8) | min;
    high = (high << 8) | max;
  }
  return Range{false, low, high};
}

}  // namespace

std::string display(std::string_view text) {
  constexpr std::size_t kMax = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const char c = text[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += kHex[static_cast<unsigned char>(c) & 0xf];
    } else {
      out += c;
    }
  }
  if (text.size() > kMax) out += "...";
  return out + "\"";
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

u128 to_u128(const asio::ip::address& a) {
  if (a.is_v4()) return a.to_v4().to_uint();
  u128 v = 0;
  for (auto byte : a.to_v6().to_bytes()) v = (v << 8) | byte;
  return v;
}

Range range_of(const IpNetwork& network) {
  return block(network.address, network.prefix);
}

std::vector<Range> merge(std::vector<Range> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.v6 != b.v6 ? !a.v6 : a.first < b.first;
  });
  std::vector<Range> out;
  for (const auto& r : ranges) {
    if (!out.empty() && out.back().v6 == r.v6 &&
        (out.back().last == all_ones(r.v6 ? 128 : 32) || r.first <= out.back().last + 1)) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

IpNetwork parse_network(std::string_view text) {
  const std::string what = "expected a network such as \"198.18.0.0/16\" or \"2001:db8::/48\"";
  const auto slash = text.find('/');
  const std::string addr_text(text.substr(0, slash));
  asio::error_code ec;
  const auto addr = asio::ip::make_address(addr_text, ec);
  if (ec || (addr.is_v6() && addr.to_v6().scope_id() != 0)) {
    throw SyntaxProblem(what + ", got " + display(text));
  }
  IpNetwork net;
  net.prefix = addr.is_v6() ? 128 : 32;
  if (slash != std::string_view::npos) {
    net.prefix = parse_prefix(text, text.substr(slash + 1), addr.is_v6());
  }
  const auto r = block(addr, net.prefix);
  if (r.first != to_u128(addr)) {
    const IpNetwork fixed{from_u128(r.first, addr.is_v6()), net.prefix};
    throw SyntaxProblem(display(text) + " has host bits set; expected the network address " +
                        display(fixed.to_string()));
  }
  net.address = addr;
  // An IPv4-mapped block (::ffff:0:0/96 and inside it) is the IPv4 block it maps: the
  // scanner sees IPv4 addresses, and "::ffff:0.0.0.0/96" is all of IPv4, not a small /96.
  if (addr.is_v6() && addr.to_v6().is_v4_mapped() && net.prefix >= 96) {
    net.address = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    net.prefix -= 96;
  }
  return net;
}

TargetShape parse_target(std::string_view text) {
  const auto expr = trim(text);
  if (expr.empty()) {
    throw SyntaxProblem("expected an address, CIDR, octet range or hostname, got " + display(text));
  }
  const auto slash = expr.find('/');
  const auto host = expr.substr(0, slash);
  const bool has_prefix = slash != std::string_view::npos;
  TargetShape shape;
  asio::error_code ec;
  const auto addr = asio::ip::make_address(std::string(host), ec);
  if (!ec) {
    const unsigned prefix = has_prefix ? parse_prefix(expr, expr.substr(slash + 1), addr.is_v6())
                                       : (addr.is_v6() ? 128 : 32);
    shape.range = block(addr, prefix);
    return shape;
  }
  if (host.find(':') != std::string_view::npos) {
    throw SyntaxProblem(display(text) + ": expected an IPv6 address, got " + display(host));
  }
  if (looks_numeric_v4(host)) {
    if (has_prefix) {
      throw SyntaxProblem(display(text) +
                          ": expected an octet range or a CIDR, not both (a /prefix cannot "
                          "follow an octet range)");
    }
    shape.range = octet_bounds(host);
    return shape;
  }
  if (!valid_hostname(host)) {
    throw SyntaxProblem(
        "expected an address, CIDR, octet range such as \"198.18.0.1-20\" or "
        "hostname, got " +
        display(text));
  }
  if (has_prefix) shape.hostname_prefix = parse_prefix(expr, expr.substr(slash + 1), true);
  shape.hostname = true;
  return shape;
}

PolicyHost parse_policy_host(std::string_view text) {
  asio::error_code ec;
  const auto slash = text.find('/');
  (void)asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (!ec) return PolicyHost{parse_network(text)};
  if (slash == std::string_view::npos && !looks_numeric_v4(text) && valid_hostname(text)) {
    return PolicyHost{};
  }
  throw SyntaxProblem("expected \"*\", an address, a CIDR or a hostname");
}

std::vector<bool> port_set(std::string_view spec, Proto proto) {
  if (trim(spec).empty()) {
    throw SyntaxProblem("expected a port list such as \"22,80,1000-2000\", got \"\"");
  }
  bool cur_tcp = true;  // unqualified ports apply to every protocol
  bool cur_udp = true;
  bool matched = false;
  std::vector<bool> set(65536, false);
  for (auto item : split(spec, ',')) {
    item = trim(item);
    if (item.empty()) {
      throw SyntaxProblem(display(spec) + ": expected a port or range between commas, got \"\"");
    }
    if (item.size() >= 2 && item[1] == ':') {
      const char q = static_cast<char>(std::toupper(static_cast<unsigned char>(item[0])));
      if (q != 'T' && q != 'U') {
        throw SyntaxProblem(display(spec) + ": expected the protocol qualifier T: or U:, got " +
                            display(item.substr(0, 2)));
      }
      cur_tcp = q == 'T';
      cur_udp = q == 'U';
      item = trim(item.substr(2));
      if (item.empty()) {
        throw SyntaxProblem(display(spec) + ": expected ports after the qualifier");
      }
    }
    const auto dash = item.find('-');
    const auto lo =
        dash == 0 ? std::optional<unsigned long>(1) : number(item.substr(0, dash), 0, 65535);
    const auto hi = dash == std::string_view::npos ? lo
                    : dash + 1 == item.size()      ? std::optional<unsigned long>(65535)
                                                   : number(item.substr(dash + 1), 0, 65535);
    if (!lo || !hi) {
      throw SyntaxProblem(display(spec) +
                          ": expected a port number from 0 to 65535 or a range "
                          "such as 1000-2000, got " +
                          display(item));
    }
    if (*lo > *hi) {
      throw SyntaxProblem(display(spec) + ": port range " + display(item) +
                          " is reversed; expected start <= end");
    }
    if (proto == Proto::tcp ? cur_tcp : cur_udp) {
      matched = true;
      for (auto p = *lo; p <= *hi; ++p) set[p] = true;
    }
  }
  if (!matched) {
    const std::string p = proto == Proto::tcp ? "TCP" : "UDP";
    throw SyntaxProblem(display(spec) + ": no " + p + " ports, but the technique scans " + p +
                        "; expected " + p + " ports (unqualified or after " +
                        (proto == Proto::tcp ? "T:" : "U:") + ")");
  }
  return set;
}

ExpectedPort parse_expected_port(std::string_view text) {
  const std::string what =
      "expected a port such as \"22/tcp\" or \"8000-8099/tcp\", got " + display(text);
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    throw SyntaxProblem(what + (number(text, 0, 65535) ? " (add /tcp or /udp)" : ""));
  }
  const auto ports = text.substr(0, slash);
  const auto proto_text = text.substr(slash + 1);
  const auto proto = parse_proto(proto_text);
  if (!proto) {
    if (parse_proto(ports) && number(proto_text, 0, 65535)) {
      throw SyntaxProblem(what + " (did you mean " +
                          display(std::string(proto_text) + "/" + std::string(ports)) + "?)");
    }
    throw SyntaxProblem(what);
  }
  const auto dash = ports.find('-');
  const auto lo = number(ports.substr(0, dash), 0, 65535);
  const auto hi = dash == std::string_view::npos ? lo : number(ports.substr(dash + 1), 0, 65535);
  if (!lo || !hi) throw SyntaxProblem(what);
  if (*lo > *hi) {
    throw SyntaxProblem(display(text) + ": port range is reversed; expected start <= end");
  }
  return ExpectedPort{*proto, static_cast<std::uint16_t>(*lo), static_cast<std::uint16_t>(*hi)};
}

double parse_percent(std::string_view text) {
  if (!text.ends_with('%')) throw SyntaxProblem("expected a percentage such as \"10%\"");
  const auto digits = text.substr(0, text.size() - 1);
  double v = -1;
  const auto* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, v);
  if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits.front())) ||
      ec != std::errc{} || ptr != end || !std::isfinite(v) || v < 0) {
    throw SyntaxProblem("expected a percentage such as \"10%\"");
  }
  return v;
}

void check_listen_address(std::string_view text) {
  if (text.empty()) return;
  const std::string what =
      "expected a listen address such as \"127.0.0.1:10117\" or \"[::1]:10117\", got " +
      display(text);
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) throw SyntaxProblem(what);
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    asio::error_code ec;
    (void)asio::ip::make_address_v6(std::string(host), ec);
    if (ec) throw SyntaxProblem(what + " (" + display(host) + " is not an IPv6 address)");
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw SyntaxProblem(what + " (the port is missing)");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      throw SyntaxProblem(what + " (write IPv6 addresses in brackets: \"[::1]:10117\")");
    }
    asio::error_code ec;
    (void)asio::ip::make_address_v4(std::string(host), ec);
    if (host.empty())
      throw SyntaxProblem(what + " (the host is missing; \"0.0.0.0:PORT\" is every interface)");
    if (ec && (looks_numeric_v4(host) || !valid_hostname(host))) {
      throw SyntaxProblem(what);
    }
  }
  if (!number(port, 0, 65535)) {
    throw SyntaxProblem(what + " (the port must be a number from 0 to 65535)");
  }
}

}  // namespace portvigil::config_detail
