#pragma once

#include <filesystem>
#include <string>

#include "builder/disk/gpt.h"
#include "builder/util/files.h"

namespace kiln::test {

inline constexpr std::uint64_t kSmallImageSize = 1 << 20;  // 2048 sectors
inline constexpr std::uint64_t kSmallConfigSector = 256;   // kiln-config: sectors 256-1279

/// A valid 1 MiB GPT image whose only partition is a 512 KiB kiln-config: enough for
/// `kiln stamp` and the GPT reader, made in a few milliseconds.
inline std::filesystem::path small_gpt_image(const std::filesystem::path& dir) {
  std::filesystem::path image = dir / "small.raw";
  write_file_atomic(image, std::string(kSmallImageSize, '\0'));
  GptDisk disk;
  disk.size = kSmallImageSize;
  disk.partitions.push_back({"kiln-config", {}, {}, kSmallConfigSector * 512, 512 << 10, 0});
  disk.guid = Guid::derived("small disk");
  disk.partitions[0].type = Guid::derived("type");
  disk.partitions[0].uuid = Guid::derived("kiln-config");
  write_gpt(image, disk);
  return image;
}

}  // namespace kiln::test
