#include "builder/util/error.h"

#include <fmt/format.h>

#include <algorithm>

namespace kiln {

namespace {

bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

constexpr size_t kIdLength = 6, kSecretLength = 16;

/// True when text[at..] starts with <6 token chars>.<16 token chars>.
bool token_at(const std::string& text, size_t at) {
  if (text.size() - at < kIdLength + 1 + kSecretLength) return false;
  for (size_t i = 0; i < kIdLength; ++i)
    if (!token_char(text[at + i])) return false;
  if (text[at + kIdLength] != '.') return false;
  for (size_t i = 0; i < kSecretLength; ++i)
    if (!token_char(text[at + kIdLength + 1 + i])) return false;
  return true;
}

// A source line wider than this is shown as a window around the column, so that a 100 KB
// line in a config is not copied onto the terminal whole.
constexpr size_t kMaxShownLine = 160;

}  // namespace

std::string mask_bootstrap_tokens(std::string text) {
  // Each start position is checked against a fixed-length pattern: at most 23 characters
  // looked at per position, so the scan is linear in the text.
  for (size_t at = 0; at + kIdLength + 1 + kSecretLength <= text.size(); ++at) {
    if (!token_at(text, at)) continue;
    text.replace(at + kIdLength + 1, kSecretLength, kSecretLength, '*');
    at += kIdLength + kSecretLength;  // the loop's ++at steps past the masked secret
  }
  return text;
}

std::string Error::render() const {
  if (!mark_.known()) return fmt::format("error: {}", what());
  std::string out =
      fmt::format("{}:{}:{}: error: {}", mark_.file, mark_.line, mark_.column, what());
  if (!source_line_.empty()) {
    std::string line = source_line_;
    size_t caret = mark_.column > 0 ? size_t(mark_.column - 1) : 0;
    if (line.size() > kMaxShownLine) {
      size_t start = caret > kMaxShownLine / 2 ? caret - kMaxShownLine / 2 : 0;
      start = std::min(start, line.size() - kMaxShownLine);
      bool cut_front = start > 0, cut_back = start + kMaxShownLine < line.size();
      line = (cut_front ? "..." : "") + line.substr(start, kMaxShownLine) + (cut_back ? "..." : "");
      caret = caret - start + (cut_front ? 3 : 0);
    }
    caret = std::min(caret, line.size());
    out += fmt::format("\n  {}\n  {}^", line, std::string(caret, ' '));
  }
  return out;
}

}  // namespace kiln
