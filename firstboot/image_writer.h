#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

namespace kiln::firstboot {

struct WrittenImage {
  std::uint64_t size = 0;    ///< bytes of image now on the target
  std::uint64_t zeroed = 0;  ///< of those, bytes that were zero and went out as zero-range requests
};

/// Streams a raw disk image from `in` onto `target` (a block device; a regular file in tests)
/// from offset 0. Runs of zeros are not written as data: they become BLKZEROOUT requests, which
/// disks with a write-zeroes command (NVMe, SCSI WRITE SAME, virtio) carry out without the
/// data crossing the bus, and which the kernel turns into ordinary zero writes elsewhere. Either
/// way the target holds zeros there afterwards, whatever it held before. Flushed before return.
WrittenImage write_image(int in, int target);

/// Decompresses the zstd image `zst` and writes it onto `device` as `write_image` does. An
/// image larger than the device is refused before anything is written (when the zstd frame
/// header states its size, as the raw.zst output's does).
WrittenImage write_zstd_image(const std::filesystem::path& zst,
                              const std::filesystem::path& device);

/// The decompressed size that the first frame header of the zstd file `zst` states, if any.
std::optional<std::uint64_t> zstd_content_size(const std::filesystem::path& zst);

}  // namespace kiln::firstboot
