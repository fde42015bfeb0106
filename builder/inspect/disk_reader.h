#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace kiln {

/// The guest bytes of a disk image, whatever file format holds them.
class DiskReader {
 public:
  virtual ~DiskReader() = default;
  /// The disk's size in bytes as its format declares it (0 when a stream does not say).
  virtual std::uint64_t size() const = 0;
  /// Fills `out` with `count` bytes at `offset`; throws kiln::Error naming the image. A
  /// streaming reader accepts only offsets at or after the end of its previous read.
  virtual void read(std::uint64_t offset, char* out, std::size_t count) = 0;
  /// True when reads may go back: the image is a plain file or behind qemu's block layer.
  virtual bool random_access() const = 0;
  /// Starts a streaming reader again from the disk's first byte (no-op for random access).
  virtual void rewind() = 0;

  std::string read(std::uint64_t offset, std::size_t count);
};

/// A raw disk image, read with pread.
std::unique_ptr<DiskReader> open_raw_disk(const std::filesystem::path& image);

/// An image read through qemu's block layer: a read-only `qemu-nbd` of this user, started on
/// a private socket (systemd socket activation through libnbd) and stopped with the reader.
/// `blockdev` is qemu's JSON block specification, e.g. {"driver": "qcow2", "file": {...}}: the
/// format is always named, never probed.
std::unique_ptr<DiskReader> open_qemu_disk(const std::filesystem::path& image,
                                           const std::string& blockdev);

/// A compressed disk read forward as it decompresses, through libarchive: a zstd-compressed
/// raw image (`tar_member` empty), or a member of a compressed tar (disk.raw in a GCE image).
std::unique_ptr<DiskReader> open_streamed_disk(const std::filesystem::path& image,
                                               const std::string& tar_member = {});

}  // namespace kiln
