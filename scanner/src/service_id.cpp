// Identification sessions: one state machine per port on one io_context, at most
// `concurrency` at a time. Every wait has a timer; the port's deadline closes the socket,
// which ends whatever operation is pending.
#include "portvigil/scanner/service_id.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "portvigil/common/digest.hpp"
#include "portvigil/common/version.hpp"
#include "service_rules.hpp"

namespace portvigil {
namespace {

using Clock = std::chrono::steady_clock;
using Tcp = asio::ip::tcp;

std::string name_cn(const X509_NAME* name) {
  if (name == nullptr) return {};
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string out = service::sanitise(
      {reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length)}, service::kMaxField);
  OPENSSL_free(utf8);
  return out;
}

// Clamped to what system_clock holds (nanoseconds: about the years 1678-2262): RFC 5280's
// "no expiry" date 9999-12-31 must read as far future, not wrap into the past.
std::chrono::system_clock::time_point asn1_time(const ASN1_TIME* t) {
  using namespace std::chrono;
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  const std::int64_t s = timegm(&tm);
  constexpr std::int64_t kLimit = duration_cast<seconds>(system_clock::duration::max()).count();
  if (s >= kLimit) return time_point_cast<system_clock::duration>(system_clock::time_point::max());
  if (s <= -kLimit) return system_clock::time_point::min();
  return system_clock::time_point(duration_cast<system_clock::duration>(seconds(s)));
}

// What the peer's certificate says; fields the certificate lacks stay empty.
TlsCertificate read_certificate(SSL* ssl) {
  TlsCertificate c;
  c.version = service::sanitise(SSL_get_version(ssl), 16);
  const std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl),
                                                         &X509_free);
  if (!cert) return c;
  c.subject_cn = name_cn(X509_get_subject_name(cert.get()));
  c.issuer_cn = name_cn(X509_get_issuer_name(cert.get()));
  c.not_before = asn1_time(X509_get0_notBefore(cert.get()));
  c.not_after = asn1_time(X509_get0_notAfter(cert.get()));
  c.self_signed = X509_self_signed(cert.get(), 0) == 1;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && c.sans.size() < TlsCertificate::kMaxSans;
         ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_DNS) {
        const ASN1_STRING* s = name->d.dNSName;
        c.sans.push_back(
            service::sanitise({reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                               static_cast<std::size_t>(std::max(0, ASN1_STRING_length(s)))},
                              service::kMaxField));
      } else if (name->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* s = name->d.iPAddress;
        const unsigned char* p = ASN1_STRING_get0_data(s);
        if (ASN1_STRING_length(s) == 4) {
          asio::ip::address_v4::bytes_type b;
          std::copy_n(p, 4, b.begin());
          c.sans.push_back(asio::ip::address_v4(b).to_string());
        } else if (ASN1_STRING_length(s) == 16) {
          asio::ip::address_v6::bytes_type b;
          std::copy_n(p, 16, b.begin());
          c.sans.push_back(asio::ip::address_v6(b).to_string());
        }
      }
    }
    GENERAL_NAMES_free(names);
  }
  const int der_length = i2d_X509(cert.get(), nullptr);
  if (der_length > 0) {
    std::string der(static_cast<std::size_t>(der_length), '\0');
    auto* out = reinterpret_cast<unsigned char*>(der.data());
    if (i2d_X509(cert.get(), &out) == der_length) c.sha256 = sha256_hex(der);
  }
  return c;
}

bool is_address(const std::string& host) {
  asio::error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

class Session {
 public:
  Session(asio::io_context& io, asio::ssl::context& tls, const ServiceTarget& target,
          const IdentifyOptions& options, ServiceIdentity& out, std::function<void()> on_done)
      : tls_context_(tls),
        target_(target),
        options_(options),
        out_(out),
        on_done_(std::move(on_done)),
        socket_(io),
        deadline_(io),
        phase_(io) {}

  // A stop: whatever is pending ends now, as if the time had run out.
  void abort() {
    if (finished_) return;
    expired_ = true;
    close();
  }

  void start() {
    if (std::binary_search(options_.never_probe.begin(), options_.never_probe.end(),
                           target_.port)) {
      return finish(ServiceOutcome::not_probed);
    }
    if (!options_.scope.contains(target_.address)) return finish(ServiceOutcome::out_of_scope);
    deadline_.expires_after(std::chrono::duration_cast<Clock::duration>(options_.port_limit));
    deadline_.async_wait([this](const asio::error_code& ec) {
      if (ec || finished_) return;
      expired_ = true;
      close();
    });
    connect([this] { read_greeting(); });
  }

 private:
  // A fresh plain connection, then `next`.
  void connect(std::function<void()> next) {
    tls_.reset();
    asio::error_code ignored;
    socket_.close(ignored);
    got_.clear();
    socket_.async_connect(Tcp::endpoint(target_.address, target_.port),
                          [this, next = std::move(next)](const asio::error_code& ec) {
                            if (finished_) return;
                            if (ec) return finish_unanswered(!connected_once_);
                            connected_once_ = true;
                            next();
                          });
  }

  // A time limit for one step. The generation drops an expiry that was already queued when
  // the next step began (asio cannot cancel those).
  void start_phase(Seconds limit) {
    phase_expired_ = false;
    const auto generation = ++phase_generation_;
    phase_.expires_after(std::chrono::duration_cast<Clock::duration>(limit));
    phase_.async_wait([this, generation](const asio::error_code& ec) {
      if (ec || finished_ || generation != phase_generation_) return;
      phase_expired_ = true;
      // Ends the pending read or handshake; a handshake that already finished is untouched.
      asio::error_code ignored;
      socket_.cancel(ignored);
    });
  }

  void end_phase() {
    ++phase_generation_;
    phase_.cancel();
  }

  template <class Handler>
  void read_some(Handler&& handler) {
    const auto room = asio::buffer(buffer_.data() + got_.size(), service::kMaxRead - got_.size());
    if (tls_) {
      tls_->async_read_some(room, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(room, std::forward<Handler>(handler));
    }
  }

  std::string_view received() const { return {buffer_.data(), got_.size()}; }

  // A greeting read far enough to be classified, and by a rule: lines that no rule knows may
  // precede an SSH version line (RFC 4253 4.2), so those wait for more until the phase ends.
  bool greeting_known() const {
    return service::greeting_complete(received()) &&
           !service::classify_greeting(received(), target_.port).protocol.empty();
  }

  // Ends with what `bytes` say: banner, hash and, when a rule knows them, the protocol
  // (identified), else unrecognised. A protocol read inside TLS replaces "tls" ("imap" for
  // IMAPS; the certificate is kept).
  void finish_with_bytes(std::string_view bytes) {
    out_.banner_sha256 = sha256_hex(bytes);
    const auto greeting = service::classify_greeting(bytes, target_.port);
    out_.banner = greeting.line;
    if (!greeting.protocol.empty()) out_.protocol = greeting.protocol;
    finish(out_.protocol.empty() ? ServiceOutcome::unrecognised : ServiceOutcome::identified);
  }

  void read_greeting() {
    start_phase(options_.banner_wait);
    read_greeting_more();
  }

  void read_greeting_more() {
    read_some([this](const asio::error_code& ec, std::size_t n) {
      if (finished_) return;
      got_.resize(got_.size() + n);
      if (!ec && got_.size() < service::kMaxRead && !phase_expired_ && !greeting_known()) {
        return read_greeting_more();
      }
      on_greeting();
    });
  }

  void on_greeting() {
    end_phase();
    if (!got_.empty()) {
      return finish_with_bytes(received());
    }
    if (expired_) return finish_unanswered(false);
    if (!phase_expired_) return finish(ServiceOutcome::silent);  // closed without a word
    start_tls();
  }

  void start_tls() {
    got_.clear();
    tls_.emplace(socket_, tls_context_);
    if (!target_.hostname.empty() && !is_address(target_.hostname)) {
      SSL_set_tlsext_host_name(tls_->native_handle(), target_.hostname.c_str());
    }
    start_phase(options_.tls_wait);
    tls_->async_handshake(asio::ssl::stream_base::client, [this](const asio::error_code& ec) {
      if (finished_) return;
      end_phase();
      if (!ec) {
        out_.tls = read_certificate(tls_->native_handle());
        out_.protocol = "tls";
        return send_head();
      }
      if (expired_) return finish_unanswered(false);
      connect([this] { send_head(); });
    });
  }

  void send_head() {
    tried_head_ = true;
    const std::string host = target_.hostname.empty() ? host_literal() : target_.hostname;
    request_ = "HEAD / HTTP/1.0\r\nHost: " + host + "\r\nUser-Agent: portvigil/" +
               std::string(kVersion) + "\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    const auto done = [this](const asio::error_code& ec, std::size_t) {
      if (finished_) return;
      if (ec) return finish_unanswered(false);
      read_reply();
    };
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(request_), done);
    } else {
      asio::async_write(socket_, asio::buffer(request_), done);
    }
  }

  std::string host_literal() const {
    if (target_.address.is_v6()) return "[" + target_.address.to_string() + "]";
    return target_.address.to_string();
  }

  void read_reply() {
    read_some([this](const asio::error_code& ec, std::size_t n) {
      if (finished_) return;
      got_.resize(got_.size() + n);
      if (!ec && got_.size() < service::kMaxRead && !service::reply_complete(received())) {
        return read_reply();
      }
      on_reply();
    });
  }

  void on_reply() {
    const auto bytes = received();
    if (auto head = service::parse_http_head(bytes)) {
      out_.http = std::move(head);
      out_.protocol = tls_ ? "https" : "http";
      return finish(ServiceOutcome::identified);
    }
    if (tls_) {
      // TLS, but not HTTP inside it: IMAPS, POP3S, SMTPS and FTPS greet after the handshake.
      if (!bytes.empty()) return finish_with_bytes(bytes);
      return finish(ServiceOutcome::identified);
    }
    if (!bytes.empty()) {
      return finish_with_bytes(bytes);
    }
    if (expired_) return finish_unanswered(false);
    connect([this] { send_postgres_probe(); });
  }

  void send_postgres_probe() {
    asio::async_write(socket_, asio::buffer(service::postgres_ssl_request()),
                      [this](const asio::error_code& ec, std::size_t) {
                        if (finished_) return;
                        if (ec) return finish_unanswered(false);
                        read_postgres_answer();
                      });
  }

  void read_postgres_answer() {
    read_some([this](const asio::error_code& ec, std::size_t n) {
      if (finished_) return;
      got_.resize(got_.size() + n);
      if (!ec && got_.empty()) return read_postgres_answer();
      if (service::is_postgres_ssl_answer(received())) {
        out_.protocol = "postgresql";
        return finish(ServiceOutcome::identified);
      }
      if (!got_.empty()) {
        return finish_with_bytes(received());
      }
      finish_unanswered(false);
    });
  }

  // Nothing identified when the port stopped answering, a connection failed or the time ran
  // out: what was learned (a TLS certificate) still counts.
  void finish_unanswered(bool never_connected) {
    if (out_.tls) return finish(ServiceOutcome::identified);
    if (never_connected) {
      return finish(expired_ ? ServiceOutcome::timed_out : ServiceOutcome::unreachable);
    }
    // Silent means: no greeting, no TLS and no reply to HEAD /. Time that ran out before
    // HEAD / was even sent is not that.
    finish(expired_ && !tried_head_ ? ServiceOutcome::timed_out : ServiceOutcome::silent);
  }

  void close() {
    asio::error_code ignored;
    socket_.close(ignored);
  }

  void finish(ServiceOutcome outcome) {
    if (finished_) return;
    finished_ = true;
    out_.outcome = outcome;
    if (outcome != ServiceOutcome::identified && outcome != ServiceOutcome::unrecognised) {
      out_.protocol.clear();
    }
    deadline_.cancel();
    phase_.cancel();
    // Called only from the completion of the stream's one pending operation (or before any),
    // so the TLS state (two 17 KiB buffers, the peer's chain) can go now rather than stay
    // until every port is done.
    tls_.reset();
    close();
    on_done_();
  }

  asio::ssl::context& tls_context_;
  const ServiceTarget& target_;
  const IdentifyOptions& options_;
  ServiceIdentity& out_;
  std::function<void()> on_done_;
  Tcp::socket socket_;
  std::optional<asio::ssl::stream<Tcp::socket&>> tls_;
  asio::steady_timer deadline_;
  asio::steady_timer phase_;
  std::array<char, service::kMaxRead> buffer_{};
  std::string got_;  // only its size is used: how much of buffer_ holds data
  std::string request_;
  bool finished_ = false;
  bool expired_ = false;
  bool phase_expired_ = false;
  std::uint64_t phase_generation_ = 0;
  bool connected_once_ = false;
  bool tried_head_ = false;
};

}  // namespace

std::vector<std::uint16_t> default_never_probe_ports() {
  return {515, 631, 9100, 9101, 9102, 9103, 9104, 9105, 9106, 9107};
}

std::vector<ServiceIdentity> identify_services(const std::vector<ServiceTarget>& targets,
                                               const IdentifyOptions& options) {
  std::vector<ServiceIdentity> results(targets.size());
  if (targets.empty()) return results;
  IdentifyOptions sorted = options;
  std::sort(sorted.never_probe.begin(), sorted.never_probe.end());
  asio::io_context io;
  asio::ssl::context tls(asio::ssl::context::tls_client);
  // Identification reads what a server presents; it does not trust it. Old protocol
  // versions and weak keys must still be read, so verification is off and the security
  // level is 0.
  tls.set_verify_mode(asio::ssl::verify_none);
  SSL_CTX_set_security_level(tls.native_handle(), 0);
  SSL_CTX_set_options(tls.native_handle(), SSL_OP_LEGACY_SERVER_CONNECT);
  std::vector<std::unique_ptr<Session>> sessions(targets.size());
  std::size_t next = 0;
  std::size_t unfinished = targets.size();
  const auto stopping = [&] {
    return options.stop != nullptr && options.stop->load(std::memory_order_relaxed);
  };
  // A stop is polled every 100 ms and ends the running sessions at once, so that Ctrl-C
  // does not wait out up to 2.9 s of handshakes.
  asio::steady_timer stop_poll(io);
  std::function<void()> watch_stop = [&] {
    stop_poll.expires_after(std::chrono::milliseconds(100));
    stop_poll.async_wait([&](const asio::error_code& ec) {
      // The last session may end while this expiry is already queued: cancel() cannot
      // recall it, and re-arming here would keep io.run() from ever returning.
      if (ec || unfinished == 0) return;
      if (!stopping()) return watch_stop();
      for (auto& s : sessions) {
        if (s) s->abort();
      }
    });
  };
  std::function<void()> start_next = [&] {
    if (next == targets.size()) return;
    if (stopping()) {
      // Stopped: what was not started was not probed (the caller reports the run as
      // interrupted).
      unfinished -= targets.size() - next;
      for (; next < targets.size(); ++next) results[next].outcome = ServiceOutcome::not_probed;
      if (unfinished == 0) stop_poll.cancel();
      return;
    }
    const std::size_t i = next++;
    sessions[i] = std::make_unique<Session>(io, tls, targets[i], sorted, results[i], [&] {
      if (--unfinished == 0) stop_poll.cancel();
      asio::post(io, [&] { start_next(); });
    });
    sessions[i]->start();
  };
  if (options.stop != nullptr) watch_stop();
  const std::size_t parallel = std::clamp<std::size_t>(options.concurrency, 1, 256);
  for (std::size_t i = 0; i < parallel && i < targets.size(); ++i) start_next();
  io.run();
  return results;
}

}  // namespace portvigil
