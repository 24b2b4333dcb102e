#include "portvigil/common/grammar.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace portvigil {
namespace {

uint128 all_ones(unsigned bits) {
  return bits == 128 ? ~uint128{0} : ((uint128{1} << bits) - 1);
}

uint128 prefix_mask(unsigned prefix, unsigned bits) {
  if (prefix == 0) return 0;
  return all_ones(bits) & ~((uint128{1} << (bits - prefix)) - 1);
}

bool looks_numeric_v4(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ',' || c == '*';
  });
}

// The prefix length after '/', checked against the family's width.
unsigned parse_prefix(std::string_view whole, std::string_view digits, bool v6) {
  const unsigned bits = v6 ? 128 : 32;
  const auto p = grammar::decimal(digits, 0, bits);
  if (!p) {
    throw InputError(quote_input(whole) + ": expected an IPv" + (v6 ? "6" : "4") +
                     " prefix length from 0 to " + std::to_string(bits) + ", got " +
                     quote_input(digits));
  }
  return static_cast<unsigned>(*p);
}

// A NUL would end the text early for C APIs (inet_pton, getaddrinfo): "198.18.0.1\0evil"
// must not quietly become 198.18.0.1.
void reject_nul(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    throw InputError(quote_input(text) + ": expected text without NUL bytes");
  }
}

// An address literal without a zone id; nullopt when `text` is not an address at all.
std::optional<asio::ip::address> address_literal(std::string_view whole, std::string_view text) {
  if (text.find('%') != std::string_view::npos && text.find(':') != std::string_view::npos) {
    throw InputError(quote_input(whole) +
                     ": expected an address without a zone id (\"%...\" names an interface, "
                     "not addresses)");
  }
  asio::error_code ec;
  const auto a = asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return a;
}

// One item of a range list: "a", "a-b", "-b" (from `open_low`) or "a-" (to `max`), each
// bound a decimal in [0, max]. `noun` and `expected` word the errors about `whole`.
std::pair<unsigned long, unsigned long> span(std::string_view whole, std::string_view item,
                                             unsigned long open_low, unsigned long max,
                                             std::string_view noun, std::string_view expected) {
  const auto dash = item.find('-');
  const auto lo = dash == 0 ? std::optional<unsigned long>(open_low)
                            : grammar::decimal(item.substr(0, dash), 0, max);
  const auto hi = dash == std::string_view::npos ? lo
                  : dash + 1 == item.size()      ? std::optional<unsigned long>(max)
                                                 : grammar::decimal(item.substr(dash + 1), 0, max);
  if (!lo || !hi) {
    throw InputError(quote_input(whole) + ": expected " + std::string(expected) + ", got " +
                     quote_input(item));
  }
  if (*lo > *hi) {
    throw InputError(quote_input(whole) + ": " + std::string(noun) + " range " + quote_input(item) +
                     " is reversed; expected start <= end");
  }
  return {*lo, *hi};
}

// Nmap octet ranges ("198.18.0.1-20", "10.0-1.*.1,3"): the allowed values of each octet.
std::array<std::bitset<256>, 4> parse_octets(std::string_view text) {
  const auto parts = grammar::split(text, '.');
  if (parts.size() != 4) {
    throw InputError(quote_input(text) + ": expected 4 dot-separated octets, got " +
                     std::to_string(parts.size()) +
                     (text.find(',') != text.npos && parts.size() > 4
                          ? " (write each target as its own string)"
                          : ""));
  }
  std::array<std::bitset<256>, 4> octets;
  for (std::size_t i = 0; i < 4; ++i) {
    if (parts[i].empty()) throw InputError(quote_input(text) + ": expected 4 non-empty octets");
    for (const auto item : grammar::split(parts[i], ',')) {
      if (item == "*") {
        octets[i].set();
        continue;
      }
      const auto [lo, hi] =
          span(text, item, 0, 255, "octet", "octets 0-255, ranges such as 1-20 or *");
      for (auto v = lo; v <= hi; ++v) octets[i].set(v);
    }
  }
  return octets;
}

AddressRange octet_bounds(const std::array<std::bitset<256>, 4>& octets) {
  std::uint32_t low = 0;
  std::uint32_t high = 0;
  for (const auto& set : octets) {
    std::uint32_t min = 0;
    std::uint32_t max = 255;
    while (!set.test(min)) ++min;
    while (!set.test(max)) --max;
    low = (low << 8) | min;
    high = (high << 8) | max;
  }
  return AddressRange{false, low, high};
}

}  // namespace

// ---- addresses ---------------------------------------------------------------------------

bool AddressRange::contains(const asio::ip::address& a) const {
  if (a.is_v6() != v6) return false;
  const auto v = to_uint128(a);
  return v >= first && v <= last;
}

uint128 to_uint128(const asio::ip::address& a) {
  if (a.is_v4()) return a.to_v4().to_uint();
  uint128 v = 0;
  for (auto byte : a.to_v6().to_bytes()) v = (v << 8) | byte;
  return v;
}

asio::ip::address from_uint128(uint128 value, bool v6) {
  if (!v6) return asio::ip::address_v4(static_cast<std::uint32_t>(value));
  asio::ip::address_v6::bytes_type b;
  for (int i = 15; i >= 0; --i) {
    b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(value & 0xff);
    value >>= 8;
  }
  return asio::ip::address_v6(b);
}

AddressRange block_of(const asio::ip::address& a, unsigned prefix) {
  const unsigned bits = a.is_v6() ? 128 : 32;
  prefix = std::min(prefix, bits);
  AddressRange r;
  r.v6 = a.is_v6();
  r.first = to_uint128(a) & prefix_mask(prefix, bits);
  r.last = r.first | (all_ones(bits) & ~prefix_mask(prefix, bits));
  return r;
}

std::vector<AddressRange> merge_ranges(std::vector<AddressRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const AddressRange& a, const AddressRange& b) {
    return a.v6 != b.v6 ? !a.v6 : a.first < b.first;
  });
  std::vector<AddressRange> out;
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

std::string quote_input(std::string_view text) {
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

std::string IpNetwork::to_string() const {
  return address.to_string() + "/" + std::to_string(prefix);
}

namespace grammar {

IpNetwork parse_network(std::string_view text, HostBits host_bits) {
  reject_nul(text);
  const std::string what = "expected a network such as \"198.18.0.0/16\" or \"2001:db8::/48\"";
  const auto slash = text.find('/');
  const auto addr = address_literal(text, text.substr(0, slash));
  if (!addr) throw InputError(what + ", got " + quote_input(text));
  IpNetwork net;
  net.prefix = addr->is_v6() ? 128 : 32;
  if (slash != std::string_view::npos) {
    net.prefix = parse_prefix(text, text.substr(slash + 1), addr->is_v6());
  }
  const auto r = block_of(*addr, net.prefix);
  if (r.first != to_uint128(*addr) && host_bits == HostBits::reject) {
    const IpNetwork fixed{from_uint128(r.first, addr->is_v6()), net.prefix};
    throw InputError(quote_input(text) + " has host bits set; expected the network address " +
                     quote_input(fixed.to_string()));
  }
  net.address = from_uint128(r.first, addr->is_v6());
  if (addr->is_v6() && addr->to_v6().is_v4_mapped() && net.prefix >= 96) {
    net.address = asio::ip::make_address_v4(asio::ip::v4_mapped, net.address.to_v6());
    net.prefix -= 96;
  }
  return net;
}

bool is_hostname(std::string_view text) {
  if (text.ends_with('.')) text.remove_suffix(1);
  if (text.empty() || text.size() > 253 || looks_numeric_v4(text)) return false;
  for (const auto label : split(text, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-') return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
        })) {
      return false;
    }
  }
  return true;
}

TargetExpression parse_target(std::string_view text) {
  reject_nul(text);
  const auto expr = trim(text);
  if (expr.empty()) {
    throw InputError("expected an address, CIDR, octet range or hostname, got " +
                     quote_input(text));
  }
  const auto slash = expr.find('/');
  const auto host = expr.substr(0, slash);
  const bool has_prefix = slash != std::string_view::npos;
  TargetExpression t;
  if (const auto addr = address_literal(expr, host)) {
    const IpNetwork net = parse_network(expr, HostBits::ignore);
    t.range = net.range();
    return t;
  }
  if (host.find(':') != std::string_view::npos) {
    throw InputError(quote_input(expr) + ": expected an IPv6 address, got " + quote_input(host));
  }
  if (looks_numeric_v4(host)) {
    if (has_prefix) {
      throw InputError(quote_input(expr) +
                       ": expected an octet range or a CIDR, not both (a /prefix cannot "
                       "follow an octet range)");
    }
    t.kind = TargetExpression::Kind::octets;
    t.octets = parse_octets(host);
    t.range = octet_bounds(t.octets);
    return t;
  }
  if (!is_hostname(host)) {
    throw InputError(
        "expected an address, CIDR, octet range such as \"198.18.0.1-20\" or "
        "hostname, got " +
        quote_input(expr));
  }
  t.kind = TargetExpression::Kind::hostname;
  t.hostname = std::string(host);
  if (has_prefix) t.prefix = parse_prefix(expr, expr.substr(slash + 1), true);
  return t;
}

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

std::optional<unsigned long> decimal(std::string_view digits, unsigned long lo, unsigned long hi) {
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

PortSelection parse_port_list(std::string_view text) {
  reject_nul(text);
  if (trim(text).empty()) {
    throw InputError("expected a port list such as \"22,80,1000-2000\", got " + quote_input(text));
  }
  PortSelection out;
  std::bitset<65536>* current = &out.unqualified;
  for (auto item : split(text, ',')) {
    item = trim(item);
    if (item.empty()) {
      throw InputError(quote_input(text) + ": expected a port or range between commas, got \"\"");
    }
    // Nmap's qualifiers are sticky: they apply until the next one.
    if (item.size() >= 2 && item[1] == ':') {
      const char q = static_cast<char>(std::toupper(static_cast<unsigned char>(item[0])));
      if (q != 'T' && q != 'U') {
        throw InputError(quote_input(text) + ": expected the protocol qualifier T: or U:, got " +
                         quote_input(item.substr(0, 2)));
      }
      current = q == 'T' ? &out.tcp : &out.udp;
      item = trim(item.substr(2));
      if (item.empty())
        throw InputError(quote_input(text) + ": expected ports after the qualifier");
    }
    // "-1024" starts at 1, as in Nmap: port 0 only when written.
    const auto [lo, hi] = span(text, item, 1, 65535, "port",
                               "a port number from 0 to 65535 or a range such as 1000-2000");
    for (auto p = lo; p <= hi; ++p) current->set(p);
  }
  return out;
}

}  // namespace grammar
}  // namespace portvigil
