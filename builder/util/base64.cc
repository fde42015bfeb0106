#include "builder/util/base64.h"

#include <array>

namespace kiln {
namespace {

constexpr std::string_view kStandard =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrl =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(std::string_view data, std::string_view alphabet, bool pad) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    unsigned v =
        (unsigned char)data[i] << 16 | (unsigned char)data[i + 1] << 8 | (unsigned char)data[i + 2];
    for (int shift : {18, 12, 6, 0}) out += alphabet[(v >> shift) & 63];
  }
  size_t rest = data.size() - i;
  if (rest) {
    unsigned v = (unsigned char)data[i] << 16 | (rest == 2 ? (unsigned char)data[i + 1] << 8 : 0);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (rest == 2) out += alphabet[(v >> 6) & 63];
    if (pad) out += rest == 2 ? "=" : "==";
  }
  return out;
}

std::array<int, 256> values(std::string_view alphabet) {
  std::array<int, 256> value;
  value.fill(-1);
  for (size_t i = 0; i < alphabet.size(); ++i) value[(unsigned char)alphabet[i]] = int(i);
  return value;
}

/// Standard base64 as kubeconfig files carry it: padding, and line breaks skipped.
std::optional<std::string> decode_lenient(std::string_view text, std::string_view alphabet) {
  const std::array<int, 256> value = values(alphabet);
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : text) {
    if (c == '=') {
      ++padding;
      continue;
    }
    if (c == '\n' || c == '\r') continue;
    if (padding || value[(unsigned char)c] < 0) return std::nullopt;
    buffer = buffer << 6 | unsigned(value[(unsigned char)c]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((buffer >> bits) & 0xff);
    }
  }
  if (bits >= 6 || padding > 2) return std::nullopt;
  return out;
}

/// Unpadded base64 with exactly one encoding per byte string (RFC 7515 section 2, RFC 4648
/// section 3.5): nothing outside the alphabet, and the unused bits of the last character zero.
/// Anything looser would let one signature be written several ways.
std::optional<std::string> decode_canonical(std::string_view text, std::string_view alphabet) {
  if (text.size() % 4 == 1) return std::nullopt;
  const std::array<int, 256> value = values(alphabet);
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (value[(unsigned char)c] < 0) return std::nullopt;
    buffer = (buffer << 6 | unsigned(value[(unsigned char)c])) & 0xfff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((buffer >> bits) & 0xff);
    }
  }
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::string base64_encode(std::string_view data) {
  return encode(data, kStandard, true);
}
std::optional<std::string> base64_decode(std::string_view text) {
  return decode_lenient(text, kStandard);
}
std::string base64url_encode(std::string_view data) {
  return encode(data, kUrl, false);
}
std::optional<std::string> base64url_decode(std::string_view text) {
  return decode_canonical(text, kUrl);
}

}  // namespace kiln
