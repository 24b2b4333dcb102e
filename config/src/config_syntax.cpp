#include "config_syntax.hpp"

#include <algorithm>
#include <bitset>
#include <cctype>
#include <charconv>
#include <cmath>

namespace portvigil::config_detail {
namespace {

// Runs a shared-grammar parser; its InputError becomes a SyntaxProblem for the loader.
template <typename F>
auto grammar_check(F&& f) {
  try {
    return f();
  } catch (const InputError& e) {
    throw SyntaxProblem(e.what());
  }
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

IpNetwork parse_network(std::string_view text) {
  return grammar_check([&] { return grammar::parse_network(text, grammar::HostBits::reject); });
}

grammar::TargetExpression parse_target(std::string_view text) {
  return grammar_check([&] { return grammar::parse_target(text); });
}

PolicyHost parse_policy_host(std::string_view text) {
  asio::error_code ec;
  const auto slash = text.find('/');
  (void)asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (!ec || text.find(':') != std::string_view::npos) return PolicyHost{parse_network(text)};
  if (slash == std::string_view::npos && grammar::is_hostname(text)) return PolicyHost{};
  throw SyntaxProblem("expected \"*\", an address, a CIDR or a hostname");
}

std::vector<bool> port_set(std::string_view spec, Proto proto, std::string_view user) {
  const auto ports = grammar_check([&] { return grammar::parse_port_list(spec).of(proto); });
  if (ports.none()) {
    const std::string p = proto == Proto::tcp ? "TCP" : "UDP";
    throw SyntaxProblem(display(spec) + ": no " + p + " ports, but " + std::string(user) + " " + p +
                        "; expected " + p + " ports (unqualified or after " +
                        (proto == Proto::tcp ? "T:" : "U:") + ")");
  }
  std::vector<bool> set(65536, false);
  for (std::size_t p = 0; p < set.size(); ++p) set[p] = ports[p];
  return set;
}

ExpectedPort parse_expected_port(std::string_view text) {
  const std::string what =
      "expected a port such as \"22/tcp\" or \"8000-8099/tcp\", got " + display(text);
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    throw SyntaxProblem(what + (grammar::decimal(text, 0, 65535) ? " (add /tcp or /udp)" : ""));
  }
  const auto ports = text.substr(0, slash);
  const auto proto_text = text.substr(slash + 1);
  const auto proto = parse_proto(proto_text);
  if (!proto) {
    if (parse_proto(ports) && grammar::decimal(proto_text, 0, 65535)) {
      throw SyntaxProblem(what + " (did you mean " +
                          display(std::string(proto_text) + "/" + std::string(ports)) + "?)");
    }
    throw SyntaxProblem(what);
  }
  const auto dash = ports.find('-');
  const auto lo = grammar::decimal(ports.substr(0, dash), 0, 65535);
  const auto hi =
      dash == std::string_view::npos ? lo : grammar::decimal(ports.substr(dash + 1), 0, 65535);
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
    if (ec && !grammar::is_hostname(host)) {
      throw SyntaxProblem(what);
    }
  }
  if (!grammar::decimal(port, 0, 65535)) {
    throw SyntaxProblem(what + " (the port must be a number from 0 to 65535)");
  }
}

}  // namespace portvigil::config_detail
