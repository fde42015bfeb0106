#include "builder/join/bootstrap_token.h"

#include <openssl/rand.h>

#include <regex>

#include "builder/util/error.h"

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
  static const std::regex pattern("^([a-z0-9]{6})\\.([a-z0-9]{16})$");
  std::smatch match;
  if (!std::regex_match(text, match, pattern)) return std::nullopt;
  return BootstrapToken{match[1], match[2]};
}

}  // namespace kiln
