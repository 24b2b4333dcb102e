#include "portvigil/common/service.hpp"

#include "portvigil/common/digest.hpp"

#include <ctime>

namespace portvigil {
namespace {

std::string utc_date(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  if (gmtime_r(&seconds, &tm) == nullptr) return "?";
  char text[16];
  return std::strftime(text, sizeof text, "%Y-%m-%d", &tm) == 0 ? "?" : std::string(text);
}

}  // namespace

const char* to_string(ServiceOutcome o) {
  switch (o) {
    case ServiceOutcome::identified:
      return "identified";
    case ServiceOutcome::unrecognised:
      return "unrecognised";
    case ServiceOutcome::silent:
      return "silent";
    case ServiceOutcome::not_probed:
      return "not-probed";
    case ServiceOutcome::out_of_scope:
      return "out-of-scope";
    case ServiceOutcome::unreachable:
      return "unreachable";
    case ServiceOutcome::timed_out:
      return "timed-out";
  }
  return "?";
}

std::string summary(const ServiceIdentity& s) {
  const std::string details = service_details(s);
  if (s.outcome != ServiceOutcome::identified && s.outcome != ServiceOutcome::unrecognised) {
    return details;
  }
  const std::string protocol = s.protocol.empty() ? "unknown" : s.protocol;
  return details.empty() ? protocol : protocol + ": " + details;
}

std::string service_details(const ServiceIdentity& s) {
  switch (s.outcome) {
    case ServiceOutcome::not_probed:
      return "not probed (never-probe port)";
    case ServiceOutcome::out_of_scope:
      return "not probed (outside the authorized scope)";
    case ServiceOutcome::unreachable:
      return "no connection";
    case ServiceOutcome::timed_out:
      return "no answer in time";
    case ServiceOutcome::silent:
      return "silent";
    case ServiceOutcome::identified:
    case ServiceOutcome::unrecognised:
      break;
  }
  std::string details;
  const auto add = [&](const std::string& part) {
    if (part.empty()) return;
    details += details.empty() ? "" : ", ";
    details += part;
  };
  if (s.tls) {
    add(s.tls->version);
    if (!s.tls->subject_cn.empty()) add("CN " + s.tls->subject_cn);
    if (s.tls->self_signed) add("self-signed");
    add("expires " + utc_date(s.tls->not_after));
  }
  if (s.http) {
    std::string http = "HTTP " + std::to_string(s.http->status);
    if (!s.http->server.empty()) http += ", Server " + s.http->server;
    if (!details.empty()) details += "; ";
    details += http;
  }
  if (!s.tls && !s.http) add(s.banner);
  return details;
}

bool conclusive(const ServiceIdentity& s) {
  return s.outcome == ServiceOutcome::identified || s.outcome == ServiceOutcome::unrecognised ||
         s.outcome == ServiceOutcome::silent;
}

namespace {

// "https" is TLS with an HTTP answer: without the answer (time ran out) the read says "tls".
std::string_view base_protocol(const ServiceIdentity& s) {
  return s.protocol == "https" ? std::string_view("tls") : std::string_view(s.protocol);
}

}  // namespace

bool same_service(const ServiceIdentity& a, const ServiceIdentity& b) {
  const auto spoke = [](const ServiceIdentity& s) { return s.outcome != ServiceOutcome::silent; };
  if (spoke(a) != spoke(b) || base_protocol(a) != base_protocol(b)) return false;
  if (a.protocol == "ssh" && a.banner != b.banner) return false;
  if (a.tls.has_value() != b.tls.has_value()) return false;
  if (a.tls && a.tls->sha256 != b.tls->sha256) return false;
  return !a.http || !b.http || a.http->server == b.http->server;
}

std::string service_digest(const ServiceIdentity& s) {
  std::string key = std::string(to_string(s.outcome)) + '\n' + s.protocol + '\n' +
                    (s.protocol == "ssh" ? s.banner : std::string()) + '\n' +
                    (s.tls ? s.tls->sha256 : std::string()) + '\n' +
                    (s.http ? s.http->server : std::string());
  return sha256_hex(key).substr(0, 16);
}

}  // namespace portvigil
