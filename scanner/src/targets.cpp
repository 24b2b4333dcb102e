#include "portvigil/scanner/targets.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "portvigil/common/port_knowledge.hpp"

namespace portvigil {
namespace {

using grammar::split;
using grammar::trim;

asio::ip::address resolve(const std::string& host, const std::string& context) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    throw InputError(context + ": cannot resolve hostname: " + gai_strerror(rc));
  }
  asio::ip::address out;
  if (res->ai_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(res->ai_addr);
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), &sin->sin_addr, 4);
    out = asio::ip::address_v4(b);
  } else {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(res->ai_addr);
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), &sin6->sin6_addr, 16);
    out = asio::ip::address_v6(b);
  }
  freeaddrinfo(res);
  return out;
}

}  // namespace

// ---- addresses ---------------------------------------------------------------------------

AddressRange parse_cidr(std::string_view text) {
  try {
    return grammar::parse_network(trim(text), grammar::HostBits::reject).range();
  } catch (const InputError& e) {
    throw InputError(std::string("network: ") + e.what());
  }
}

AuthorizedScope AuthorizedScope::parse(std::string_view list) {
  AuthorizedScope scope;
  for (auto item : split(list, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    scope.add(parse_cidr(item));
  }
  if (scope.empty()) throw InputError("scope " + quote_input(list) + ": no network given");
  return scope;
}

bool AuthorizedScope::contains(const asio::ip::address& a) const {
  return std::any_of(ranges_.begin(), ranges_.end(),
                     [&](const AddressRange& r) { return r.contains(a); });
}

// ---- targets -----------------------------------------------------------------------------

TargetSpec parse_target(std::string_view expression, const TargetParseOptions& options) {
  grammar::TargetExpression parsed;
  try {
    parsed = grammar::parse_target(expression);
  } catch (const InputError& e) {
    throw InputError("target: " + std::string(e.what()));
  }
  TargetSpec spec;
  spec.text = std::string(trim(expression));
  switch (parsed.kind) {
    case grammar::TargetExpression::Kind::range:
      spec.range = parsed.range;
      return spec;
    case grammar::TargetExpression::Kind::octets:
      spec.kind = TargetSpec::Kind::octets;
      spec.octets = parsed.octets;
      return spec;
    case grammar::TargetExpression::Kind::hostname:
      break;
  }
  const std::string context = "target " + quote_input(spec.text);
  if (!options.resolve_names) {
    throw InputError(context + ": is a hostname, but -n disables DNS resolution");
  }
  const auto addr = resolve(parsed.hostname, context);
  const unsigned bits = addr.is_v6() ? 128 : 32;
  if (parsed.prefix && *parsed.prefix > bits) {
    throw InputError(context + ": " + quote_input(parsed.hostname) + " resolves to " +
                     addr.to_string() + "; expected a prefix length from 0 to " +
                     std::to_string(bits));
  }
  spec.range = block_of(addr, parsed.prefix.value_or(bits));
  // A name labels one address, not a block.
  if (!parsed.prefix || *parsed.prefix == bits) spec.hostname = parsed.hostname;
  return spec;
}

bool spec_contains(const TargetSpec& spec, const asio::ip::address& a) {
  if (spec.kind == TargetSpec::Kind::range) return spec.range.contains(a);
  if (!a.is_v4()) return false;
  const auto b = a.to_v4().to_bytes();
  for (std::size_t i = 0; i < 4; ++i) {
    if (!spec.octets[i].test(b[i])) return false;
  }
  return true;
}

void TargetSet::add(std::string_view expression, const TargetParseOptions& options,
                    std::string_view where) {
  try {
    specs_.push_back(parse_target(expression, options));
  } catch (const InputError& e) {
    if (where.empty()) throw;
    throw InputError(std::string(where) + ": " + e.what());
  }
}

void TargetSet::add_target(const Target& target) {
  const bool v6 = target.address.is_v6();
  const uint128 value = to_uint128(target.address);
  if (!specs_.empty()) {
    TargetSpec& last = specs_.back();
    if (last.kind == TargetSpec::Kind::range && last.range.v6 == v6 && last.hostname.empty() &&
        target.hostname.empty() && last.range.last + 1 == value && value != 0) {
      last.range.last = value;
      return;
    }
  }
  TargetSpec spec;
  spec.kind = TargetSpec::Kind::range;
  spec.range = AddressRange{v6, value, value};
  spec.hostname = target.hostname;
  spec.text = target.hostname.empty() ? target.address.to_string() : target.hostname;
  specs_.push_back(std::move(spec));
}

void TargetSet::exclude(std::string_view expression, const TargetParseOptions& options,
                        std::string_view where) {
  // Excluded hostnames are resolved too: excluding a name means excluding its address.
  try {
    excludes_.push_back(parse_target(expression, options));
  } catch (const InputError& e) {
    throw InputError(std::string(where.empty() ? "--exclude" : where) + ": " + e.what());
  }
}

namespace {
template <typename Fn>
void for_each_word_in_file(const std::string& path, const std::string& option, Fn&& fn) {
  std::ifstream in(path);
  if (!in) {
    throw InputError(option + " " + quote_input(path) +
                     ": cannot open file: " + std::strerror(errno));
  }
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string_view view = line;
    if (const auto hash = view.find('#'); hash != view.npos) view = view.substr(0, hash);
    std::size_t i = 0;
    while (i < view.size()) {
      while (i < view.size() && std::isspace(static_cast<unsigned char>(view[i]))) ++i;
      std::size_t j = i;
      while (j < view.size() && !std::isspace(static_cast<unsigned char>(view[j]))) ++j;
      if (j > i)
        fn(view.substr(i, j - i), option + " " + path + " line " + std::to_string(line_no));
      i = j;
    }
  }
  if (in.bad()) throw InputError(option + " " + quote_input(path) + ": read error");
}
}  // namespace

void TargetSet::add_file(const std::string& path, const TargetParseOptions& options) {
  for_each_word_in_file(path, "-iL", [&](std::string_view word, const std::string& where) {
    add(word, options, where);
  });
}

void TargetSet::exclude_file(const std::string& path, const TargetParseOptions& options) {
  for_each_word_in_file(
      path, "--excludefile",
      [&](std::string_view word, const std::string& where) { exclude(word, options, where); });
}

AuthorizedScope TargetSet::covering_scope() const {
  AuthorizedScope scope;
  for (const auto& s : specs_) {
    if (s.kind == TargetSpec::Kind::range) {
      scope.add(s.range);
      continue;
    }
    // Octet expressions: one range per run of consecutive allowed last-octet values would be
    // exact but large; the bounding range of the allowed values is exact enough because the
    // engine also requires each probed address to come from this target set.
    std::uint32_t lo = 0;
    std::uint32_t hi = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      std::uint32_t first = 0;
      std::uint32_t last = 0;
      for (std::uint32_t v = 0; v < 256; ++v) {
        if (s.octets[i].test(v)) {
          last = v;
          if (!s.octets[i].test(first)) first = v;
        }
      }
      lo = (lo << 8) | first;
      hi = (hi << 8) | last;
    }
    scope.add(AddressRange{false, lo, hi});
  }
  return scope;
}

std::uint64_t TargetSet::size_hint() const {
  uint128 total = 0;
  for (const auto& s : specs_) {
    if (s.kind == TargetSpec::Kind::range) {
      const uint128 n = s.range.size();
      total += n == 0 ? ~uint128{0} : n;
    } else {
      uint128 n = 1;
      for (const auto& o : s.octets) n *= o.count();
      total += n;
    }
    if (total > std::numeric_limits<std::uint64_t>::max()) {
      return std::numeric_limits<std::uint64_t>::max();
    }
  }
  // A shard takes about 1/N of them (the hash spreads addresses evenly).
  return static_cast<std::uint64_t>(total) / shard_.count;
}

bool TargetSet::excluded(const asio::ip::address& a) const {
  return std::any_of(excludes_.begin(), excludes_.end(),
                     [&](const TargetSpec& s) { return spec_contains(s, a); });
}

// The last address of the stretch that starts at `a` (inside `x`) and stays inside `x`.
static uint128 stretch_end(const TargetSpec& x, const asio::ip::address& a) {
  if (x.kind == TargetSpec::Kind::range) return x.range.last;
  // Octets: the trailing octets whose sets are full, then the run of allowed values of the
  // first octet that is not full, starting at a's value.
  const auto v = a.to_v4().to_uint();
  int j = 3;
  while (j >= 0 && x.octets[static_cast<std::size_t>(j)].all()) --j;
  if (j < 0) return 0xffffffffULL;
  const unsigned shift = static_cast<unsigned>(8 * (3 - j));
  unsigned r = (v >> shift) & 0xff;
  while (r < 256 && x.octets[static_cast<std::size_t>(j)].test(r)) ++r;
  // a with octet j set to r (carrying into the octet above when r == 256) and zeros below.
  const std::uint64_t next = (((std::uint64_t{v} >> shift >> 8) << 8) + r) << shift;
  return static_cast<uint128>(next - 1);
}

std::optional<uint128> TargetSet::excluded_through(const asio::ip::address& a) const {
  std::optional<uint128> last;
  for (const auto& x : excludes_) {
    if (!spec_contains(x, a)) continue;
    const auto end = stretch_end(x, a);
    if (!last || end > *last) last = end;
  }
  return last;
}

bool TargetSet::Cursor::next(Target& out) {
  std::uint64_t skips = 0;
  while (step(out)) {
    const auto last = set_->excluded_through(out.address);
    if (!last) {
      // whole() first: no key string per target unless sharded.
      if (set_->shard_.whole() || set_->shard_.owns(host_key(out.address, out.hostname))) {
        return true;
      }
    } else {
      skip_through(*last);
    }
    if ((++skips & 0x3ff) == 0 && stop_ && stop_->load(std::memory_order_relaxed)) return false;
  }
  return false;
}

// Moves past `last` (an address of the current spec's family) within the current spec.
void TargetSet::Cursor::skip_through(uint128 last) {
  if (spec_ >= set_->specs_.size() || spec_done_) return;
  const TargetSpec& s = set_->specs_[spec_];
  if (s.kind == TargetSpec::Kind::range) {
    if (last >= s.range.last) {
      spec_done_ = true;
    } else if (last >= s.range.first && last - s.range.first + 1 > offset_) {
      offset_ = last - s.range.first + 1;
    }
    return;
  }
  // Octet expressions: offset_ is the next candidate address.
  if (last >= 0xffffffffULL) {
    spec_done_ = true;
  } else if (last + 1 > offset_) {
    offset_ = last + 1;
  }
}

// Advances to the next address of the current spec, moving on to the next spec when one
// is exhausted. For ranges offset_ counts from range.first; for octet expressions it holds
// the current address itself (an odometer over the allowed values of each octet).
bool TargetSet::Cursor::step(Target& out) {
  while (spec_ < set_->specs_.size()) {
    const TargetSpec& s = set_->specs_[spec_];
    if (s.kind == TargetSpec::Kind::range) {
      const uint128 size = s.range.size();
      if (!spec_done_ && (size == 0 || offset_ < size)) {
        out.address = from_uint128(s.range.first + offset_, s.range.v6);
        out.hostname = s.hostname;
        ++offset_;
        if (offset_ == size) spec_done_ = true;  // also stops wrap-around at 2^128
        return true;
      }
    } else {
      // Odometer: find the next value >= offset_ whose octets are all allowed.
      std::array<int, 4> digit{};
      bool found = false;
      if (!spec_done_) {
        std::uint64_t candidate = static_cast<std::uint64_t>(offset_);
        while (candidate <= 0xffffffffULL) {
          const auto v = static_cast<std::uint32_t>(candidate);
          int bad = -1;
          for (int i = 0; i < 4; ++i) {
            digit[static_cast<std::size_t>(i)] = static_cast<int>((v >> (24 - 8 * i)) & 0xff);
            if (!s.octets[static_cast<std::size_t>(i)].test(
                    static_cast<std::size_t>(digit[static_cast<std::size_t>(i)]))) {
              bad = i;
              break;
            }
          }
          if (bad < 0) {
            found = true;
            break;
          }
          // Skip the whole block below the first disallowed octet.
          const unsigned shift = static_cast<unsigned>(24 - 8 * bad);
          candidate = ((candidate >> shift) + 1) << shift;
        }
        if (found) {
          out.address = asio::ip::address_v4(static_cast<std::uint32_t>(candidate));
          out.hostname.clear();
          if (candidate == 0xffffffffULL) {
            spec_done_ = true;
          } else {
            offset_ = candidate + 1;
          }
          return true;
        }
      }
    }
    ++spec_;
    offset_ = 0;
    spec_done_ = false;
  }
  return false;
}

// ---- ports -------------------------------------------------------------------------------

PortList parse_ports(std::string_view spec, bool want_tcp, bool want_udp) {
  grammar::PortSelection selection;
  try {
    selection = grammar::parse_port_list(spec);
  } catch (const InputError& e) {
    throw InputError(std::string("-p: ") + e.what());
  }
  PortList out;
  for (std::size_t p = 0; p < 65536; ++p) {
    if (selection.tcp[p] || (want_tcp && selection.unqualified[p])) {
      out.tcp.push_back(static_cast<std::uint16_t>(p));
    }
    if (selection.udp[p] || (want_udp && selection.unqualified[p])) {
      out.udp.push_back(static_cast<std::uint16_t>(p));
    }
  }
  if (out.empty()) {
    throw InputError("-p " + quote_input(spec) + ": no ports for the selected scan type" +
                     std::string(want_tcp ? " (TCP)" : " (UDP)"));
  }
  return out;
}

PortList top_ports(std::size_t count, bool want_tcp, bool want_udp) {
  PortList out;
  auto take = [count](Proto p) {
    const auto ranked = ranked_ports(p);
    if (count > ranked.size()) {
      throw InputError("--top-ports " + std::to_string(count) + ": at most " +
                       std::to_string(ranked.size()) + " ranked " + std::string(name(p)) +
                       " ports are known");
    }
    std::vector<std::uint16_t> v(ranked.begin(), ranked.begin() + static_cast<long>(count));
    std::sort(v.begin(), v.end());
    return v;
  };
  if (count == 0) throw InputError("--top-ports 0: expected a count of at least 1");
  if (want_tcp) out.tcp = take(Proto::tcp);
  if (want_udp) out.udp = take(Proto::udp);
  return out;
}

void exclude_ports(PortList& ports, const PortList& excluded) {
  auto drop = [](std::vector<std::uint16_t>& v, const std::vector<std::uint16_t>& x) {
    std::vector<std::uint16_t> kept;
    std::set_difference(v.begin(), v.end(), x.begin(), x.end(), std::back_inserter(kept));
    v.swap(kept);
  };
  drop(ports.tcp, excluded.tcp);
  drop(ports.udp, excluded.udp);
}

std::string format_port_ranges(const std::vector<std::uint16_t>& ports) {
  std::string out;
  for (std::size_t i = 0; i < ports.size();) {
    std::size_t j = i;
    while (j + 1 < ports.size() && ports[j + 1] == ports[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(ports[i]);
    if (j > i) out += "-" + std::to_string(ports[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace portvigil
