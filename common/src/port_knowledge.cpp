// Where this data comes from, and why.
//
// Every table in this file was written by hand for portvigil. Nothing here is read from,
// copied from or derived from Nmap's data files (nmap-services, nmap-payloads,
// nmap-service-probes): those are under Nmap's own license, which would then bind this
// project. Instead:
//
//  * Service names follow the IANA "Service Name and Transport Protocol Port Number
//    Registry" style (lower-case keywords such as "ssh", "domain", "microsoft-ds"). For a
//    handful of ports whose IANA keyword tells an operator nothing useful about what is
//    almost always listening there today (e.g. 1521 Oracle, 6443 the Kubernetes API, 9200
//    Elasticsearch) we use a plain descriptive keyword instead. 8080, 8000 and 8008 are all
//    "http-alt" and 8443 is "https-alt".
//  * The ranking is the project's own judgement of which services are most commonly
//    exposed on servers, workstations, network gear and devices, grouped by purpose
//    (kCuratedTcp / kCuratedUdp below). After the curated head come every remaining port in
//    1..1024 in ascending order, then every remaining named (registered) port above 1024 in
//    ascending order. The tail is built at compile time, so lookups never allocate.

#include "portvigil/common/port_knowledge.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

namespace portvigil {
namespace {

struct NamedPort {
  Proto proto;
  std::uint16_t port;
  std::string_view name;
};

constexpr bool operator<(const NamedPort& a, const NamedPort& b) {
  return std::pair{a.proto, a.port} < std::pair{b.proto, b.port};
}

constexpr Proto T = Proto::tcp;
constexpr Proto U = Proto::udp;

// Sorted by (proto, port); enforced by a static_assert below.
constexpr auto kServiceNames = std::to_array<NamedPort>({
    // ---------------------------------------------------------------- TCP, 1..1024
    {T, 1, "tcpmux"},
    {T, 2, "compressnet"},
    {T, 3, "compressnet"},
    {T, 5, "rje"},
    {T, 7, "echo"},
    {T, 9, "discard"},
    {T, 11, "systat"},
    {T, 13, "daytime"},
    {T, 17, "qotd"},
    {T, 18, "msp"},
    {T, 19, "chargen"},
    {T, 20, "ftp-data"},
    {T, 21, "ftp"},
    {T, 22, "ssh"},
    {T, 23, "telnet"},
    {T, 25, "smtp"},
    {T, 37, "time"},
    {T, 42, "nameserver"},
    {T, 43, "whois"},
    {T, 49, "tacacs"},
    {T, 53, "domain"},
    {T, 66, "sql-net"},
    {T, 67, "dhcps"},
    {T, 68, "dhcpc"},
    {T, 69, "tftp"},
    {T, 70, "gopher"},
    {T, 79, "finger"},
    {T, 80, "http"},
    {T, 81, "hosts2-ns"},
    {T, 88, "kerberos"},
    {T, 95, "supdup"},
    {T, 101, "hostname"},
    {T, 102, "iso-tsap"},
    {T, 104, "acr-nema"},
    {T, 107, "rtelnet"},
    {T, 109, "pop2"},
    {T, 110, "pop3"},
    {T, 111, "sunrpc"},
    {T, 113, "ident"},
    {T, 115, "sftp"},
    {T, 117, "uucp-path"},
    {T, 118, "sqlserv"},
    {T, 119, "nntp"},
    {T, 123, "ntp"},
    {T, 130, "cisco-fna"},
    {T, 131, "cisco-tna"},
    {T, 132, "cisco-sys"},
    {T, 134, "ingres-net"},
    {T, 135, "msrpc"},
    {T, 137, "netbios-ns"},
    {T, 138, "netbios-dgm"},
    {T, 139, "netbios-ssn"},
    {T, 143, "imap"},
    {T, 150, "sql-net"},
    {T, 153, "sgmp"},
    {T, 161, "snmp"},
    {T, 162, "snmptrap"},
    {T, 170, "print-srv"},
    {T, 174, "mailq"},
    {T, 177, "xdmcp"},
    {T, 179, "bgp"},
    {T, 191, "prospero"},
    {T, 194, "irc"},
    {T, 199, "smux"},
    {T, 200, "src"},
    {T, 201, "at-rtmp"},
    {T, 202, "at-nbp"},
    {T, 204, "at-echo"},
    {T, 206, "at-zis"},
    {T, 209, "qmtp"},
    {T, 210, "z39-50"},
    {T, 213, "ipx"},
    {T, 220, "imap3"},
    {T, 264, "bgmp"},
    {T, 280, "http-mgmt"},
    {T, 311, "asip-webadmin"},
    {T, 318, "pkix-timestamp"},
    {T, 323, "rpki-rtr"},
    {T, 363, "rsvp-tunnel"},
    {T, 366, "odmr"},
    {T, 369, "rpc2portmap"},
    {T, 370, "codaauth2"},
    {T, 371, "clearcase"},
    {T, 372, "ulistproc"},
    {T, 383, "hp-alarm-mgr"},
    {T, 384, "arns"},
    {T, 387, "aurp"},
    {T, 389, "ldap"},
    {T, 396, "netware-ip"},
    {T, 399, "iso-tsap-c2"},
    {T, 401, "ups"},
    {T, 406, "imsp"},
    {T, 407, "timbuktu"},
    {T, 411, "rmt"},
    {T, 413, "smsp"},
    {T, 414, "infoseek"},
    {T, 415, "bnet"},
    {T, 418, "hyper-g"},
    {T, 420, "smpte"},
    {T, 427, "svrloc"},
    {T, 434, "mobileip-agent"},
    {T, 435, "mobilip-mn"},
    {T, 443, "https"},
    {T, 444, "snpp"},
    {T, 445, "microsoft-ds"},
    {T, 446, "ddm-rdb"},
    {T, 447, "ddm-dfm"},
    {T, 448, "ddm-ssl"},
    {T, 458, "appleqtc"},
    {T, 464, "kpasswd"},
    {T, 465, "smtps"},
    {T, 481, "ph"},
    {T, 497, "retrospect"},
    {T, 500, "isakmp"},
    {T, 502, "modbus"},
    {T, 504, "citadel"},
    {T, 510, "fcp"},
    {T, 512, "exec"},
    {T, 513, "login"},
    {T, 514, "shell"},
    {T, 515, "printer"},
    {T, 524, "ncp"},
    {T, 525, "timed"},
    {T, 526, "tempo"},
    {T, 530, "courier"},
    {T, 531, "conference"},
    {T, 532, "netnews"},
    {T, 533, "netwall"},
    {T, 540, "uucp"},
    {T, 543, "klogin"},
    {T, 544, "kshell"},
    {T, 545, "appleqtcsrvr"},
    {T, 546, "dhcpv6-client"},
    {T, 547, "dhcpv6-server"},
    {T, 548, "afpovertcp"},
    {T, 550, "new-rwho"},
    {T, 554, "rtsp"},
    {T, 556, "remotefs"},
    {T, 560, "rmonitor"},
    {T, 561, "monitor"},
    {T, 563, "nntps"},
    {T, 587, "submission"},
    {T, 591, "http-alt"},
    {T, 593, "http-rpc-epmap"},
    {T, 601, "syslog-conn"},
    {T, 604, "tunnel"},
    {T, 623, "asf-rmcp"},
    {T, 631, "ipp"},
    {T, 636, "ldaps"},
    {T, 639, "msdp"},
    {T, 646, "ldp"},
    {T, 647, "dhcp-failover"},
    {T, 648, "rrp"},
    {T, 654, "aodv"},
    {T, 660, "mac-srvr-admin"},
    {T, 666, "doom"},
    {T, 674, "acap"},
    {T, 688, "realm-rusd"},
    {T, 691, "msexch-routing"},
    {T, 694, "ha-cluster"},
    {T, 695, "ieee-mms-ssl"},
    {T, 700, "epp"},
    {T, 702, "iris-beep"},
    {T, 706, "silc"},
    {T, 711, "cisco-tdp"},
    {T, 749, "kerberos-adm"},
    {T, 765, "webster"},
    {T, 767, "phonebook"},
    {T, 777, "multiling-http"},
    {T, 800, "mdbs-daemon"},
    {T, 801, "device"},
    {T, 802, "mbap-s"},
    {T, 830, "netconf-ssh"},
    {T, 831, "netconf-beep"},
    {T, 832, "netconfsoaphttp"},
    {T, 833, "netconfsoapbeep"},
    {T, 847, "dhcp-failover2"},
    {T, 853, "domain-s"},
    {T, 860, "iscsi"},
    {T, 873, "rsync"},
    {T, 886, "iclcnet-locate"},
    {T, 887, "iclcnet-svinfo"},
    {T, 888, "accessbuilder"},
    {T, 898, "sun-manageconsole"},
    {T, 900, "omginitialrefs"},
    {T, 902, "ideafarm-door"},
    {T, 903, "ideafarm-panic"},
    {T, 910, "kink"},
    {T, 911, "xact-backup"},
    {T, 989, "ftps-data"},
    {T, 990, "ftps"},
    {T, 991, "nas"},
    {T, 992, "telnets"},
    {T, 993, "imaps"},
    {T, 995, "pop3s"},
    {T, 996, "vsinet"},
    {T, 997, "maitrd"},
    {T, 998, "busboy"},
    {T, 999, "garcon"},
    {T, 1000, "cadlock2"},
    {T, 1010, "surf"},
    {T, 1021, "exp1"},
    {T, 1022, "exp2"},
    // ---------------------------------------------------------------- TCP, above 1024
    {T, 1025, "blackjack"},
    {T, 1026, "cap"},
    {T, 1080, "socks"},
    {T, 1098, "rmiactivation"},
    {T, 1099, "rmiregistry"},
    {T, 1167, "cisco-ipsla"},
    {T, 1194, "openvpn"},
    {T, 1214, "kazaa"},
    {T, 1241, "nessus"},
    {T, 1270, "opsmgr"},
    {T, 1311, "rxmon"},
    {T, 1352, "lotusnote"},
    {T, 1414, "ibm-mqseries"},
    {T, 1433, "ms-sql-s"},
    {T, 1434, "ms-sql-m"},
    {T, 1494, "ica"},
    {T, 1512, "wins"},
    {T, 1521, "oracle"},
    {T, 1524, "ingreslock"},
    {T, 1701, "l2tp"},
    {T, 1718, "h323gatedisc"},
    {T, 1719, "h323gatestat"},
    {T, 1720, "h323hostcall"},
    {T, 1723, "pptp"},
    {T, 1755, "ms-streaming"},
    {T, 1801, "msmq"},
    {T, 1812, "radius"},
    {T, 1813, "radius-acct"},
    {T, 1863, "msnp"},
    {T, 1883, "mqtt"},
    {T, 1900, "ssdp"},
    {T, 1935, "rtmp"},
    {T, 2000, "cisco-sccp"},
    {T, 2049, "nfs"},
    {T, 2082, "infowave"},
    {T, 2083, "radsec"},
    {T, 2100, "amiganetfs"},
    {T, 2181, "zookeeper"},
    {T, 2222, "ethernet-ip-1"},
    {T, 2323, "3d-nfsd"},
    {T, 2375, "docker"},
    {T, 2376, "docker-s"},
    {T, 2377, "swarm"},
    {T, 2379, "etcd-client"},
    {T, 2380, "etcd-server"},
    {T, 2401, "cvspserver"},
    {T, 2404, "iec-104"},
    {T, 2483, "ttc"},
    {T, 2484, "ttc-ssl"},
    {T, 2601, "zebra"},
    {T, 2602, "ripd"},
    {T, 2604, "ospfd"},
    {T, 2605, "bgpd"},
    {T, 2947, "gpsd"},
    {T, 3050, "gds-db"},
    {T, 3128, "squid-http"},
    {T, 3260, "iscsi-target"},
    {T, 3268, "msft-gc"},
    {T, 3269, "msft-gc-ssl"},
    {T, 3283, "net-assistant"},
    {T, 3306, "mysql"},
    {T, 3343, "ms-cluster-net"},
    {T, 3389, "ms-wbt-server"},
    {T, 3478, "stun"},
    {T, 3493, "nut"},
    {T, 3632, "distcc"},
    {T, 3689, "daap"},
    {T, 3690, "svn"},
    {T, 3702, "ws-discovery"},
    {T, 3799, "radius-dynauth"},
    {T, 4190, "sieve"},
    {T, 4369, "epmd"},
    {T, 4444, "krb524"},
    {T, 4500, "ipsec-nat-t"},
    {T, 4730, "gearman"},
    {T, 4786, "smart-install"},
    {T, 4840, "opcua-tcp"},
    {T, 4848, "appserv-http"},
    {T, 4899, "radmin-port"},
    {T, 5000, "commplex-main"},
    {T, 5001, "commplex-link"},
    {T, 5004, "avt-profile-1"},
    {T, 5005, "avt-profile-2"},
    {T, 5060, "sip"},
    {T, 5061, "sip-tls"},
    {T, 5190, "aol"},
    {T, 5222, "xmpp-client"},
    {T, 5269, "xmpp-server"},
    {T, 5280, "xmpp-bosh"},
    {T, 5351, "nat-pmp"},
    {T, 5353, "mdns"},
    {T, 5355, "llmnr"},
    {T, 5357, "wsdapi"},
    {T, 5432, "postgresql"},
    {T, 5555, "personal-agent"},
    {T, 5601, "kibana"},
    {T, 5631, "pcanywheredata"},
    {T, 5632, "pcanywherestat"},
    {T, 5666, "nrpe"},
    {T, 5671, "amqps"},
    {T, 5672, "amqp"},
    {T, 5683, "coap"},
    {T, 5684, "coaps"},
    {T, 5722, "dfsr"},
    {T, 5800, "vnc-http"},
    {T, 5900, "vnc"},
    {T, 5901, "vnc-1"},
    {T, 5984, "couchdb"},
    {T, 5985, "wsman"},
    {T, 5986, "wsmans"},
    {T, 6000, "x11"},
    {T, 6001, "x11-1"},
    {T, 6379, "redis"},
    {T, 6443, "kube-apiserver"},
    {T, 6514, "syslog-tls"},
    {T, 6566, "sane-port"},
    {T, 6653, "openflow"},
    {T, 6667, "irc"},
    {T, 6697, "ircs-u"},
    {T, 7000, "afs3-fileserver"},
    {T, 7001, "afs3-callback"},
    {T, 7002, "afs3-prserver"},
    {T, 7070, "arcp"},
    {T, 7474, "neo4j"},
    {T, 7547, "cwmp"},
    {T, 7777, "cbt"},
    {T, 8000, "http-alt"},
    {T, 8008, "http-alt"},
    {T, 8009, "ajp13"},
    {T, 8080, "http-alt"},
    {T, 8081, "sunproxyadmin"},
    {T, 8086, "d-s-n"},
    {T, 8088, "radan-http"},
    {T, 8118, "privoxy"},
    {T, 8140, "puppet"},
    {T, 8200, "trivnet1"},
    {T, 8333, "bitcoin"},
    {T, 8443, "https-alt"},
    {T, 8500, "fmtp"},
    {T, 8883, "secure-mqtt"},
    {T, 8888, "ddi-tcp-1"},
    {T, 9000, "cslistener"},
    {T, 9001, "etlservicemgr"},
    {T, 9090, "websm"},
    {T, 9091, "xmltec-xmlmail"},
    {T, 9092, "kafka"},
    {T, 9100, "jetdirect"},
    {T, 9101, "bacula-dir"},
    {T, 9102, "bacula-fd"},
    {T, 9103, "bacula-sd"},
    {T, 9200, "elasticsearch"},
    {T, 9418, "git"},
    {T, 9443, "tungsten-https"},
    {T, 9999, "distinct"},
    {T, 10000, "ndmp"},
    {T, 10050, "zabbix-agent"},
    {T, 10051, "zabbix-trapper"},
    {T, 10250, "kubelet"},
    {T, 11211, "memcached"},
    {T, 11371, "pksd"},
    {T, 20000, "dnp"},
    {T, 27017, "mongodb"},
    {T, 44818, "ethernet-ip-2"},
    {T, 47808, "bacnet"},
    // ---------------------------------------------------------------- UDP
    {U, 1, "tcpmux"},
    {U, 2, "compressnet"},
    {U, 3, "compressnet"},
    {U, 5, "rje"},
    {U, 7, "echo"},
    {U, 9, "discard"},
    {U, 11, "systat"},
    {U, 13, "daytime"},
    {U, 17, "qotd"},
    {U, 18, "msp"},
    {U, 19, "chargen"},
    {U, 20, "ftp-data"},
    {U, 21, "ftp"},
    {U, 22, "ssh"},
    {U, 23, "telnet"},
    {U, 25, "smtp"},
    {U, 37, "time"},
    {U, 42, "nameserver"},
    {U, 43, "whois"},
    {U, 49, "tacacs"},
    {U, 53, "domain"},
    {U, 67, "dhcps"},
    {U, 68, "dhcpc"},
    {U, 69, "tftp"},
    {U, 70, "gopher"},
    {U, 79, "finger"},
    {U, 80, "http"},
    {U, 88, "kerberos"},
    {U, 101, "hostname"},
    {U, 102, "iso-tsap"},
    {U, 110, "pop3"},
    {U, 111, "sunrpc"},
    {U, 113, "ident"},
    {U, 119, "nntp"},
    {U, 123, "ntp"},
    {U, 135, "msrpc"},
    {U, 137, "netbios-ns"},
    {U, 138, "netbios-dgm"},
    {U, 139, "netbios-ssn"},
    {U, 143, "imap"},
    {U, 161, "snmp"},
    {U, 162, "snmptrap"},
    {U, 177, "xdmcp"},
    {U, 179, "bgp"},
    {U, 194, "irc"},
    {U, 199, "smux"},
    {U, 213, "ipx"},
    {U, 319, "ptp-event"},
    {U, 320, "ptp-general"},
    {U, 389, "ldap"},
    {U, 401, "ups"},
    {U, 427, "svrloc"},
    {U, 434, "mobileip-agent"},
    {U, 443, "https"},
    {U, 445, "microsoft-ds"},
    {U, 464, "kpasswd"},
    {U, 497, "retrospect"},
    {U, 500, "isakmp"},
    {U, 512, "biff"},
    {U, 513, "who"},
    {U, 514, "syslog"},
    {U, 517, "talk"},
    {U, 518, "ntalk"},
    {U, 520, "router"},
    {U, 521, "ripng"},
    {U, 525, "timed"},
    {U, 546, "dhcpv6-client"},
    {U, 547, "dhcpv6-server"},
    {U, 554, "rtsp"},
    {U, 623, "asf-rmcp"},
    {U, 631, "ipp"},
    {U, 636, "ldaps"},
    {U, 646, "ldp"},
    {U, 647, "dhcp-failover"},
    {U, 749, "kerberos-adm"},
    {U, 750, "kerberos-iv"},
    {U, 853, "domain-s"},
    {U, 1080, "socks"},
    {U, 1194, "openvpn"},
    {U, 1433, "ms-sql-s"},
    {U, 1434, "ms-sql-m"},
    {U, 1604, "icabrowser"},
    {U, 1701, "l2tp"},
    {U, 1718, "h323gatedisc"},
    {U, 1719, "h323gatestat"},
    {U, 1812, "radius"},
    {U, 1813, "radius-acct"},
    {U, 1900, "ssdp"},
    {U, 1985, "hsrp"},
    {U, 2049, "nfs"},
    {U, 2123, "gtp-control"},
    {U, 2152, "gtp-user"},
    {U, 2222, "ethernet-ip-1"},
    {U, 2427, "mgcp-gateway"},
    {U, 2727, "mgcp-callagent"},
    {U, 3283, "net-assistant"},
    {U, 3306, "mysql"},
    {U, 3389, "ms-wbt-server"},
    {U, 3478, "stun"},
    {U, 3702, "ws-discovery"},
    {U, 3784, "bfd-control"},
    {U, 3785, "bfd-echo"},
    {U, 4500, "ipsec-nat-t"},
    {U, 4739, "ipfix"},
    {U, 4789, "vxlan"},
    {U, 5004, "avt-profile-1"},
    {U, 5005, "avt-profile-2"},
    {U, 5060, "sip"},
    {U, 5061, "sip-tls"},
    {U, 5351, "nat-pmp"},
    {U, 5353, "mdns"},
    {U, 5355, "llmnr"},
    {U, 5432, "postgresql"},
    {U, 5632, "pcanywherestat"},
    {U, 5683, "coap"},
    {U, 5684, "coaps"},
    {U, 6081, "geneve"},
    {U, 6343, "sflow"},
    {U, 10000, "ndmp"},
    {U, 11211, "memcached"},
    {U, 20000, "dnp"},
    {U, 33434, "traceroute"},
    {U, 44818, "ethernet-ip-2"},
    {U, 47808, "bacnet"},
});

static_assert(std::adjacent_find(kServiceNames.begin(), kServiceNames.end(),
                                 [](const NamedPort& a, const NamedPort& b) { return !(a < b); }) ==
                  kServiceNames.end(),
              "kServiceNames must be strictly sorted by (proto, port)");
static_assert(std::none_of(kServiceNames.begin(), kServiceNames.end(),
                           [](const NamedPort& e) { return e.port == 0 || e.name.empty(); }),
              "kServiceNames holds no port 0 and no empty name");

// The project's own ranking head, most commonly exposed first. Tier 1 is what turns up on
// nearly every scan; tier 2 takes the leading port of each kind of service so that -F (the
// first 100) sees a cross-section; tier 3 holds the rest of each group.
// clang-format off
constexpr auto kCuratedTcp = std::to_array<std::uint16_t>({
    // Tier 1: open on most internet-facing servers and office networks.
    80, 443, 22, 21, 25, 3389, 445, 139, 135, 53, 23, 8080, 110, 143, 993, 995, 587, 465, 3306,
    8443,
    // Tier 2, web on other ports: app servers, admin panels, dev servers, proxies.
    8000, 8888, 8008, 8081, 81, 3000, 5000, 9443, 4443, 8001, 8088, 9000, 3128,
    // Tier 2, remote administration and desktop sharing.
    5900, 5985, 5986, 2222, 10000, 5901,
    // Tier 2, directory, naming and authentication.
    389, 636, 88, 464, 3268,
    // Tier 2, file sharing and transfer.
    2049, 111, 873, 548, 990,
    // Tier 2, databases, caches and search engines.
    1433, 5432, 1521, 27017, 6379, 11211, 9200, 5984,
    // Tier 2, message brokers and chat.
    5672, 1883, 8883, 9092, 5222, 6667,
    // Tier 2, containers, orchestration and service discovery.
    2375, 2376, 6443, 10250, 2379, 8500,
    // Tier 2, monitoring, metrics and logging.
    9100, 9090, 10050, 161, 514, 199,
    // Tier 2, printing, VPN and proxies, voice and media.
    631, 515, 1723, 1194, 1080, 5060, 554, 1720,
    // Tier 2, Windows RPC endpoints and discovery.
    49152, 1025, 5357, 593,
    // Tier 2, IoT, CPE and industrial control.
    502, 7547, 1900, 102,
    // Tier 2, routing, legacy Unix and Cisco telephony.
    79, 113, 179, 2000,
    // Tier 3, web and application servers.
    7001, 7443, 591, 8089, 8181, 8090, 5601, 10443, 8009, 7002, 9080, 8880, 8800, 8118, 4848,
    // Tier 3, remote administration.
    5800, 4899, 5938, 5631,
    // Tier 3, directory and authentication.
    3269, 49, 749,
    // Tier 3, file transfer and storage.
    989, 20, 3260, 2121,
    // Tier 3, databases.
    9300, 9042, 7474, 8086, 50000, 1434, 3050, 26257,
    // Tier 3, messaging and coordination.
    5671, 4222, 61616, 5269, 2181, 15672,
    // Tier 3, containers and secrets.
    2377, 2380, 8200,
    // Tier 3, monitoring, alerting and logging.
    9093, 9091, 3100, 10051, 5666, 2003, 6514, 601,
    // Tier 3, Windows and Java middleware.
    49153, 49154, 1099,
    // Tier 3, IoT, routers and industrial control.
    44818, 20000, 8291, 8728, 37777, 4840,
    // Tier 3, media.
    5061, 1935,
    // Tier 3, legacy Unix, version control and X11.
    119, 512, 513, 9418, 3690, 6000,
});
// clang-format on

// clang-format off
constexpr auto kCuratedUdp = std::to_array<std::uint16_t>({
    // Name resolution, time, address assignment and management.
    53, 123, 161, 137, 67, 68, 500, 1900, 5353, 69,
    // Windows and LAN neighbourhood.
    138, 135, 139, 445, 5355, 3702, 1434,
    // DHCPv6.
    546, 547,
    // VPN and overlay tunnels.
    4500, 1194, 51820, 1701, 4789, 6081,
    // Directory and authentication.
    88, 464, 389, 1812, 1813, 1645, 1646, 49,
    // Logging, traps, out-of-band management and flow export.
    514, 162, 623, 2055, 6343, 4739, 9995, 8125,
    // NFS and RPC.
    111, 2049,
    // Voice, media and NAT traversal.
    5060, 5061, 3478, 5004, 5005, 1719, 2427, 2727,
    // QUIC and web.
    443, 80,
    // Caches.
    11211,
    // Home and device discovery.
    427, 5351, 10001, 177, 631, 1604, 3283,
    // IoT and industrial control.
    47808, 5683, 5684, 20000, 2222, 44818,
    // Routing and redundancy.
    520, 521, 3784, 1985,
    // Classic diagnostic services.
    7, 9, 13, 17, 19, 37, 517, 518, 513,
    // Remote access.
    3389, 5632,
    // Games, voice chat and mobile core.
    27015, 9987, 2123, 2152,
    // Traceroute's first probe port.
    33434,
});
// clang-format on

constexpr std::uint32_t kLowPortEnd = 1024;  // the ascending filler covers 1..1024

// Head, then 1..1024, then named ports above 1024, each port once. With `out` null only
// counts; a duplicate or zero in the curated head makes constant evaluation fail.
template <std::size_t N>
consteval std::size_t fill_ranked(const std::array<std::uint16_t, N>& curated, Proto proto,
                                  std::uint16_t* out) {
  std::array<bool, 65536> seen{};
  std::size_t n = 0;
  auto add = [&](std::uint16_t port) {
    if (out != nullptr) out[n] = port;
    ++n;
    seen[port] = true;
  };
  for (const std::uint16_t port : curated) {
    if (port == 0 || seen[port]) throw "curated ranking holds 0 or a duplicate";
    add(port);
  }
  for (std::uint32_t p = 1; p <= kLowPortEnd; ++p) {
    if (!seen[p]) add(static_cast<std::uint16_t>(p));
  }
  for (const NamedPort& e : kServiceNames) {
    if (e.proto == proto && e.port > kLowPortEnd && !seen[e.port]) add(e.port);
  }
  return n;
}

template <std::size_t Size, std::size_t N>
consteval std::array<std::uint16_t, Size> build_ranked(const std::array<std::uint16_t, N>& curated,
                                                       Proto proto) {
  std::array<std::uint16_t, Size> out{};
  fill_ranked(curated, proto, out.data());
  return out;
}

constexpr auto kRankedTcp =
    build_ranked<fill_ranked(kCuratedTcp, Proto::tcp, nullptr)>(kCuratedTcp, Proto::tcp);
constexpr auto kRankedUdp =
    build_ranked<fill_ranked(kCuratedUdp, Proto::udp, nullptr)>(kCuratedUdp, Proto::udp);

static_assert(kRankedTcp.size() >= 1000 && kRankedUdp.size() >= 1000,
              "--top-ports 1000 needs at least 1000 ranked ports per protocol");

}  // namespace

std::string_view service_name(Proto proto, std::uint16_t port) {
  const NamedPort key{proto, port, {}};
  const auto it = std::lower_bound(kServiceNames.begin(), kServiceNames.end(), key);
  if (it != kServiceNames.end() && it->proto == proto && it->port == port) return it->name;
  return {};
}

std::span<const std::uint16_t> ranked_ports(Proto proto) {
  if (proto == Proto::udp) return kRankedUdp;
  return kRankedTcp;
}

}  // namespace portvigil
