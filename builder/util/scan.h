#pragma once

// Small bounded scanners for untrusted text (HTTP responses, kernel arguments, timestamps):
// each is linear in its input, checks every integer for overflow and never throws. Header
// only, so the static kiln-netroot (which links no builder library) can use them too.

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>

namespace kiln::scan {

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
inline bool is_lower_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}
inline bool is_hex_digit(char c) {
  return is_lower_hex_digit(c) || (c >= 'A' && c <= 'F');
}
/// ASCII letters and digits, without the locale that std::isalnum consults.
inline bool is_lower_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z');
}
inline bool is_alnum(char c) {
  return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}
inline char to_lower(char c) {
  return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}

/// True when `text` is non-empty and every character satisfies `accept`.
template <typename Predicate>
bool all_of(std::string_view text, Predicate accept) {
  if (text.empty()) return false;
  for (char c : text)
    if (!accept(c)) return false;
  return true;
}

/// An unsigned integer written in `base` with nothing else around it (no sign, no spaces);
/// nullopt when malformed or too large for T.
template <typename T = std::uint64_t>
std::optional<T> parse_unsigned(std::string_view text, int base = 10) {
  if (!all_of(text, base == 16 ? is_hex_digit : is_digit)) return std::nullopt;
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

/// The shift of a size unit: "" or B for bytes; K, M, G or T, each optionally followed by
/// "i" and/or "B" (all binary: 4G and 4GiB are both 4 << 30). nullopt for anything else.
inline std::optional<int> byte_unit_shift(std::string_view unit) {
  if (unit.empty() || unit == "B") return 0;
  constexpr std::string_view kPrefixes = "KMGT";
  auto prefix = kPrefixes.find(unit.front());
  if (prefix == std::string_view::npos) return std::nullopt;
  unit.remove_prefix(1);
  if (!unit.empty() && unit.front() == 'i') unit.remove_prefix(1);
  if (!unit.empty() && unit.front() == 'B') unit.remove_prefix(1);
  if (!unit.empty()) return std::nullopt;
  return int(prefix) * 10 + 10;
}

/// A size like "512M", "4G" or "1073741824" (digits, then a unit byte_unit_shift accepts);
/// nullopt when malformed or beyond 64 bits, and then `*too_large` (if given) says which.
inline std::optional<std::uint64_t> parse_byte_size(std::string_view text,
                                                    bool* too_large = nullptr) {
  if (too_large) *too_large = false;
  std::size_t unit_at = 0;
  while (unit_at < text.size() && is_digit(text[unit_at])) ++unit_at;
  auto value = parse_unsigned(text.substr(0, unit_at));
  auto shift = byte_unit_shift(text.substr(unit_at));
  if (!value || !shift) return std::nullopt;
  if (*value > (UINT64_MAX >> *shift)) {
    if (too_large) *too_large = true;
    return std::nullopt;
  }
  return *value << *shift;
}

/// Exactly `length` lowercase hex digits (how kiln writes SHA-256 digests).
inline bool is_lower_hex(std::string_view text, std::size_t length) {
  return text.size() == length && all_of(text, is_lower_hex_digit);
}

/// ASCII case-insensitive equality (HTTP header names and tokens).
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

/// `text` without leading and trailing spaces and tabs (HTTP's optional whitespace).
inline std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// The status code of an HTTP/1.x status line ("HTTP/1.1 200 OK"); nullopt when malformed.
inline std::optional<int> http_status(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !is_digit(line[7]) || line[8] != ' ')
    return std::nullopt;
  if (line.size() > 12 && line[12] != ' ') return std::nullopt;
  auto code = parse_unsigned<int>(line.substr(9, 3));
  if (!code || *code < 100) return std::nullopt;
  return code;
}

/// Calls `field(name, value)` for each "Name: value" line of an HTTP head (the part before the
/// blank line, status line included, lines ending in CRLF); values are trimmed. Returns false,
/// having stopped, on a line without a colon or a name with whitespace (obsolete folding and
/// request smuggling tricks), or when `field` returns false.
template <typename Field>
bool for_each_header(std::string_view head, Field field) {
  std::size_t at = head.find("\r\n");
  if (at == std::string_view::npos) return true;  // a status line alone
  std::string_view rest = head.substr(at + 2);
  while (!rest.empty()) {
    std::size_t end = rest.find("\r\n");
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view name = line.substr(0, colon);
    if (name.find_first_of(" \t") != std::string_view::npos) return false;
    if (!field(name, trim(line.substr(colon + 1)))) return false;
  }
  return true;
}

}  // namespace kiln::scan
