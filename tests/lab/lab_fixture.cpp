#include "lab_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#ifndef PORTVIGIL_BINARY
#define PORTVIGIL_BINARY ""
#endif
#ifndef PORTVIGIL_LAB_SCRIPT
#define PORTVIGIL_LAB_SCRIPT ""
#endif
#ifndef PORTVIGIL_LAB_LISTENER
#define PORTVIGIL_LAB_LISTENER ""
#endif

namespace pvlab {

// ---------------------------------------------------------------------------------------------
// Commands
std::string CmdResult::describe() const {
  std::string s;
  if (timed_out)
    s = "timed out";
  else if (signal != 0)
    s = "killed by signal " + std::to_string(signal);
  else
    s = "exit " + std::to_string(exit_code);
  if (!err.empty()) s += "; stderr: " + err.substr(0, 2000);
  return s;
}

CmdResult run(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  CmdResult r;
  if (argv.empty()) return r;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return r;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // own process group, so a timeout kills the whole command
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execvp(args[0], args.data());
    static const char kMsg[] = "exec failed: ";  // no allocation after fork
    (void)!write(2, kMsg, sizeof kMsg - 1);
    (void)!write(2, args[0], std::strlen(args[0]));
    (void)!write(2, "\n", 1);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return r;
  }

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<std::chrono::steady_clock::time_point> exited_at;
  int status = 0;
  bool reaped = false;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto now = std::chrono::steady_clock::now();
    if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
      exited_at = now;
    }
    // A grandchild may keep a pipe open after the command exits: give it 2 s, then stop.
    if (exited_at && now - *exited_at > std::chrono::seconds(2)) break;
    if (now >= deadline) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    const int n = poll(fds, 2, 100);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      const ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  if (!reaped) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  if (r.timed_out) r.exit_code = -1;
  return r;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return false;
  const std::string s = v;
  return s == "1" || s == "yes" || s == "true" || s == "on";
}

namespace {
std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::string(fallback);
}

bool executable(const std::string& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0;
}
}  // namespace

std::string portvigil_binary() {
  return env_or("PORTVIGIL_BINARY", PORTVIGIL_BINARY);
}
std::string lab_script() {
  return env_or("PORTVIGIL_LAB_SCRIPT", PORTVIGIL_LAB_SCRIPT);
}
std::string lab_script_dir() {
  const std::string s = lab_script();
  return s.substr(0, s.find_last_of('/'));
}
std::string indent_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += "  " + l + "\n";
  return s;
}
bool have_tool(const std::string& tool) {
  return run({"sh", "-c", "command -v " + tool}).exit_code == 0;
}
std::string listener_binary() {
  return env_or("PORTVIGIL_LAB_LISTENER", PORTVIGIL_LAB_LISTENER);
}

// ---------------------------------------------------------------------------------------------
// Availability
std::optional<std::string> lab_unavailable_reason() {
  static const std::optional<std::string> reason = []() -> std::optional<std::string> {
    if (geteuid() != 0) return "the lab needs root (network namespaces, nftables)";
    if (!executable(lab_script())) return "lab script '" + lab_script() + "' is not executable";
    if (!executable(listener_binary()))
      return "lab listener '" + listener_binary() + "' is not built";
    const std::string probe = "pv-probe-" + std::to_string(getpid());
    const CmdResult add = run({"ip", "netns", "add", probe}, std::chrono::seconds(20));
    if (add.exit_code != 0) return "'ip netns add' does not work here: " + add.describe();
    const CmdResult del = run({"ip", "netns", "del", probe}, std::chrono::seconds(20));
    if (del.exit_code != 0) return "'ip netns del' does not work here: " + del.describe();
    for (const char* tool : {"nft", "python3"}) {
      if (run({"sh", "-c", std::string("command -v ") + tool}).exit_code != 0)
        return std::string("'") + tool + "' is not installed";
    }
    return std::nullopt;
  }();
  return reason;
}

std::optional<std::string> binary_unavailable_reason() {
  const std::string bin = portvigil_binary();
  if (bin.empty()) return std::string("the portvigil target is not part of this build");
  if (!executable(bin)) return "portvigil binary '" + bin + "' is not built";
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Lab
namespace {
std::string base36(unsigned long v) {
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s;
  do {
    s.insert(s.begin(), digits[v % 36]);
    v /= 36;
  } while (v != 0);
  return s;
}
std::atomic<unsigned> g_lab_counter{0};
}  // namespace

Lab::Lab(const LabConfig& config) {
  // "t" + pid + counter in base 36: at most 1 + 5 + 6 characters, unique per process.
  name_ = "t" + base36(static_cast<unsigned long>(getpid())) + base36(g_lab_counter++);
  char tmpl[] = "/tmp/pvlab-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error_ = std::string("mkdtemp: ") + std::strerror(errno);
    return;
  }
  dir_ = tmpl;
  std::vector<std::string> cmd = {lab_script(), "up", "--name",     name_,
                                  "--dir",      dir_, "--listener", listener_binary()};
  if (!config.preset.empty()) cmd.insert(cmd.end(), {"--preset", config.preset});
  const std::pair<const char*, const std::string*> lists[] = {
      {"--tcp-open", &config.tcp_open}, {"--udp-open", &config.udp_open},
      {"--tcp-drop", &config.tcp_drop}, {"--tcp-reject", &config.tcp_reject},
      {"--udp-drop", &config.udp_drop}, {"--udp-reject", &config.udp_reject}};
  for (const auto& [opt, value] : lists)
    if (!value->empty()) cmd.insert(cmd.end(), {opt, *value});
  if (config.keep_icmp_ratelimit) cmd.emplace_back("--keep-icmp-ratelimit");
  if (!config.extra_targets.empty()) {
    std::string list;
    for (const auto& a : config.extra_targets) list += (list.empty() ? "" : ",") + a;
    cmd.insert(cmd.end(), {"--extra-target", list});
  }
  const CmdResult r = run(cmd, std::chrono::seconds(120));
  if (r.exit_code != 0) {
    error_ = "lab.sh up: " + r.describe();
    return;
  }
  ok_ = true;
}

Lab::~Lab() {
  if (!name_.empty()) {
    const CmdResult r =
        run({lab_script(), "down", "--name", name_, "--dir", dir_}, std::chrono::seconds(60));
    if (r.exit_code != 0) ADD_FAILURE() << "lab.sh down --name " << name_ << ": " << r.describe();
  }
  if (dir_.empty()) return;
  if (env_flag("PORTVIGIL_LAB_KEEP")) {
    std::fprintf(stderr, "lab state kept in %s\n", dir_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

CmdResult Lab::exec(const std::vector<std::string>& cmd, std::chrono::seconds timeout) const {
  std::vector<std::string> full = {lab_script(), "exec", "--name", name_, "--"};
  full.insert(full.end(), cmd.begin(), cmd.end());
  return run(full, timeout);
}

const PortStates& Lab::truth() const {
  if (truth_.empty()) {
    std::istringstream in(read_file(path("truth.tsv")));
    std::string proto, state;
    int port = 0;
    while (in >> proto >> port >> state) truth_[{proto, port}] = state;
  }
  return truth_;
}

const PortStates& Lab::truth_detail() const {
  if (truth_detail_.empty()) {
    std::istringstream in(read_file(path("truth-detail.tsv")));
    std::string proto, kind;
    int port = 0;
    while (in >> proto >> port >> kind) truth_detail_[{proto, port}] = kind;
  }
  return truth_detail_;
}

// ---------------------------------------------------------------------------------------------
// JSON
const Json* Json::get(std::string_view key) const {
  if (type != Type::Object) return nullptr;
  for (std::size_t i = 0; i < object.keys.size(); ++i) {
    if (object.keys[i] == key) return &object.values[i];
  }
  return nullptr;
}

std::string Json::str(std::string_view key, const std::string& fallback) const {
  const Json* v = get(key);
  return (v != nullptr && v->type == Type::String) ? v->string : fallback;
}

namespace {
class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  std::optional<Json> document(std::string* error) {
    Json v;
    if (value(v, 0)) {
      skip_ws();
      if (pos_ == s_.size()) return v;
      fail("trailing characters");
    }
    if (error != nullptr) *error = error_ + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  std::string error_;

  bool fail(const std::string& what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return fail("bad literal");
    pos_ += word.size();
    return true;
  }

  bool value(Json& v, int depth) {
    if (depth > 64) return fail("nesting too deep");
    skip_ws();
    if (pos_ >= s_.size()) return fail("unexpected end");
    const char c = s_[pos_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v.type = Json::Type::String;
      return string(v.string);
    }
    if (c == 't') {
      v.type = Json::Type::Bool;
      v.boolean = true;
      return literal("true");
    }
    if (c == 'f') {
      v.type = Json::Type::Bool;
      return literal("false");
    }
    if (c == 'n') return literal("null");
    return number(v);
  }

  bool number(Json& v) {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && std::strchr("+-0123456789.eE", s_[pos_]) != nullptr) ++pos_;
    if (start == pos_) return fail("unexpected character");
    const std::string text(s_.substr(start, pos_ - start));
    char* end = nullptr;
    v.type = Json::Type::Number;
    v.number = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return fail("bad number");
    return true;
  }

  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool hex4(unsigned& cp) {
    if (pos_ + 4 > s_.size()) return fail("short \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9')
        cp |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f')
        cp |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        cp |= static_cast<unsigned>(h - 'A' + 10);
      else
        return fail("bad \\u escape");
    }
    return true;
  }

  bool string(std::string& out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            unsigned lo = 0;
            if (!hex4(lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }

  bool array(Json& v, int depth) {
    v.type = Json::Type::Array;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      Json item;
      if (!value(item, depth + 1)) return false;
      v.array.push_back(std::move(item));
      skip_ws();
      if (pos_ >= s_.size()) return fail("unterminated array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return fail("expected , or ]");
    }
  }

  bool object(Json& v, int depth) {
    v.type = Json::Type::Object;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a key");
      std::string key;
      if (!string(key)) return false;
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected :");
      ++pos_;
      Json item;
      if (!value(item, depth + 1)) return false;
      v.object.keys.push_back(std::move(key));
      v.object.values.push_back(std::move(item));
      skip_ws();
      if (pos_ >= s_.size()) return fail("unterminated object");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return fail("expected , or }");
    }
  }
};

bool same_address(const std::string& a, const std::string& b) {
  unsigned char x[16] = {};
  unsigned char y[16] = {};
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, a.c_str(), x) == 1 && inet_pton(family, b.c_str(), y) == 1)
      return std::memcmp(x, y, family == AF_INET ? 4 : 16) == 0;
  }
  return a == b;
}
}  // namespace

std::optional<Json> parse_json(std::string_view text, std::string* error) {
  return JsonParser(text).document(error);
}

// ---------------------------------------------------------------------------------------------
// Reports
std::string HostReport::state(const std::string& proto, int port) const {
  if (auto it = ports.find({proto, port}); it != ports.end()) return it->second;
  if (auto it = majority.find(proto); it != majority.end()) return it->second;
  return "";
}

const HostReport* ScanReport::host(const std::string& address) const {
  for (const auto& h : hosts)
    if (same_address(h.address, address)) return &h;
  return nullptr;
}

std::optional<ScanReport> parse_report(const std::string& json_text, std::string* error) {
  auto doc = parse_json(json_text, error);
  if (!doc) return std::nullopt;
  auto bad = [error](const std::string& what) -> std::optional<ScanReport> {
    if (error != nullptr) *error = what;
    return std::nullopt;
  };
  if (doc->type != Json::Type::Object) return bad("report is not a JSON object");
  ScanReport rep;
  if (const Json* v = doc->get("interrupted"); v != nullptr && v->type == Json::Type::Bool)
    rep.interrupted = v->boolean;
  rep.error = doc->str("error");
  const Json* hosts = doc->get("hosts");
  if (hosts == nullptr || hosts->type != Json::Type::Array) return bad("no \"hosts\" array");
  for (const Json& h : hosts->array) {
    HostReport hr;
    hr.address = h.str("address");
    hr.family = h.str("family");
    hr.note = h.str("note");
    if (const Json* c = h.get("complete"); c != nullptr && c->type == Json::Type::Bool)
      hr.complete = c->boolean;
    if (const Json* c = h.get("inconclusive"); c != nullptr && c->type == Json::Type::Bool)
      hr.inconclusive = c->boolean;
    if (const Json* m = h.get("majority"); m != nullptr && m->type == Json::Type::Object) {
      for (std::size_t i = 0; i < m->object.keys.size(); ++i) {
        hr.majority[m->object.keys[i]] = m->object.values[i].str("state");
      }
    }
    if (const Json* ps = h.get("ports"); ps != nullptr && ps->type == Json::Type::Array) {
      for (const Json& p : ps->array) {
        const Json* num = p.get("port");
        if (num == nullptr || num->type != Json::Type::Number)
          return bad("a port entry of " + hr.address + " has no numeric \"port\"");
        const PortKey key{p.str("proto"), static_cast<int>(num->number)};
        hr.ports[key] = p.str("state");
        hr.reasons[key] = p.str("reason");
      }
    }
    rep.hosts.push_back(std::move(hr));
  }
  return rep;
}

std::size_t compare_with_truth(const PortStates& truth, const HostReport& host,
                               const std::string& proto, std::vector<std::string>* lines,
                               const std::vector<int>* only, std::size_t show) {
  std::size_t bad = 0;
  auto check = [&](int port, const std::string& want) {
    const std::string got = host.state(proto, port);
    if (got == want || (proto == "udp" && want == "filtered" && got == "open|filtered")) return;
    if (lines != nullptr && bad < show)
      lines->push_back(proto + " " + std::to_string(port) + " truth=" + want +
                       " got=" + (got.empty() ? "(missing)" : got));
    ++bad;
  };
  if (only != nullptr) {
    for (int port : *only) {
      auto it = truth.find({proto, port});
      check(port, it == truth.end() ? "(no truth)" : it->second);
    }
  } else {
    for (const auto& [key, want] : truth)
      if (key.first == proto) check(key.second, want);
  }
  return bad;
}

Background::Background(const std::vector<std::string>& argv, std::string out_path,
                       std::string err_path)
    : out_path_(std::move(out_path)), err_path_(std::move(err_path)) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in >= 0) dup2(in, 0);
    if (out >= 0) dup2(out, 1);
    if (err >= 0) dup2(err, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
}

bool Background::signal(int sig) const {
  return pid_ > 0 && kill(pid_, sig) == 0;
}

std::optional<int> Background::wait_exit(std::chrono::milliseconds limit) {
  if (pid_ <= 0) return exit_status_;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int Background::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return exit_status_.value_or(-1);
  kill(pid_, SIGTERM);
  if (auto s = wait_exit(grace)) return *s;
  kill(pid_, SIGKILL);
  int status = -1;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  exit_status_ = status;
  return status;
}

ScanRun scan_in_lab(const Lab& lab, const std::vector<std::string>& args,
                    const std::string& json_path, std::chrono::seconds limit) {
  ScanRun r;
  std::vector<std::string> cmd = {portvigil_binary(), "scan"};
  cmd.insert(cmd.end(), args.begin(), args.end());
  cmd.insert(cmd.end(), {"-oJ", json_path});
  const auto t0 = std::chrono::steady_clock::now();
  r.cmd = lab.exec(cmd, limit);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string err;
  r.report = parse_report(read_file(json_path), &err);
  if (!r.report) ADD_FAILURE() << "cannot parse " << json_path << ": " << err;
  return r;
}

long count_packets(const std::string& pcap, const std::string& filter) {
  const CmdResult r = run({"tcpdump", "-r", pcap, "-n", filter}, std::chrono::seconds(120));
  if (r.exit_code != 0) {
    ADD_FAILURE() << "tcpdump -r " << pcap << " '" << filter << "': " << r.describe();
    return -1;
  }
  return static_cast<long>(split_lines(r.out).size());
}

}  // namespace pvlab
