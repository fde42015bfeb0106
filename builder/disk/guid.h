#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

/// A GUID kept as its canonical text ("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"), converted to
/// GPT's on-disk byte order (first three fields little-endian) only when written.
struct Guid {
  std::string text;

  std::array<std::uint8_t, 16> to_gpt_bytes() const;
  static Guid from_gpt_bytes(const std::uint8_t* bytes);

  /// A version-4-shaped GUID from SHA-256(seed): stable for the same seed, unique per seed.
  static Guid derived(std::string_view seed);
  /// Splits 32 hex digits 8-4-4-4-12 without reordering (the Discoverable Partitions
  /// Specification's mapping of a verity root hash to partition UUIDs).
  static Guid from_hex(std::string_view hex32);

  bool operator==(const Guid&) const = default;
};

/// Partition types from the UEFI spec and the Discoverable Partitions Specification.
namespace partition_type {
inline const Guid esp{"c12a7328-f81f-11d2-ba4b-00a0c93ec93b"};
inline const Guid bios_boot{"21686148-6449-6e6f-744e-656564454649"};
inline const Guid root_x86_64{"4f68bce3-e8cd-4db1-96e7-fbcaf984b709"};
inline const Guid root_x86_64_verity{"2c7357ed-ebd2-46d9-aec3-7a3f1f0f6f4a"};
inline const Guid root_arm64{"b921b045-1df0-41c3-af44-4c6f280d3fae"};
inline const Guid root_arm64_verity{"df3300ce-d69f-4c92-978c-9bfb0f38d820"};
inline const Guid basic_data{"ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"};
inline const Guid linux_data{"0fc63daf-8483-4772-8e79-3d69d8477de4"};
}  // namespace partition_type

}  // namespace kiln
