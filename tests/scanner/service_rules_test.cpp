// The pure identification rules: one case per protocol rule, and the hostile inputs.
#include <gtest/gtest.h>

#include <string>

#include "service_rules.hpp"

namespace portvigil::service {
namespace {

using namespace std::string_literals;

TEST(ServiceRules, SshIdentificationStringEvenAfterOtherLines) {
  auto g = classify_greeting("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", 22);
  EXPECT_EQ(g.protocol, "ssh");
  EXPECT_EQ(g.line, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3");
  // RFC 4253 4.2: the server may send other lines before the version line.
  g = classify_greeting("Welcome\r\nSSH-1.99-dropbear\r\n", 2222);
  EXPECT_EQ(g.protocol, "ssh");
  EXPECT_EQ(g.line, "SSH-1.99-dropbear");
}

TEST(ServiceRules, SmtpAndFtpGreetingsByTextThenByPort) {
  EXPECT_EQ(classify_greeting("220 mx.example ESMTP Postfix\r\n", 2525).protocol, "smtp");
  EXPECT_EQ(classify_greeting("220-mx.example SMTP ready\r\n220 more\r\n", 1).protocol, "smtp");
  EXPECT_EQ(classify_greeting("554 mx.example no service\r\n", 25).protocol, "smtp");
  EXPECT_EQ(classify_greeting("220 (vsFTPd 3.0.3)\r\n", 2121).protocol, "ftp");
  EXPECT_EQ(classify_greeting("220 Welcome\r\n", 21).protocol, "ftp");
  EXPECT_EQ(classify_greeting("220 Welcome\r\n", 25).protocol, "smtp");
  EXPECT_EQ(classify_greeting("220 Welcome\r\n", 8000).protocol, "");  // ambiguous
  EXPECT_EQ(classify_greeting("2200 not a reply code\r\n", 25).protocol, "");
}

TEST(ServiceRules, Pop3ImapAndHttp) {
  EXPECT_EQ(classify_greeting("+OK Dovecot ready.\r\n", 110).protocol, "pop3");
  EXPECT_EQ(classify_greeting("* OK [CAPABILITY IMAP4rev1] ready\r\n", 143).protocol, "imap");
  EXPECT_EQ(classify_greeting("* PREAUTH ready\r\n", 143).protocol, "imap");
  EXPECT_EQ(classify_greeting("HTTP/1.1 400 Bad Request\r\n\r\n", 80).protocol, "http");
  EXPECT_EQ(classify_greeting("hello\r\n", 80).protocol, "");
}

TEST(ServiceRules, MysqlHandshakeAndErrorPacket) {
  // Payload: protocol 10, "8.0.36\0", then thread id and more.
  const std::string payload = "\x0a"s + "8.0.36" + '\0' + "\x01\x02\x03\x04" + "salt";
  std::string packet(1, static_cast<char>(payload.size()));
  packet += "\0\0\0"s + payload;
  ASSERT_TRUE(greeting_complete(packet));
  auto g = classify_greeting(packet, 3306);
  EXPECT_EQ(g.protocol, "mysql");
  EXPECT_EQ(g.line, "MySQL 8.0.36");
  EXPECT_FALSE(greeting_complete(packet.substr(0, packet.size() - 1)));

  const std::string error = "\xff\x6a\x04Host '198.18.0.1' is not allowed to connect"s;
  std::string error_packet(1, static_cast<char>(error.size()));
  error_packet += "\0\0\0"s + error;
  g = classify_greeting(error_packet, 3306);
  EXPECT_EQ(g.protocol, "mysql");
  EXPECT_EQ(g.line, "MySQL error: Host '198.18.0.1' is not allowed to connect");
}

TEST(ServiceRules, HttpHeadStatusAndServer) {
  auto h = parse_http_head("HTTP/1.1 200 OK\r\nDate: x\r\nserver:  Jetty(9.4.z) \r\n\r\n");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(h->server, "Jetty(9.4.z)");
  h = parse_http_head("HTTP/1.0 404\r\n\r\nServer: body, not a header\r\n");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->status, 404);
  EXPECT_EQ(h->server, "");
  EXPECT_FALSE(parse_http_head("HTTP/1.1 2x0 OK\r\n\r\n").has_value());
  EXPECT_FALSE(parse_http_head("HTTP/1.1 2000 OK\r\n\r\n").has_value());
  EXPECT_FALSE(parse_http_head("HTTP/1.1").has_value());
  EXPECT_TRUE(reply_complete("HTTP/1.1 200 OK\r\n\r\n"));
  EXPECT_FALSE(reply_complete("HTTP/1.1 200 OK\r\n"));
  EXPECT_FALSE(reply_complete("HTT"));
  EXPECT_TRUE(reply_complete("SSH-2.0-x"));  // not HTTP: nothing more to wait for
}

TEST(ServiceRules, HostileBytesBecomeOneShortPrintableLine) {
  // Terminal escapes, NULs, a forged second line and 10 kB of text.
  const std::string hostile =
      "\x1b[2J"s + '\0' + "evil\r\nforged line\r\n" + std::string(10000, 'A');
  const auto g = classify_greeting(hostile, 25);
  EXPECT_EQ(g.protocol, "");
  EXPECT_EQ(g.line, ".[2J.evil");  // ESC and NUL shown as dots
  const std::string long_line(10000, 'B');
  EXPECT_EQ(first_line(long_line).size(), kMaxLine);
  EXPECT_EQ(sanitise("\xc3\xa9t\xc3\xa9"), "..t..");  // non-ASCII bytes are not kept
  EXPECT_EQ(sanitise("   "), "");
  // Lengths that lie: a MySQL header claiming more than was read, or nothing at all.
  EXPECT_EQ(classify_greeting("\xff\xff\xff\x00\x0a"s, 3306).protocol, "");
  EXPECT_EQ(classify_greeting("\x01\x00\x00\x00\x0a"s, 3306).protocol, "");
  EXPECT_EQ(classify_greeting("", 22).protocol, "");
  EXPECT_FALSE(greeting_complete(""));
}

TEST(ServiceRules, PostgresSslAnswer) {
  EXPECT_EQ(postgres_ssl_request(), "\x00\x00\x00\x08\x04\xd2\x16\x2f"s);
  EXPECT_TRUE(is_postgres_ssl_answer("N"));
  EXPECT_TRUE(is_postgres_ssl_answer("S"));
  EXPECT_FALSE(is_postgres_ssl_answer("NO"));
  EXPECT_FALSE(is_postgres_ssl_answer(""));
}

}  // namespace
}  // namespace portvigil::service
