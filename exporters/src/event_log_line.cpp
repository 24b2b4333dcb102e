#include "portvigil/exporters/event_log_line.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace portvigil {
namespace {

enum class Kind : std::uint8_t { string, integer, number, boolean, null, array, object };

// A strict JSON reader over one line: every step checks the bounds and fails (returns
// false) on anything RFC 8259 does not allow. Values other than the top-level object's
// members are only checked, not kept.
class Reader {
 public:
  explicit Reader(std::string_view text) : s_(text) {}

  [[nodiscard]] bool at_end() {
    skip_ws();
    return i_ == s_.size();
  }
  bool consume(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  // A string; `raw` is its text between the quotes, escapes not decoded.
  bool string(std::string_view& raw) {
    skip_ws();
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    const auto start = ++i_;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        raw = s_.substr(start, i_ - start);
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= s_.size()) return false;
        const char e = s_[i_];
        if (e == 'u') {
          if (s_.size() - i_ < 5) return false;
          for (std::size_t k = 1; k <= 4; ++k) {
            if (!std::isxdigit(static_cast<unsigned char>(s_[i_ + k]))) return false;
          }
          i_ += 4;
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
      }
      ++i_;
    }
    return false;
  }
  // Any value, nested at most `depth` levels; `kind` and, for integers, `integer` describe
  // it; `raw` holds a string's text.
  bool value(int depth, Kind& kind, std::int64_t& integer, std::string_view& raw) {
    skip_ws();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') {
      kind = Kind::string;
      return string(raw);
    }
    if (c == '{' || c == '[') {
      if (depth <= 0) return false;
      kind = c == '{' ? Kind::object : Kind::array;
      return container(depth - 1, c == '{');
    }
    if (literal("true") || literal("false")) {
      kind = Kind::boolean;
      return true;
    }
    if (literal("null")) {
      kind = Kind::null;
      return true;
    }
    return number(kind, integer);
  }

 private:
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; Kind::integer when it has neither a
  // fraction nor an exponent and fits in int64 (then `integer` holds it).
  bool number(Kind& kind, std::int64_t& integer) {
    const auto start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !digit(s_[i_])) return false;
    if (s_[i_] == '0') {
      ++i_;
    } else {
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    bool plain = true;
    if (i_ < s_.size() && s_[i_] == '.') {
      plain = false;
      if (++i_ >= s_.size() || !digit(s_[i_])) return false;
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      plain = false;
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !digit(s_[i_])) return false;
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    kind = Kind::number;
    if (plain) {
      const char* first = s_.data() + start;
      const char* last = s_.data() + i_;
      const auto [ptr, ec] = std::from_chars(first, last, integer);
      if (ec == std::errc{} && ptr == last) kind = Kind::integer;
    }
    return true;
  }
  bool container(int depth, bool object) {
    ++i_;  // '{' or '['
    const char close = object ? '}' : ']';
    if (consume(close)) return true;
    do {
      if (object) {
        std::string_view key;
        if (!string(key) || !consume(':')) return false;
      }
      Kind kind{};
      std::int64_t integer = 0;
      std::string_view raw;
      if (!value(depth, kind, integer, raw)) return false;
    } while (consume(','));
    return consume(close);
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// "2023-11-14T22:13:20.123Z", as iso_time() writes it.
bool iso_time(std::string_view t) {
  constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (t.size() != shape.size()) return false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != shape[i]) return false;
  }
  return true;
}

enum Field : std::uint8_t {
  kId,
  kTime,
  kJob,
  kHost,
  kKind,
  kProto,
  kPort,
  kFrom,
  kTo,
  kFromReason,
  kToReason,
  kExpected,
  kScanId,
  kPorts,
  kChangeId,
  kFieldCount
};
constexpr std::array<std::string_view, kFieldCount> kFieldNames{
    "id", "time",        "job",       "host",     "kind",    "proto", "port",     "from",
    "to", "from_reason", "to_reason", "expected", "scan_id", "ports", "change_id"};
constexpr int kMaxDepth = 8;
constexpr std::size_t kMaxMembers = 64;

bool field_ok(Field f, Kind kind, std::int64_t integer, std::string_view raw) {
  switch (f) {
    case kId:
      return kind == Kind::integer && integer >= 1 && integer <= kMaxEventLineId;
    case kTime:
      return kind == Kind::string && iso_time(raw);
    case kPort:
      return kind == Kind::integer && integer >= 0 && integer <= 65535;
    case kScanId:
      return kind == Kind::integer && integer >= 0;
    case kExpected:
      return kind == Kind::boolean;
    case kPorts:
      return kind == Kind::array;
    default:
      return kind == Kind::string;
  }
}

}  // namespace

std::optional<std::int64_t> event_line_id(std::string_view line) {
  if (line.size() > kMaxEventLineBytes) return std::nullopt;
  Reader r(line);
  if (!r.consume('{')) return std::nullopt;
  std::array<bool, kFieldCount> seen{};
  std::vector<std::string_view> other;  // unknown keys, for duplicates
  std::int64_t id = 0;
  if (!r.consume('}')) {
    std::size_t members = 0;
    do {
      std::string_view key;
      if (!r.string(key) || !r.consume(':') || ++members > kMaxMembers) return std::nullopt;
      // Keys are plain: an escape could spell a known key another way.
      if (key.find('\\') != std::string_view::npos) return std::nullopt;
      Kind kind{};
      std::int64_t integer = 0;
      std::string_view raw;
      if (!r.value(kMaxDepth, kind, integer, raw)) return std::nullopt;
      const auto known = std::find(kFieldNames.begin(), kFieldNames.end(), key);
      if (known == kFieldNames.end()) {
        if (std::find(other.begin(), other.end(), key) != other.end()) return std::nullopt;
        other.push_back(key);
        continue;
      }
      const auto f = static_cast<Field>(known - kFieldNames.begin());
      if (seen[f] || !field_ok(f, kind, integer, raw)) return std::nullopt;
      seen[f] = true;
      if (f == kId) id = integer;
    } while (r.consume(','));
    if (!r.consume('}')) return std::nullopt;
  }
  if (!r.at_end()) return std::nullopt;
  if (!seen[kId] || !seen[kTime] || !seen[kJob] || !seen[kHost]) return std::nullopt;
  return id;
}

void EventLogScanner::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    const auto piece = bytes.substr(0, nl);
    // Keep at most one byte beyond the limit: enough to know the line is too long.
    if (line_.size() <= kMaxEventLineBytes) {
      line_.append(piece.substr(0, kMaxEventLineBytes + 1 - line_.size()));
    }
    offset_ += piece.size();
    if (nl == std::string_view::npos) return;
    ++offset_;  // the '\n'
    end_line(true);
    bytes.remove_prefix(nl + 1);
  }
}

void EventLogScanner::finish() {
  if (finished_) return;
  finished_ = true;
  if (offset_ > line_start_) end_line(false);
}

void EventLogScanner::end_line(bool terminated) {
  const Range whole{line_start_, offset_ - line_start_};
  line_start_ = offset_;
  std::string line;
  line.swap(line_);
  if (!terminated) {
    // A torn append: the start of what event_json() writes ("{\"id\":" then digits).
    constexpr std::string_view head = "{\"id\":";
    const auto n = std::min(line.size(), head.size());
    bool event_like = line.compare(0, n, head.substr(0, n)) == 0;
    for (std::size_t i = n; event_like && i < line.size(); ++i) {
      event_like = static_cast<unsigned char>(line[i]) >= 0x20;
    }
    if (event_like) {
      torn_ = whole;
      return;
    }
    add_bad(whole.offset, whole.length);
    if (bad_lines_ == 1) first_bad_ = line.substr(0, 120);
    return;
  }
  const auto id = event_line_id(line);
  if (id && *id > last_id_ && (last_id_ == 0 || *id - last_id_ <= kMaxEventIdJump)) {
    last_id_ = *id;
    ++events_;
    return;
  }
  add_bad(whole.offset, whole.length);
  if (bad_lines_ == 1) first_bad_ = line.substr(0, 120);
}

void EventLogScanner::add_bad(std::uint64_t offset, std::uint64_t length) {
  ++bad_lines_;
  if (!bad_.empty() && bad_.back().offset + bad_.back().length == offset) {
    bad_.back().length += length;
  } else {
    bad_.push_back({offset, length});
  }
}

}  // namespace portvigil
