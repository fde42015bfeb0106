#include "builder/disk/guid.h"

#include <fmt/format.h>

#include "builder/util/error.h"
#include "builder/util/sha256.h"

namespace kiln {

namespace {

std::array<std::uint8_t, 16> parse_hex(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c != '-') hex += c;
  }
  if (hex.size() != 32) throw Error("malformed GUID '" + std::string(text) + "'");
  std::array<std::uint8_t, 16> bytes{};
  for (int i = 0; i < 16; ++i) bytes[i] = std::stoi(hex.substr(i * 2, 2), nullptr, 16);
  return bytes;
}

std::string format_canonical(const std::array<std::uint8_t, 16>& b) {
  std::string hex;
  for (auto byte : b) hex += fmt::format("{:02x}", byte);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

// GPT stores the first three fields (4, 2 and 2 bytes) little-endian.
constexpr int kGptOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};

}  // namespace

std::array<std::uint8_t, 16> Guid::to_gpt_bytes() const {
  auto canonical = parse_hex(text);
  std::array<std::uint8_t, 16> out{};
  for (int i = 0; i < 16; ++i) out[i] = canonical[kGptOrder[i]];
  return out;
}

Guid Guid::from_gpt_bytes(const std::uint8_t* bytes) {
  std::array<std::uint8_t, 16> canonical{};
  for (int i = 0; i < 16; ++i) canonical[kGptOrder[i]] = bytes[i];
  return {format_canonical(canonical)};
}

Guid Guid::derived(std::string_view seed) {
  std::string digest = sha256_hex(seed);
  auto bytes = parse_hex(digest.substr(0, 32));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;  // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return {format_canonical(bytes)};
}

Guid Guid::from_hex(std::string_view hex32) {
  return {format_canonical(parse_hex(hex32))};
}

}  // namespace kiln
