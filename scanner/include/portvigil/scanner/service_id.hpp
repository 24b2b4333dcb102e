// Service identification on open TCP ports: what answers there, read safely.
//
// Per port, within `port_limit` (2.9 s, so that a whole run stays within 3 s): connect; read the
// greeting (at most 512 bytes, for at most `banner_wait`); if the server said nothing, try a TLS
// handshake (verification off, SNI when a host name is known) and read the certificate; then send
// one HTTP "HEAD /" (inside TLS, or on a new plain connection); a port that answers none of this
// gets PostgreSQL's 8-byte SSLRequest. No credentials are sent and nothing a server could act on
// beyond answering. Ports on the never-probe list get nothing at all: a printer prints
// whatever arrives on 9100 (raw/JetDirect), 515 (LPD) or 631 (IPP). Addresses outside
// the scope are never contacted: the check is here, where connections are made.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "portvigil/common/service.hpp"
#include "portvigil/scanner/engine.hpp"
#include "portvigil/scanner/targets.hpp"

namespace portvigil {

struct ServiceTarget {
  asio::ip::address address;
  std::uint16_t port = 0;
  std::string hostname;  // for SNI and the Host header; "" = use the address
};

// 515, 631, 9100-9107: ports where received bytes are printed.
[[nodiscard]] std::vector<std::uint16_t> default_never_probe_ports();

struct IdentifyOptions {
  AuthorizedScope scope;  // required: empty = nothing
  std::vector<std::uint16_t> never_probe = default_never_probe_ports();
  Seconds banner_wait{1.5};
  Seconds tls_wait{0.75};  // for the handshake, so that HEAD / still has time after it
  Seconds port_limit{2.9};
  // Ports identified at once: 64 silent ports (each held for the whole limit) still finish
  // within one limit.
  std::size_t concurrency = 64;
  const std::atomic<bool>* stop = nullptr;
};

// One result per target, in order. Never throws for network conditions: they are outcomes.
[[nodiscard]] std::vector<ServiceIdentity> identify_services(
    const std::vector<ServiceTarget>& targets, const IdentifyOptions& options);

}  // namespace portvigil
