#include "builder/export/disk_parts.h"

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "builder/util/error.h"
#include "builder/util/process.h"

namespace kiln {
namespace fs = std::filesystem;

std::uint64_t used_bytes(const DiskArtifact& disk, const std::string& partition) {
  for (const auto& u : disk.usage)
    if (u.name == partition) return u.used;
  throw Error("the disk stage recorded no usage for partition " + partition);
}

void append_range(const fs::path& from, std::uint64_t offset, std::uint64_t size, int to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw Error("cannot open " + from.string());
  std::vector<char> buffer(1 << 20);
  while (size > 0) {
    ssize_t n = ::pread(in, buffer.data(), std::min<std::uint64_t>(size, buffer.size()), offset);
    if (n <= 0 || ::write(to, buffer.data(), n) != n) {
      ::close(in);
      throw Error("cannot copy from " + from.string());
    }
    offset += n, size -= n;
  }
  ::close(in);
}

void copy_partition_content(const DiskArtifact& disk, const std::string& partition,
                            const fs::path& out) {
  const GptPartition& part = find_partition(disk.layout, partition, disk.raw);
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create " + out.string());
  try {
    append_range(disk.raw, part.offset, used_bytes(disk, partition), fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

void copy_from_esp(const DiskArtifact& disk, const std::string& file, const fs::path& out) {
  const GptPartition& esp = find_partition(disk.layout, "esp", disk.raw);
  run({"mcopy", "-n", "-m", "-i", disk.raw.string() + "@@" + std::to_string(esp.offset),
       "::/kiln/" + file, out.string()},
      {.quiet = true});
}

}  // namespace kiln
