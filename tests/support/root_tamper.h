#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "builder/disk/gpt.h"

namespace kiln::test {

/// Flips one bit inside the root's EROFS superblock, which the initrd reads first when it
/// mounts the root: dm-verity must refuse the block.
inline void flip_root_byte(const std::filesystem::path& disk) {
  kiln::GptDisk layout = kiln::read_gpt(disk);
  const kiln::GptPartition& root = kiln::find_partition(layout, "root", disk);
  std::uint64_t at = root.offset + 1024 + 8;
  int fd = ::open(disk.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  unsigned char byte = 0;
  REQUIRE(::pread(fd, &byte, 1, at) == 1);
  byte ^= 0x01;
  REQUIRE(::pwrite(fd, &byte, 1, at) == 1);
  ::close(fd);
}

}  // namespace kiln::test
