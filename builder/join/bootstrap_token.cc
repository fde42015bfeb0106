#include "builder/join/bootstrap_token.h"

#include <openssl/rand.h>

#include "builder/util/error.h"
#include "builder/util/scan.h"

namespace kiln {
namespace {

std::string random_chars(size_t count) {
  static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  while (out.size() < count) {
    unsigned char byte;
    if (RAND_bytes(&byte, 1) != 1) throw Error("OpenSSL: no random bytes available");
    // Rejection sampling keeps every character equally likely (252 = 7 * 36).
    if (byte < 252) out += alphabet[byte % alphabet.size()];
  }
  return out;
}

}  // namespace

BootstrapToken generate_bootstrap_token() {
  return {random_chars(6), random_chars(16)};
}

std::optional<BootstrapToken> parse_bootstrap_token(const std::string& text) {
  auto token_char = [](char c) { return (c >= 'a' && c <= 'z') || scan::is_digit(c); };
  if (text.size() != 6 + 1 + 16 || text[6] != '.') return std::nullopt;
  std::string_view id = std::string_view(text).substr(0, 6);
  std::string_view secret = std::string_view(text).substr(7);
  if (!scan::all_of(id, token_char) || !scan::all_of(secret, token_char)) return std::nullopt;
  return BootstrapToken{std::string(id), std::string(secret)};
}

}  // namespace kiln
