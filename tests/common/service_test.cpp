// What watch-services compares between two reads of a port (common/service.hpp).
#include "portvigil/common/service.hpp"

#include <gtest/gtest.h>

namespace portvigil {
namespace {

ServiceIdentity https(const std::string& fingerprint, const std::string& server) {
  ServiceIdentity s;
  s.outcome = ServiceOutcome::identified;
  s.protocol = "https";
  TlsCertificate c;
  c.version = "TLSv1.3";
  c.sha256 = fingerprint;
  s.tls = c;
  s.http = HttpHead{200, "HTTP/1.1 200 OK", server};
  return s;
}

ServiceIdentity greeting(const std::string& protocol, const std::string& banner) {
  ServiceIdentity s;
  s.outcome = ServiceOutcome::identified;
  s.protocol = protocol;
  s.banner = banner;
  s.banner_sha256 = std::string(64, banner.empty() ? '0' : banner[0]);
  return s;
}

TEST(SameService, WhatCountsAsAChange) {
  EXPECT_TRUE(same_service(https("aa", "nginx"), https("aa", "nginx")));
  EXPECT_FALSE(same_service(https("aa", "nginx"), https("bb", "nginx"))) << "new certificate";
  EXPECT_FALSE(same_service(https("aa", "nginx"), https("aa", "Apache"))) << "new Server";
  auto plain = https("aa", "nginx");
  plain.tls.reset();
  plain.protocol = "http";
  EXPECT_FALSE(same_service(https("aa", "nginx"), plain)) << "TLS -> plain";
  // Time ran out before HEAD / was answered: the read says "tls", without http. No change.
  auto no_answer = https("aa", "");
  no_answer.protocol = "tls";
  no_answer.http.reset();
  EXPECT_TRUE(same_service(https("aa", "nginx"), no_answer));
  EXPECT_FALSE(same_service(https("bb", "nginx"), no_answer));
  EXPECT_NE(service_digest(https("aa", "nginx")), service_digest(https("bb", "nginx")));
  EXPECT_EQ(service_digest(https("aa", "nginx")).size(), 16u);
  EXPECT_FALSE(
      same_service(greeting("ssh", "SSH-2.0-OpenSSH_9.2"), greeting("ssh", "SSH-2.0-OpenSSH_9.3")))
      << "SSH version";
  // SMTP greetings carry the time of day: their text is not compared, the protocol is.
  EXPECT_TRUE(same_service(greeting("smtp", "220 mx ESMTP Tue, 1 Dec 2026 10:00:00"),
                           greeting("smtp", "220 mx ESMTP Tue, 1 Dec 2026 11:00:00")));
  EXPECT_FALSE(same_service(greeting("smtp", "220 mx"), greeting("ftp", "220 mx")));
  ServiceIdentity silent;
  silent.outcome = ServiceOutcome::silent;
  EXPECT_FALSE(same_service(silent, greeting("ssh", "SSH-2.0-x")));
  EXPECT_TRUE(same_service(silent, silent));
}

TEST(SameService, OnlyReadsThatTellAreConclusive) {
  for (const auto o :
       {ServiceOutcome::identified, ServiceOutcome::unrecognised, ServiceOutcome::silent}) {
    ServiceIdentity s;
    s.outcome = o;
    EXPECT_TRUE(conclusive(s)) << to_string(o);
  }
  for (const auto o : {ServiceOutcome::not_probed, ServiceOutcome::out_of_scope,
                       ServiceOutcome::unreachable, ServiceOutcome::timed_out}) {
    ServiceIdentity s;
    s.outcome = o;
    EXPECT_FALSE(conclusive(s)) << to_string(o);
  }
}

}  // namespace
}  // namespace portvigil
