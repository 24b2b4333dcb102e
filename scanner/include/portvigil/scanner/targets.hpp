// What to scan: target sets and port lists built from the shared grammar
// (portvigil/common/grammar.hpp), and the authorized scope. Parsers throw InputError with a
// one-line message naming the offending text; they are meant for the edges (CLI, config).
// Target sets are iterated lazily, never materialised.
#pragma once

#include <array>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "portvigil/common/errors.hpp"
#include "portvigil/common/grammar.hpp"
#include "portvigil/common/scan_model.hpp"
#include "portvigil/common/shard.hpp"

namespace portvigil {

// ---- ports -------------------------------------------------------------------------------

struct PortList {
  std::vector<std::uint16_t> tcp;  // sorted, unique
  std::vector<std::uint16_t> udp;
  [[nodiscard]] bool empty() const { return tcp.empty() && udp.empty(); }
  [[nodiscard]] const std::vector<std::uint16_t>& of(Proto p) const {
    return p == Proto::tcp ? tcp : udp;
  }
};

// Nmap -p syntax (grammar::parse_port_list). Unqualified ports go to every protocol wanted;
// ports after T: or U: to that protocol. Throws when no wanted protocol gets a port.
[[nodiscard]] PortList parse_ports(std::string_view spec, bool want_tcp, bool want_udp);
// The first `count` ranked ports (--top-ports N; -F is 100).
[[nodiscard]] PortList top_ports(std::size_t count, bool want_tcp, bool want_udp);
// Removes `excluded` from `ports` (--exclude-ports).
void exclude_ports(PortList& ports, const PortList& excluded);
// Compact text form, e.g. "1-1024,3306" (Nmap's scaninfo services attribute).
[[nodiscard]] std::string format_port_ranges(const std::vector<std::uint16_t>& ports);

// ---- addresses ---------------------------------------------------------------------------

// One network for --scope and the agent's authorizations: "198.18.0.0/15", "2001:db8::/32"
// or a bare address, host bits clear (grammar::parse_network with HostBits::reject).
[[nodiscard]] AddressRange parse_cidr(std::string_view text);

// The networks a scan may touch. Engines check it before every probe they send.
class AuthorizedScope {
 public:
  AuthorizedScope() = default;
  explicit AuthorizedScope(std::vector<AddressRange> ranges) : ranges_(std::move(ranges)) {}
  // "198.18.0.0/15,2001:db8::/32"
  [[nodiscard]] static AuthorizedScope parse(std::string_view list);
  void add(const AddressRange& range) { ranges_.push_back(range); }
  [[nodiscard]] bool contains(const asio::ip::address& a) const;
  [[nodiscard]] bool empty() const { return ranges_.empty(); }
  [[nodiscard]] const std::vector<AddressRange>& ranges() const { return ranges_; }

 private:
  std::vector<AddressRange> ranges_;
};

// ---- targets -----------------------------------------------------------------------------

struct Target {
  asio::ip::address address;
  std::string hostname;  // as written by the user, empty for literals
};

struct TargetParseOptions {
  bool resolve_names = true;  // -n turns hostnames into errors instead of DNS lookups
};

// One target expression: an address, a CIDR block, an IPv4 octet-range expression such as
// "198.18.0.1-20" or "198.18.0-1.*", or a hostname (optionally with /prefix).
struct TargetSpec {
  enum class Kind : std::uint8_t { range, octets } kind = Kind::range;
  AddressRange range;                      // Kind::range
  std::array<std::bitset<256>, 4> octets;  // Kind::octets: allowed values per octet
  std::string hostname;
  std::string text;  // as written, for messages
};

class TargetSet {
 public:
  // Adds one expression; throws InputError naming `where` (e.g. "-iL hosts.txt line 3").
  void add(std::string_view expression, const TargetParseOptions& options,
           std::string_view where = {});
  void add_file(const std::string& path, const TargetParseOptions& options);  // -iL
  void exclude(std::string_view expression, const TargetParseOptions& options,
               std::string_view where = {});
  void exclude_file(const std::string& path, const TargetParseOptions& options);  // --excludefile
  // Appends one known target (no parsing, no DNS); the next address of the last range
  // extends it, so a run of consecutive live hosts costs one spec.
  void add_target(const Target& target);
  // Keeps only the targets `shard` owns (keyed as the `host` label: the hostname as written,
  // else the address), for agents that share a job's hosts ([agent] shard).
  void select(const Shard& shard) { shard_ = shard; }
  [[nodiscard]] const Shard& shard() const { return shard_; }

  [[nodiscard]] bool empty() const { return specs_.empty(); }
  [[nodiscard]] const std::vector<TargetSpec>& specs() const { return specs_; }
  // The smallest scope holding every target: the default scope of a one-shot scan.
  [[nodiscard]] AuthorizedScope covering_scope() const;
  // Number of addresses before exclusions (saturates at 2^64-1); with a shard selected, its
  // expected share of them (for progress estimates).
  [[nodiscard]] std::uint64_t size_hint() const;

  // Lazy iteration over every address, in the order given, skipping exclusions. An excluded
  // stretch is skipped whole (to the end of the excluded range, or of the octet run), so the
  // work does not grow with the number of excluded addresses.
  class Cursor {
   public:
    explicit Cursor(const TargetSet& set) : set_(&set) {}
    // Fills `out` and returns true while there is another target; false also once `stop`
    // (set_stop) is set.
    bool next(Target& out);
    // A flag (SIGINT/SIGTERM) that ends the iteration, checked while skipping exclusions.
    void set_stop(const std::atomic<bool>* stop) { stop_ = stop; }

   private:
    bool step(Target& out);
    void skip_through(uint128 last);
    const TargetSet* set_;
    const std::atomic<bool>* stop_ = nullptr;
    std::size_t spec_ = 0;
    uint128 offset_ = 0;  // position inside the current spec
    bool spec_done_ = false;
  };
  [[nodiscard]] Cursor cursor() const { return Cursor(*this); }

 private:
  [[nodiscard]] bool excluded(const asio::ip::address& a) const;
  // When `a` is excluded: the last address of the excluded stretch that starts at `a`.
  [[nodiscard]] std::optional<uint128> excluded_through(const asio::ip::address& a) const;
  std::vector<TargetSpec> specs_;
  std::vector<TargetSpec> excludes_;
  Shard shard_;
};

[[nodiscard]] TargetSpec parse_target(std::string_view expression,
                                      const TargetParseOptions& options);
[[nodiscard]] bool spec_contains(const TargetSpec& spec, const asio::ip::address& a);

}  // namespace portvigil
