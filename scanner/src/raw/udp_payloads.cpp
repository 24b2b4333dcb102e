// UDP probe payloads, one per well-known UDP service.
//
// LICENSE NOTE: every payload below was written by hand from the protocol specification cited in
// its comment (RFCs, the UPnP Device Architecture, memcached's protocol.txt). Nothing here is
// read, copied or derived from Nmap's nmap-payloads / nmap-service-probes files or from the
// masscan / zmap payload files.
//
// Conventions: all multi-byte integers are in network byte order (big-endian). Where a protocol
// carries a transaction / request identifier the template holds a fixed value built from the
// ASCII letters "PV" (0x50 0x56). The raw scanner sends udp_payload_stamped(): the template with
// bits of the probe's cookie written over (part of) that identifier, and it takes a reply from
// such a port only when the reply echoes them (see kTable's Echo column and probe.cpp).

#include "udp_payloads.hpp"

#include <algorithm>
#include <array>
#include <cstddef>

namespace portvigil::raw {
namespace {

using Byte = std::uint8_t;

// A string literal as bytes, without the terminating NUL.
template <std::size_t N>
constexpr std::array<Byte, N - 1> ascii(const char (&s)[N]) {
  std::array<Byte, N - 1> out{};
  for (std::size_t i = 0; i + 1 < N; ++i) out[i] = static_cast<Byte>(s[i]);
  return out;
}

// Concatenation of byte arrays into one array.
template <std::size_t... N>
constexpr std::array<Byte, (N + ... + 0)> concat(const std::array<Byte, N>&... parts) {
  std::array<Byte, (N + ... + 0)> out{};
  std::size_t pos = 0;
  auto append = [&out, &pos](const auto& part) {
    for (Byte b : part) out[pos++] = b;
  };
  (append(parts), ...);
  return out;
}

// ---------------------------------------------------------------------------------------------
// DNS, port 53 -- RFC 1035 section 4.1 (message format).
//
// A standard query for the root zone's NS records ("." IN NS) with Recursion Desired set.
// Why this question: it is class IN (implemented by every DNS server, unlike CHAOS-class
// "version.bind", which many non-BIND servers and filtering middleboxes ignore) and it needs
// no knowledge of any zone. A recursive resolver or forwarder answers it from its root hints;
// an authoritative-only server answers REFUSED (or an upward referral). Either way the port
// replies with a DNS message, which is all the scan needs.
// ---------------------------------------------------------------------------------------------
constexpr std::array<Byte, 17> kDns = {
    // Header, RFC 1035 section 4.1.1.
    0x50, 0x56,  // ID: arbitrary, echoed by the server.
    0x01, 0x00,  // QR=0 (query), OPCODE=0 (QUERY), AA=0, TC=0, RD=1 | RA=0, Z=0, RCODE=0.
    0x00, 0x01,  // QDCOUNT = 1 question.
    0x00, 0x00,  // ANCOUNT = 0.
    0x00, 0x00,  // NSCOUNT = 0.
    0x00, 0x00,  // ARCOUNT = 0.
    // Question, RFC 1035 section 4.1.2.
    0x00,        // QNAME: the root name is the single zero-length label (section 3.1).
    0x00, 0x02,  // QTYPE = 2 (NS, section 3.2.2).
    0x00, 0x01,  // QCLASS = 1 (IN, section 3.2.4).
};

// ---------------------------------------------------------------------------------------------
// DHCP, port 67 -- RFC 2131 section 2 (message format), RFC 2132 (options), RFC 951 and RFC 1542
// (a BOOTP message is at least 300 octets: 236 fixed octets plus a 64-octet vendor area).
//
// A DHCPDISCOVER BOOTREQUEST. Note: RFC 2131 section 4.1 has the server answer to the client
// port 68 (or the broadcast address), not to our source port, so a reply may only be visible to
// a capture that accepts any destination port; an ICMP port unreachable still proves "closed".
// ---------------------------------------------------------------------------------------------
constexpr std::size_t kBootpMinSize = 300;
constexpr std::size_t kDhcpCookieOffset = 236;

constexpr std::array<Byte, kBootpMinSize> make_dhcp_discover() {
  std::array<Byte, kBootpMinSize> p{};  // Every field not set below is zero.
  p[0] = 1;                             // op = 1, BOOTREQUEST.
  p[1] = 1;                             // htype = 1, 10 Mb Ethernet (RFC 1700 ARP hardware type).
  p[2] = 6;                             // hlen = 6, length of an Ethernet MAC address.
  p[3] = 0;                             // hops = 0, not relayed.
  // xid (offset 4, 4 bytes): transaction ID chosen by the client, "PVD1".
  p[4] = 0x50;
  p[5] = 0x56;
  p[6] = 0x44;
  p[7] = 0x31;
  // secs (8, 2 bytes) = 0; flags (10, 2 bytes) = 0: broadcast bit clear.
  // ciaddr (12), yiaddr (16), siaddr (20), giaddr (24): all 0.0.0.0 for a DISCOVER.
  // chaddr (28, 16 bytes): a fixed, locally administered unicast MAC 02:50:56:00:00:01 (the
  // 0x02 bit of the first octet marks it locally administered, so it collides with no vendor's
  // address space), then 10 bytes of zero padding.
  p[28] = 0x02;
  p[29] = 0x50;
  p[30] = 0x56;
  p[31] = 0x00;
  p[32] = 0x00;
  p[33] = 0x01;
  // sname (44, 64 bytes) and file (108, 128 bytes): empty (all zero).
  // options (236): the magic cookie 99.130.83.99 (RFC 2131 section 3, RFC 2132 section 2).
  p[kDhcpCookieOffset + 0] = 99;
  p[kDhcpCookieOffset + 1] = 130;
  p[kDhcpCookieOffset + 2] = 83;
  p[kDhcpCookieOffset + 3] = 99;
  std::size_t i = kDhcpCookieOffset + 4;
  // Option 53, DHCP Message Type (RFC 2132 section 9.6): length 1, value 1 = DHCPDISCOVER.
  p[i++] = 53;
  p[i++] = 1;
  p[i++] = 1;
  // Option 55, Parameter Request List (RFC 2132 section 9.8): subnet mask (1), router (3),
  // domain name server (6).
  p[i++] = 55;
  p[i++] = 3;
  p[i++] = 1;
  p[i++] = 3;
  p[i++] = 6;
  // The remaining bytes are Pad options (code 0, RFC 2132 section 3.1) up to the BOOTP minimum
  // size, and the very last byte is the End option (code 255, RFC 2132 section 3.2).
  p[kBootpMinSize - 1] = 255;
  return p;
}
constexpr auto kDhcp = make_dhcp_discover();

// ---------------------------------------------------------------------------------------------
// TFTP, port 69 -- RFC 1350 section 5 (packet formats).
//
// A read request (RRQ) for a file that almost certainly does not exist, in "octet" mode. A
// server answers with an ERROR packet (opcode 5, usually "File not found") or, if the file
// exists, the first DATA block; both prove the port open. Per RFC 1350 section 4 the server
// answers from a newly chosen port (its TID), not from port 69.
// ---------------------------------------------------------------------------------------------
constexpr auto kTftp = concat(std::array<Byte, 2>{0x00, 0x01},  // Opcode 1 = RRQ.
                              ascii("portvigil-probe"),         // Filename (netascii) ...
                              std::array<Byte, 1>{0x00},        // ... terminated by a NUL.
                              ascii("octet"),                   // Mode "octet" (binary) ...
                              std::array<Byte, 1>{0x00});       // ... terminated by a NUL.

// ---------------------------------------------------------------------------------------------
// ONC RPC portmapper / rpcbind, port 111 -- RFC 5531 section 9 (call message) and RFC 1833
// section 3 (portmapper program 100000, version 2, procedure 0 = PMAPPROC_NULL).
//
// The NULL procedure takes no arguments and always succeeds, so any rpcbind answers with an
// accepted reply. Over UDP the message is not preceded by a record mark (RFC 5531 section 11
// applies to stream transports only). All fields are XDR 32-bit big-endian (RFC 4506).
// ---------------------------------------------------------------------------------------------
constexpr std::array<Byte, 40> kRpcbind = {
    0x50, 0x56, 0x52, 0x31,  // xid: transaction id "PVR1", echoed in the reply.
    0x00, 0x00, 0x00, 0x00,  // msg_type = 0, CALL.
    0x00, 0x00, 0x00, 0x02,  // rpcvers = 2.
    0x00, 0x01, 0x86, 0xa0,  // prog = 100000, portmapper.
    0x00, 0x00, 0x00, 0x02,  // vers = 2.
    0x00, 0x00, 0x00, 0x00,  // proc = 0, NULL.
    0x00, 0x00, 0x00, 0x00,  // cred.flavor = AUTH_NONE (0) ...
    0x00, 0x00, 0x00, 0x00,  // ... with an empty body (length 0).
    0x00, 0x00, 0x00, 0x00,  // verf.flavor = AUTH_NONE (0) ...
    0x00, 0x00, 0x00, 0x00,  // ... with an empty body (length 0).
};

// ---------------------------------------------------------------------------------------------
// NTP, port 123 -- RFC 5905 section 7.3 (packet header format).
//
// A 48-byte NTPv4 client-mode packet with no extension fields. An NTP server answers every
// client-mode packet with a server-mode packet (mode 4), possibly a Kiss-o'-Death, which counts
// as an answer too.
// ---------------------------------------------------------------------------------------------
// Byte 0 packs LI (2 bits) = 3 (clock unsynchronised: the client has no time yet), VN (3 bits)
// = 4 and Mode (3 bits) = 3 (client): 0b11'100'011 = 0xe3.
constexpr std::array<Byte, 48> kNtp = {
    0xe3, 0x00, 0x06, 0xec,  // LI/VN/Mode; Stratum 0 (unspecified); Poll 6 (64 s); Precision -20.
    0x00, 0x00, 0x00, 0x00,  // Root Delay = 0.
    0x00, 0x00, 0x00, 0x00,  // Root Dispersion = 0.
    0x00, 0x00, 0x00, 0x00,  // Reference ID = 0 (none).
    0x00, 0x00, 0x00, 0x00,  // Reference Timestamp = 0: seconds ...
    0x00, 0x00, 0x00, 0x00,  // ... and fraction.
    0x00, 0x00, 0x00, 0x00,  // Origin Timestamp = 0: seconds ...
    0x00, 0x00, 0x00, 0x00,  // ... and fraction.
    0x00, 0x00, 0x00, 0x00,  // Receive Timestamp = 0: seconds ...
    0x00, 0x00, 0x00, 0x00,  // ... and fraction.
    0x50, 0x56, 0x4e, 0x54,  // Transmit Timestamp: fixed non-zero value "PVNTP4\0\1"; the server
    0x50, 0x34, 0x00, 0x01,  // copies it into its reply's Origin Timestamp (section 8).
};

// ---------------------------------------------------------------------------------------------
// NetBIOS Name Service, port 137 -- RFC 1002 sections 4.2.1 (header, question) and 4.2.17
// (NODE STATUS REQUEST); name encoding per RFC 1001 section 14.1 / RFC 1002 section 4.1.
//
// A node status (NBSTAT) query for the wildcard name "*". A NetBIOS name server or any node
// running the NetBIOS name service answers with a NODE STATUS RESPONSE listing its names
// (RFC 1002 section 4.2.18).
// ---------------------------------------------------------------------------------------------

// First-level encoding (RFC 1001 section 14.1): each half-octet of the 16-byte NetBIOS name
// becomes one character 'A' + nibble, high nibble first, giving 32 characters. As a domain name
// (RFC 1002 section 4.1) that is one 32-byte label (length octet 0x20) followed by the empty
// scope, i.e. the terminating zero-length label: 34 bytes in all.
constexpr std::array<Byte, 34> netbios_encoded_name(const std::array<Byte, 16>& name) {
  std::array<Byte, 34> out{};
  out[0] = 32;
  for (std::size_t i = 0; i < name.size(); ++i) {
    out[1 + 2 * i] = static_cast<Byte>('A' + (name[i] >> 4));
    out[2 + 2 * i] = static_cast<Byte>('A' + (name[i] & 0x0f));
  }
  out[33] = 0;
  return out;
}

// The wildcard name: '*' followed by 15 NUL bytes (the wildcard is NUL-padded, not padded with
// spaces like ordinary names), encoding to "CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".
constexpr std::array<Byte, 16> kNetbiosWildcard = {'*'};

constexpr auto kNetbiosNs = concat(
    std::array<Byte, 12>{
        0x50, 0x57,  // NAME_TRN_ID: arbitrary, echoed by the responder.
        0x00, 0x00,  // R=0 (request), OPCODE=0 (query), NM_FLAGS all 0 (B=0: unicast), RCODE=0.
        0x00, 0x01,  // QDCOUNT = 1.
        0x00, 0x00,  // ANCOUNT = 0.
        0x00, 0x00,  // NSCOUNT = 0.
        0x00, 0x00,  // ARCOUNT = 0.
    },
    netbios_encoded_name(kNetbiosWildcard),  // QUESTION_NAME.
    std::array<Byte, 4>{
        0x00, 0x21,  // QUESTION_TYPE = NBSTAT (0x0021), section 4.2.1.2.
        0x00, 0x01,  // QUESTION_CLASS = IN (0x0001).
    });

// ---------------------------------------------------------------------------------------------
// SNMP, port 161 -- RFC 1157 section 4 (SNMPv1 message and GetRequest-PDU), encoded with the
// ASN.1 Basic Encoding Rules (ITU-T X.690) as RFC 1157 section 4 requires; the object is
// sysDescr.0 from the MIB-II system group (RFC 1213, RFC 3418).
//
// SNMPv1 rather than v2c: agents that speak v2c virtually always accept v1 too, while v1-only
// agents drop v2c messages. The community "public" is the customary read-only default. An agent
// that accepts the community answers with a GetResponse carrying its system description; one
// that rejects it usually stays silent (RFC 1157 section 4.1 authentication failure), so a
// missing answer still means open|filtered.
//
// Every length below is a short-form definite length (X.690 section 8.1.3.4, < 128) and is
// checked by static_assert against the size of what it covers.
// ---------------------------------------------------------------------------------------------
constexpr std::array<Byte, 10> kSnmpOid = {
    0x06, 0x08,  // OBJECT IDENTIFIER, 8 content bytes (X.690 section 8.19):
    0x2b,        // first two arcs 1.3 -> 40 * 1 + 3 = 43,
    0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00,  // then 6.1.2.1.1.1.0 (sysDescr.0).
};
constexpr auto kSnmpVarBind = concat(std::array<Byte, 2>{0x30, 0x0c},   // VarBind SEQUENCE, 12.
                                     kSnmpOid,                          // name
                                     std::array<Byte, 2>{0x05, 0x00});  // value: NULL, empty.
static_assert(kSnmpVarBind.size() == 2 + 0x0c);
constexpr auto kSnmpVarBindList = concat(std::array<Byte, 2>{0x30, 0x0e},  // SEQUENCE OF, 14.
                                         kSnmpVarBind);
static_assert(kSnmpVarBindList.size() == 2 + 0x0e);
constexpr auto kSnmpPdu = concat(
    std::array<Byte, 2>{0xa0, 0x1c},  // GetRequest-PDU: context-specific constructed [0], 28.
    std::array<Byte, 6>{0x02, 0x04, 0x50, 0x56, 0x53, 0x31},  // request-id INTEGER "PVS1".
    std::array<Byte, 3>{0x02, 0x01, 0x00},                    // error-status INTEGER 0.
    std::array<Byte, 3>{0x02, 0x01, 0x00},                    // error-index INTEGER 0.
    kSnmpVarBindList);                                        // variable-bindings.
static_assert(kSnmpPdu.size() == 2 + 0x1c);
constexpr auto kSnmp =
    concat(std::array<Byte, 2>{0x30, 0x29},        // Message SEQUENCE, 41 content bytes.
           std::array<Byte, 3>{0x02, 0x01, 0x00},  // version INTEGER 0 = version-1.
           std::array<Byte, 2>{0x04, 0x06},        // community OCTET STRING, 6 bytes:
           ascii("public"),                        //   "public".
           kSnmpPdu);                              // data: the PDU.
static_assert(kSnmp.size() == 2 + 0x29);

// ---------------------------------------------------------------------------------------------
// IKE, port 500 -- RFC 7296 (IKEv2) sections 1.2 and 3 (header section 3.1, SA 3.3, KE 3.4,
// Nonce 3.9); transform and group numbers from the IANA IKEv2 registries; algorithm choice per
// RFC 8247 section 3 (mandatory-to-implement suite).
//
// An IKEv2 IKE_SA_INIT request: header, SA (one IKE proposal), KE and Ni. We send the complete
// first message rather than a bare header because a responder only replies to a message it can
// process; a header-only packet is typically discarded as malformed. With a complete
// IKE_SA_INIT every IKEv2 responder answers: either its own IKE_SA_INIT response, or an
// unprotected notification -- NO_PROPOSAL_CHOSEN (section 2.7), INVALID_KE_PAYLOAD with its
// preferred group (section 1.2), or COOKIE when under load (section 2.6). Our random KE/nonce
// mean no SA can ever be completed.
//
// Suite: ENCR_AES_CBC with 128-bit key, PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128 and Diffie-
// Hellman group 14 (2048-bit MODP, RFC 3526), all MUST/SHOULD+ in RFC 8247. Group 14 is used
// because its public value is valid for any number 1 < y < p - 1 (p begins with 0xFFFF...), so a
// fixed pseudo-random value is acceptable; an elliptic-curve group would need a real curve point.
// ---------------------------------------------------------------------------------------------
constexpr std::size_t kIkeHeaderLen = 28;
constexpr std::size_t kIkeSaLen = 4 + 8 + 12 + 8 + 8 + 8;  // generic hdr, proposal, 4 transforms
constexpr std::size_t kIkeKeDataLen = 256;                 // group 14: 2048 bits.
constexpr std::size_t kIkeKeLen = 4 + 4 + kIkeKeDataLen;   // generic hdr, group + reserved.
constexpr std::size_t kIkeNonceDataLen = 32;  // >= 16 and >= half the PRF key (section 2.10).
constexpr std::size_t kIkeNonceLen = 4 + kIkeNonceDataLen;
constexpr std::size_t kIkeLen = kIkeHeaderLen + kIkeSaLen + kIkeKeLen + kIkeNonceLen;

struct IkeMessage {
  std::array<Byte, kIkeLen> bytes;
  std::size_t written;  // How many bytes the builder wrote; must equal kIkeLen.
};

constexpr IkeMessage make_ike_sa_init() {
  std::array<Byte, kIkeLen> p{};
  std::size_t i = 0;
  auto u8 = [&p, &i](unsigned v) { p[i++] = static_cast<Byte>(v); };
  auto u16 = [&u8](unsigned v) {
    u8(v >> 8);
    u8(v & 0xff);
  };
  auto u32 = [&u16](std::uint32_t v) {
    u16(v >> 16);
    u16(v & 0xffff);
  };
  // Fixed pseudo-random bytes (xorshift32) for the KE value and the nonce.
  std::uint32_t state = 0x50564b45;  // "PVKE"
  auto random_byte = [&state]() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return static_cast<Byte>(state >> 24);
  };

  // IKE header, section 3.1.
  // Initiator's SPI: a fixed, random-looking non-zero value (section 3.1: MUST NOT be zero).
  constexpr std::array<Byte, 8> kSpi = {0x7a, 0x3c, 0x91, 0x5e, 0x08, 0xd4, 0x6b, 0xf2};
  for (Byte b : kSpi) u8(b);
  for (int k = 0; k < 8; ++k) u8(0);         // Responder's SPI: zero in IKE_SA_INIT requests.
  u8(33);                                    // Next Payload = 33, Security Association.
  u8(0x20);                                  // MjVer = 2, MnVer = 0.
  u8(34);                                    // Exchange Type = 34, IKE_SA_INIT.
  u8(0x08);                                  // Flags: I (Initiator) set; R and V clear.
  u32(0);                                    // Message ID = 0 for IKE_SA_INIT.
  u32(static_cast<std::uint32_t>(kIkeLen));  // Length of the whole message, header included.

  // Security Association payload, section 3.3.
  u8(34);                                 // Next Payload = 34, Key Exchange.
  u8(0);                                  // C (critical) = 0, reserved.
  u16(static_cast<unsigned>(kIkeSaLen));  // Payload Length.
  // Proposal substructure, section 3.3.1.
  u8(0);                                      // Last Substruc = 0: this is the last proposal.
  u8(0);                                      // Reserved.
  u16(static_cast<unsigned>(kIkeSaLen - 4));  // Proposal Length (proposal + its transforms).
  u8(1);                                      // Proposal Num = 1 (the first is numbered 1).
  u8(1);                                      // Protocol ID = 1, IKE.
  u8(0);                                      // SPI Size = 0 in an initial IKE_SA_INIT.
  u8(4);                                      // Num Transforms = 4.
  // Transform substructures, section 3.3.2: Last Substruc (3 = more follow, 0 = last),
  // Reserved, Transform Length, Transform Type, Reserved, Transform ID, then attributes.
  auto transform = [&u8, &u16](bool last, unsigned type, unsigned id, unsigned key_bits) {
    u8(last ? 0 : 3);
    u8(0);
    u16(key_bits != 0 ? 12 : 8);
    u8(type);
    u8(0);
    u16(id);
    // Key Length attribute (section 3.3.5): AF = 1 (TV format) | type 14, value in bits.
    if (key_bits != 0) {
      u16(0x8000 | 14);
      u16(key_bits);
    }
  };
  transform(false, 1, 12, 128);  // Type 1 ENCR, ID 12 ENCR_AES_CBC, 128-bit key.
  transform(false, 2, 5, 0);     // Type 2 PRF, ID 5 PRF_HMAC_SHA2_256.
  transform(false, 3, 12, 0);    // Type 3 INTEG, ID 12 AUTH_HMAC_SHA2_256_128.
  transform(true, 4, 14, 0);     // Type 4 D-H, ID 14 (2048-bit MODP group); the last one.

  // Key Exchange payload, section 3.4.
  u8(40);                                 // Next Payload = 40, Nonce.
  u8(0);                                  // C = 0, reserved.
  u16(static_cast<unsigned>(kIkeKeLen));  // Payload Length.
  u16(14);                                // Diffie-Hellman Group Num = 14, as proposed.
  u16(0);                                 // Reserved.
  const std::size_t ke_start = i;
  for (std::size_t k = 0; k < kIkeKeDataLen; ++k) u8(random_byte());
  // Keep the public value strictly between 1 and p - 1: top byte in 0x40..0x7f.
  p[ke_start] = static_cast<Byte>((p[ke_start] & 0x3f) | 0x40);

  // Nonce payload, section 3.9.
  u8(0);                                     // Next Payload = 0, none: last payload.
  u8(0);                                     // C = 0, reserved.
  u16(static_cast<unsigned>(kIkeNonceLen));  // Payload Length.
  for (std::size_t k = 0; k < kIkeNonceDataLen; ++k) u8(random_byte());
  return {p, i};
}
constexpr IkeMessage kIkeBuilt = make_ike_sa_init();
static_assert(kIkeBuilt.written == kIkeLen, "IKE length constants disagree with the builder");
constexpr auto kIke = kIkeBuilt.bytes;

// ---------------------------------------------------------------------------------------------
// SSDP, port 1900 -- UPnP Device Architecture 1.1, section 1.3.2 (search request with
// M-SEARCH), HTTP/1.1 message syntax over UDP (HTTPU).
//
// Discovery request for all devices and services (ST: ssdp:all). HOST names the SSDP multicast
// group as the specification requires for the multicast form, which most devices also answer
// when it arrives by unicast; MX (maximum wait, seconds) = 1 keeps the answer delay short.
// Each line ends with CRLF and the header block ends with an empty line; there is no body.
// ---------------------------------------------------------------------------------------------
constexpr auto kSsdp = ascii(
    "M-SEARCH * HTTP/1.1\r\n"
    "HOST: 239.255.255.250:1900\r\n"
    "MAN: \"ssdp:discover\"\r\n"
    "MX: 1\r\n"
    "ST: ssdp:all\r\n"
    "\r\n");

// ---------------------------------------------------------------------------------------------
// STUN, port 3478 -- RFC 8489 (formerly RFC 5389) section 5 (message structure) and 6.
//
// A Binding request with no attributes. Any STUN server (including TURN servers) answers it with
// a Binding success response carrying XOR-MAPPED-ADDRESS.
// ---------------------------------------------------------------------------------------------
constexpr std::array<Byte, 20> kStun = {
    0x00, 0x01, 0x00, 0x00,  // Message Type: Binding Request (0x0001); Message Length = 0.
    0x21, 0x12, 0xa4, 0x42,  // Magic Cookie 0x2112A442.
    0x50, 0x56, 0x53, 0x54,  // Transaction ID, 96 bits: fixed value "PVSTUNPROBE1".
    0x55, 0x4e, 0x50, 0x52,  //
    0x4f, 0x42, 0x45, 0x31,  //
};

// ---------------------------------------------------------------------------------------------
// SIP, port 5060 -- RFC 3261 sections 7.1 (request line), 8.1.1 (mandatory headers To, From,
// CSeq, Call-ID, Max-Forwards, Via), 11.1 (OPTIONS), 18.1.1 and 20.14 (Content-Length); RFC 3581
// section 3 ("rport").
//
// OPTIONS asks a UA or proxy for its capabilities; every SIP element must answer it (200 OK, or
// an error such as 404/481/403, all of which are SIP responses). The addresses are our own
// placeholders: 192.0.2.1 is TEST-NET-1 (RFC 5737) and "portvigil.invalid" uses the reserved
// .invalid TLD (RFC 6761 section 6.4), so nothing real is named. The Via branch starts with the
// RFC 3261 magic cookie "z9hG4bK" (section 8.1.1.7). The empty "rport" parameter asks the server
// to send the response back to the source address and port the request came from (RFC 3581),
// instead of to the placeholder address in Via.
// ---------------------------------------------------------------------------------------------
constexpr auto kSip = ascii(
    "OPTIONS sip:probe@portvigil.invalid SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-pv-5060-1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:probe@portvigil.invalid>;tag=pv5060\r\n"
    "To: <sip:probe@portvigil.invalid>\r\n"
    "Call-ID: pv-probe-5060@192.0.2.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Contact: <sip:probe@192.0.2.1:5060>\r\n"
    "Accept: application/sdp\r\n"
    "Content-Length: 0\r\n"
    "\r\n");

// ---------------------------------------------------------------------------------------------
// NAT-PMP, port 5351 -- RFC 6886 section 3.2 (determining the external address).
//
// The external address request: Vers = 0, OP = 0. A NAT-PMP gateway answers with its external
// address; a PCP server (RFC 6887 section 9, same port) answers a version-0 request with an
// UNSUPP_VERSION error. Either is an answer.
// ---------------------------------------------------------------------------------------------
constexpr std::array<Byte, 2> kNatPmp = {
    0x00,  // Vers = 0.
    0x00,  // OP = 0, external address request.
};

// ---------------------------------------------------------------------------------------------
// mDNS, port 5353 -- RFC 6762 sections 5.4 (QU questions), 6.7 (legacy unicast), 18 (header
// fields); RFC 6763 section 9 (service type enumeration); DNS encoding per RFC 1035 section 4.1.
//
// A PTR query for "_services._dns-sd._udp.local", which every DNS-SD responder answers with the
// list of service types it advertises. The top bit of QCLASS is the "unicast-response" (QU) bit,
// asking for a unicast answer; moreover, because our source port is not 5353, RFC 6762 section
// 6.7 makes the responder treat this as a legacy unicast query and reply directly to our source
// address and port.
// ---------------------------------------------------------------------------------------------
constexpr auto kMdns = concat(
    std::array<Byte, 12>{
        0x00, 0x00,  // ID = 0 (section 18.1).
        0x00, 0x00,  // QR=0, OPCODE=0, AA=0, TC=0, RD=0, RA=0, Z=0, AD=0, CD=0, RCODE=0 (sec. 18).
        0x00, 0x01,  // QDCOUNT = 1.
        0x00, 0x00,  // ANCOUNT = 0.
        0x00, 0x00,  // NSCOUNT = 0.
        0x00, 0x00,  // ARCOUNT = 0.
    },
    // QNAME as length-prefixed labels, ending with the root label.
    std::array<Byte, 1>{9}, ascii("_services"),  //
    std::array<Byte, 1>{7}, ascii("_dns-sd"),    //
    std::array<Byte, 1>{4}, ascii("_udp"),       //
    std::array<Byte, 1>{5}, ascii("local"),      //
    std::array<Byte, 1>{0},                      //
    std::array<Byte, 4>{
        0x00, 0x0c,  // QTYPE = 12, PTR.
        0x80, 0x01,  // QU bit (0x8000) | QCLASS = 1, IN.
    });

// ---------------------------------------------------------------------------------------------
// CoAP, port 5683 -- RFC 7252 sections 3 (message format), 3.1 (option format), 5.10.1
// (Uri-Path, option number 11); RFC 6690 section 4 (/.well-known/core resource discovery).
//
// A confirmable GET for "/.well-known/core". A CoAP server answers 2.05 Content with its
// resource list, or an error code such as 4.04 -- or at least an RST -- all of which are replies.
// ---------------------------------------------------------------------------------------------
constexpr auto kCoap = concat(
    std::array<Byte, 4>{
        0x40,        // Ver = 1, T = 0 (Confirmable), TKL = 0.
        0x01,        // Code 0.01, GET.
        0x50, 0x56,  // Message ID, echoed in the ACK.
    },
    // Option delta 11 (Uri-Path), length 11: ".well-known".
    std::array<Byte, 1>{0xbb}, ascii(".well-known"),
    // Option delta 0 (Uri-Path again), length 4: "core".
    std::array<Byte, 1>{0x04}, ascii("core"));

// ---------------------------------------------------------------------------------------------
// memcached, port 11211 -- memcached's doc/protocol.txt, section "UDP protocol" (frame header)
// and the text command "stats".
//
// Every UDP request starts with an 8-byte frame header; a single-datagram request uses sequence
// number 0 of 1 datagram. The server answers with its statistics (several datagrams, each with
// the same frame header layout). Note that memcached >= 1.5.6 disables UDP by default.
// ---------------------------------------------------------------------------------------------
constexpr auto kMemcached = concat(
    std::array<Byte, 8>{
        0x50, 0x56,  // Request ID, echoed in each reply datagram.
        0x00, 0x00,  // Sequence number = 0.
        0x00, 0x01,  // Total number of datagrams = 1.
        0x00, 0x00,  // Reserved, must be 0.
    },
    ascii("stats\r\n"));

// ---------------------------------------------------------------------------------------------
// Syslog, port 514 -- RFC 5426 (syslog over UDP), RFC 3164, RFC 5424.
//
// Deliberately empty. Syslog over UDP is simplex: a collector only receives and never sends
// anything back -- there are no reply or acknowledgement messages in these specifications --
// whatever we send. A syslog port can therefore only be classified "closed" (ICMP port
// unreachable) or "open|filtered" (silence), and sending a log message would only write junk into
// someone's logs.
// ---------------------------------------------------------------------------------------------

// The identifier a protocol's replies echo. The request's bytes [offset, offset + len) are
// stamped with the cookie: a field of at most 4 bytes gets the cookie's top `len` bytes
// (big-endian), a longer one keeps its template bytes and gets the whole cookie in its last 4.
// A reply echoes the whole field at reply_offset (NTP: the transmit timestamp comes back as
// the origin timestamp), or, for SNMP, as the content of its request-id INTEGER.
struct Echo {
  enum class Kind : std::uint8_t { none, fixed, snmp_request_id };
  Kind kind = Kind::none;
  std::uint16_t offset = 0;
  std::uint8_t len = 0;
  std::uint16_t reply_offset = 0;
};
constexpr Echo fixed_echo(std::uint16_t offset, std::uint8_t len, std::uint16_t reply_offset) {
  return Echo{Echo::Kind::fixed, offset, len, reply_offset};
}

// SNMP: request-id is the INTEGER at bytes 15-20 (tag 2, length 4, "PVS1"). Only its last 3
// bytes are stamped: the first stays 0x50, so the value stays positive and minimally encoded
// (X.690 section 8.3.2) whatever the cookie.
constexpr std::uint16_t kSnmpRequestId = 17;
static_assert(kSnmp[kSnmpRequestId - 2] == 0x02 && kSnmp[kSnmpRequestId - 1] == 0x04 &&
              kSnmp[kSnmpRequestId] == 0x50);
constexpr Echo kSnmpEcho{Echo::Kind::snmp_request_id, kSnmpRequestId + 1, 3, 0};

struct Entry {
  std::uint16_t port;
  std::string_view protocol;
  std::span<const Byte> payload;
  Echo echo{};
};

// Sorted by port, for binary search.
// Echo: which identifier the protocol's answers repeat (none: DHCP and TFTP answer from or to
// another port, syslog never answers, and the SSDP, SIP and NAT-PMP payloads carry no binary
// identifier their answers echo).
constexpr std::array kTable = {
    Entry{53, "dns", kDns, fixed_echo(0, 2, 0)},                 // RFC 1035 4.1.1: ID
    Entry{67, "dhcp", kDhcp},                                    // RFC 2131, RFC 2132
    Entry{69, "tftp", kTftp},                                    // RFC 1350
    Entry{111, "rpcbind", kRpcbind, fixed_echo(0, 4, 0)},        // RFC 5531 9: xid
    Entry{123, "ntp", kNtp, fixed_echo(40, 8, 24)},              // RFC 5905 8: origin = transmit
    Entry{137, "netbios-ns", kNetbiosNs, fixed_echo(0, 2, 0)},   // RFC 1002 4.2.1.1: NAME_TRN_ID
    Entry{161, "snmp", kSnmp, kSnmpEcho},                        // RFC 1157 4.1.2: request-id
    Entry{500, "ike", kIke, fixed_echo(0, 8, 0)},                // RFC 7296 3.1: initiator's SPI
    Entry{514, "syslog", {}},                                    // RFC 5426: deliberately empty
    Entry{1900, "ssdp", kSsdp},                                  // UPnP Device Architecture 1.1
    Entry{3478, "stun", kStun, fixed_echo(8, 12, 8)},            // RFC 8489 6: transaction ID
    Entry{5060, "sip", kSip},                                    // RFC 3261
    Entry{5351, "nat-pmp", kNatPmp},                             // RFC 6886
    Entry{5353, "mdns", kMdns, fixed_echo(0, 2, 0)},             // RFC 6762 6.7: query ID
    Entry{5683, "coap", kCoap, fixed_echo(2, 2, 2)},             // RFC 7252 4.4: Message ID
    Entry{11211, "memcached", kMemcached, fixed_echo(0, 2, 0)},  // protocol.txt: request ID
};

constexpr bool echoes_fit() {
  for (const Entry& e : kTable) {
    if (e.echo.kind == Echo::Kind::none) continue;
    if (e.echo.len == 0 || e.echo.len > 12 || e.echo.offset + e.echo.len > e.payload.size())
      return false;
  }
  return true;
}
static_assert(echoes_fit(), "every echoed identifier lies inside its payload");

constexpr bool strictly_sorted() {
  for (std::size_t i = 1; i < kTable.size(); ++i) {
    if (kTable[i - 1].port >= kTable[i].port) return false;
  }
  return true;
}
static_assert(strictly_sorted(), "kTable must be sorted by port without duplicates");

// Largest UDP payload in one unfragmented IPv4 datagram on a 1500-byte MTU link:
// 1500 - 20 (IPv4 header) - 8 (UDP header).
constexpr bool all_fit_one_datagram() {
  for (const Entry& e : kTable) {
    if (e.payload.size() > 1472) return false;
  }
  return true;
}
static_assert(all_fit_one_datagram());

constexpr const Entry* find(std::uint16_t port) {
  auto it = std::lower_bound(kTable.begin(), kTable.end(), port,
                             [](const Entry& e, std::uint16_t p) { return e.port < p; });
  return it != kTable.end() && it->port == port ? &*it : nullptr;
}

}  // namespace

std::span<const std::uint8_t> udp_payload(std::uint16_t port) {
  const Entry* e = find(port);
  return e != nullptr ? e->payload : std::span<const std::uint8_t>{};
}

namespace {

// The stamped identifier field of `e` for `cookie`, into `field` (e.len bytes).
void stamp_field(const Entry& e, std::uint32_t cookie, Byte* field) {
  for (std::size_t i = 0; i < e.echo.len; ++i) field[i] = e.payload[e.echo.offset + i];
  const std::size_t n = e.echo.len < 4 ? e.echo.len : 4;
  Byte* at = field + (e.echo.len - n);
  for (std::size_t i = 0; i < n; ++i) at[i] = static_cast<Byte>(cookie >> (24 - 8 * i));
}

// BER (X.690 8.1.2-8.1.3): reads the tag and definite length at `i` and moves `i` to the
// content. Single-byte tags, lengths in short form or long form of up to 2 bytes.
bool ber_header(std::span<const Byte> b, std::size_t& i, Byte& tag, std::size_t& len) {
  if (i + 2 > b.size()) return false;
  tag = b[i++];
  const Byte first = b[i++];
  if (first < 0x80) {
    len = first;
  } else if (first == 0x81 || first == 0x82) {
    const std::size_t n = first & 0x7fu;
    if (i + n > b.size()) return false;
    len = 0;
    for (std::size_t k = 0; k < n; ++k) len = (len << 8) | b[i++];
  } else {
    return false;
  }
  return len <= b.size() - i;
}

// The content of an SNMP message's request-id: Message SEQUENCE { version INTEGER, community
// OCTET STRING, PDU [0..8] { request-id INTEGER, ... } } (RFC 1157 4, RFC 3416 3).
std::span<const Byte> snmp_request_id(std::span<const Byte> b) {
  std::size_t i = 0;
  Byte tag = 0;
  std::size_t len = 0;
  if (!ber_header(b, i, tag, len) || tag != 0x30) return {};
  if (!ber_header(b, i, tag, len) || tag != 0x02) return {};
  i += len;
  if (!ber_header(b, i, tag, len) || tag != 0x04) return {};
  i += len;
  if (!ber_header(b, i, tag, len) || tag < 0xa0 || tag > 0xa8) return {};
  if (!ber_header(b, i, tag, len) || tag != 0x02) return {};
  return b.subspan(i, len);
}

}  // namespace

std::span<const std::uint8_t> udp_payload_stamped(std::uint16_t port, std::uint32_t cookie,
                                                  std::span<std::uint8_t> out) {
  const Entry* e = find(port);
  if (e == nullptr || e->payload.size() > out.size()) return {};
  std::copy(e->payload.begin(), e->payload.end(), out.begin());
  if (e->echo.kind != Echo::Kind::none) stamp_field(*e, cookie, out.data() + e->echo.offset);
  return out.first(e->payload.size());
}

bool udp_reply_echoes(std::uint16_t port, std::uint32_t cookie,
                      std::span<const std::uint8_t> reply) {
  const Entry* e = find(port);
  if (e == nullptr || e->echo.kind == Echo::Kind::none) return true;
  std::array<Byte, 12> want{};
  stamp_field(*e, cookie, want.data());
  std::span<const Byte> got;
  if (e->echo.kind == Echo::Kind::snmp_request_id) {
    // The whole request-id: the fixed first byte and the 3 stamped ones.
    const std::array<Byte, 4> id = {kSnmp[kSnmpRequestId], want[0], want[1], want[2]};
    got = snmp_request_id(reply);
    return got.size() == id.size() && std::equal(id.begin(), id.end(), got.begin());
  }
  if (reply.size() < e->echo.reply_offset + std::size_t{e->echo.len}) return false;
  got = reply.subspan(e->echo.reply_offset, e->echo.len);
  return std::equal(got.begin(), got.end(), want.begin());
}

std::size_t udp_echo_reply(std::uint16_t port, std::span<const std::uint8_t> request,
                           std::span<std::uint8_t> out) {
  if (request.size() > out.size()) return 0;
  std::copy(request.begin(), request.end(), out.begin());
  const Entry* e = find(port);
  if (e != nullptr && e->echo.kind == Echo::Kind::fixed &&
      request.size() >= e->echo.offset + std::size_t{e->echo.len} &&
      request.size() >= e->echo.reply_offset + std::size_t{e->echo.len}) {
    std::copy_n(request.begin() + e->echo.offset, e->echo.len, out.begin() + e->echo.reply_offset);
  }
  return request.size();
}

unsigned udp_echo_bits(std::uint16_t port) {
  const Entry* e = find(port);
  if (e == nullptr || e->echo.kind == Echo::Kind::none) return 0;
  return 8u * (e->echo.len < 4 ? e->echo.len : 4u);
}

std::string_view udp_payload_protocol(std::uint16_t port) {
  const Entry* e = find(port);
  return e != nullptr ? e->protocol : std::string_view{};
}

}  // namespace portvigil::raw
