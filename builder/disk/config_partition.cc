#include "builder/disk/config_partition.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>

#include "builder/disk/filesystems.h"
#include "builder/disk/gpt.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/time.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

constexpr const char* kConfigName = "join.yaml";

/// A 0700 directory for files that hold a token; overwritten and removed on scope exit.
class PrivateDir {
 public:
  PrivateDir() {
    std::string pattern = (fs::temp_directory_path() / "kiln-stamp-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw Error("cannot create a private temporary directory");
    path_ = pattern;
  }
  ~PrivateDir() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(path_, ec)) {
      auto size = fs::file_size(entry.path(), ec);
      if (!ec) {
        int fd = ::open(entry.path().c_str(), O_WRONLY);
        std::string zeros(size, '\0');
        if (fd >= 0) {
          [[maybe_unused]] auto n = ::write(fd, zeros.data(), zeros.size());
          ::close(fd);
        }
      }
    }
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

const GptPartition& config_partition(const fs::path& image, GptDisk& disk) {
  if (!fs::is_regular_file(image)) throw Error(image.string() + " is not a file");
  std::string magic = read_at(image, 0, 4);
  if (magic == "QFI\xfb") {
    throw Error(image.string() +
                " is a qcow2 image; kiln stamp writes raw images in place. Stamp the raw "
                "image, then convert it: qemu-img convert -c -O qcow2 IMAGE.raw IMAGE.qcow2");
  }
  disk = read_gpt(image);
  return find_partition(disk, "kiln-config", image);
}

}  // namespace

void stamp_join_config(const fs::path& image, const JoinConfig& config) {
  GptDisk disk;
  const GptPartition& partition = config_partition(image, disk);
  // Keep the file system's identity (volume ID at 0x27 of a FAT12/16 boot sector).
  std::string boot_sector = read_at(image, partition.offset, 512);
  std::uint32_t volume_id = 0;
  for (int i = 3; i >= 0; --i) volume_id = (volume_id << 8) | std::uint8_t(boot_sector[0x27 + i]);

  PrivateDir scratch;
  fs::create_directory(scratch.path() / "files");
  write_join_config(scratch.path() / "files" / kConfigName, config);
  fs::path fat = scratch.path() / "config.fat";
  make_fat(fat, partition.size, "KILNCFG", volume_id, scratch.path() / "files", unix_now());
  write_at(image, read_file(fat), partition.offset);
}

std::optional<std::string> read_stamped_config(const fs::path& image) {
  GptDisk disk;
  const GptPartition& partition = config_partition(image, disk);
  PrivateDir scratch;
  fs::path fat = scratch.path() / "config.fat";
  write_file_atomic(fat, read_at(image, partition.offset, partition.size), 0600);
  try {
    return run({"mtype", "-i", fat.string(), std::string("::/") + kConfigName},
               {.env = {{"MTOOLS_SKIP_CHECK", "1"}}, .capture_stdout = true, .quiet = true})
        .stdout_text;
  } catch (const Error&) {
    return std::nullopt;  // an empty partition: nothing stamped (or already used and erased)
  }
}

}  // namespace kiln
