#include "builder/disk/config_partition.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "builder/disk/filesystems.h"
#include "builder/disk/gpt.h"
#include "builder/join/network_config.h"
#include "builder/update/update_index.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/time.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

constexpr const char* kConfigName = "join.yaml";
/// Where a node looks for its own update source (kiln-update reads it).
constexpr const char* kUpdateUrlName = "update-url";
/// The node's static network (kiln-network.service reads it before the network starts).
constexpr const char* kNetworkName = "network.yaml";
/// Everything stamping writes: stamping one file keeps the others.
constexpr const char* kStampedFiles[] = {kConfigName, kUpdateUrlName, kNetworkName};

// kiln makes the partition 8 MiB; stamping builds and holds a FAT of the partition's size,
// so an image that claims far more is refused rather than trusted.
constexpr std::uint64_t kMaxConfigPartition = 64ull << 20;
constexpr std::uint64_t kMinConfigPartition = 64ull << 10;

/// A 0700 directory for files that hold a token; overwritten and removed on scope exit, and
/// removed by the signal handler if a signal ends the process first.
class PrivateDir {
 public:
  PrivateDir() {
    std::string pattern = (fs::temp_directory_path() / "kiln-stamp-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw Error("cannot create a private temporary directory");
    path_ = pattern;
    registration_ = temp_registry::add(path_);
  }
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;
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
    temp_registry::remove(registration_);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  int registration_ = -1;
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
  const GptPartition& partition = find_partition(disk, "kiln-config", image);
  if (partition.size > kMaxConfigPartition || partition.size < kMinConfigPartition) {
    throw Error(fmt::format(
        "{}: the kiln-config partition is {} bytes; kiln makes it 8 MiB and accepts {} KiB to "
        "{} MiB (a damaged image, or not one kiln built?)",
        image.string(), partition.size, kMinConfigPartition >> 10, kMaxConfigPartition >> 20));
  }
  return partition;
}

}  // namespace

namespace {

/// One file of the partition as stamped, if present.
std::optional<std::string> read_config_file(const fs::path& image, const GptPartition& partition,
                                            const char* name) {
  PrivateDir scratch;
  fs::path fat = scratch.path() / "config.fat";
  write_file_atomic(fat, read_at(image, partition.offset, partition.size), 0600);
  try {
    return run({"mtype", "-i", fat.string(), std::string("::/") + name},
               {.env = {{"MTOOLS_SKIP_CHECK", "1"}}, .capture_stdout = true, .quiet = true})
        .stdout_text;
  } catch (const Error&) {
    return std::nullopt;  // not stamped (or already used and erased)
  }
}

/// Makes the image private unless `keep_mode`, then replaces the whole partition with a fresh
/// FAT holding `files` (name, content), so nothing earlier survives in its free space.
StampResult write_config_files(const fs::path& image, const GptDisk& disk,
                               const GptPartition& partition,
                               const std::vector<std::pair<std::string, std::string>>& files,
                               bool keep_mode) {
  struct stat st {};
  if (::stat(image.c_str(), &st) != 0)
    throw Error("cannot stat " + image.string() + ": " + std::strerror(errno));
  StampResult result{st.st_mode & 07777u, st.st_mode & 07777u};
  if (!keep_mode && result.mode != 0600) {
    if (::chmod(image.c_str(), 0600) != 0)
      throw Error("cannot make " + image.string() +
                  " private (chmod 600) before writing a token "
                  "into it: " +
                  std::strerror(errno) + "; or pass --keep-mode");
    result.mode = 0600;
  }
  // Keep the file system's identity (volume ID at 0x27 of a FAT12/16 boot sector).
  std::string boot_sector = read_at(image, partition.offset, 512);
  std::uint32_t volume_id = 0;
  for (int i = 3; i >= 0; --i) volume_id = (volume_id << 8) | std::uint8_t(boot_sector[0x27 + i]);

  PrivateDir scratch;
  fs::create_directory(scratch.path() / "files");
  for (const auto& [name, content] : files)
    write_file_atomic(scratch.path() / "files" / name, content, 0600);
  fs::path fat = scratch.path() / "config.fat";
  // In the disk's sector size: a FAT for 512-byte sectors does not mount on a 4Kn disk.
  make_fat(fat, partition.size, "KILNCFG", volume_id, scratch.path() / "files", unix_now(),
           disk.sector_size);
  std::string content = read_file(fat);
  // mkfs.fat counts whole KiB: zero the rest, and never write past the partition.
  if (content.size() > partition.size)
    throw Error(fmt::format("mkfs.fat made {} bytes for the {}-byte kiln-config partition",
                            content.size(), partition.size));
  content.resize(partition.size, '\0');
  write_at(image, content, partition.offset);
  return result;
}

/// Writes `name` into the partition, keeping whatever else is stamped there.
StampResult replace_config_file(const fs::path& image, const char* name, const std::string& content,
                                bool keep_mode) {
  GptDisk disk;
  const GptPartition& partition = config_partition(image, disk);
  std::vector<std::pair<std::string, std::string>> files;
  for (const char* kept : kStampedFiles) {
    if (std::string_view(kept) == name) continue;
    if (auto text = read_config_file(image, partition, kept)) files.emplace_back(kept, *text);
  }
  files.emplace_back(name, content);
  return write_config_files(image, disk, partition, files, keep_mode);
}

}  // namespace

StampResult stamp_join_config(const fs::path& image, const JoinConfig& config, bool keep_mode) {
  std::string text;
  {
    PrivateDir scratch;
    write_join_config(scratch.path() / kConfigName, config);
    text = read_file(scratch.path() / kConfigName);
  }
  return replace_config_file(image, kConfigName, text, keep_mode);
}

void check_update_url(const std::string& url) {
  if (!is_update_url(url))
    throw Error("--update-url '" + url +
                "' must be an http:// URL (releases are signed; the "
                "transport need not be)");
}

StampResult stamp_update_url(const fs::path& image, const std::string& url, bool keep_mode) {
  check_update_url(url);
  return replace_config_file(image, kUpdateUrlName, url + "\n", keep_mode);
}

StampResult stamp_network_config(const fs::path& image, const std::string& text, bool keep_mode) {
  parse_network_config(text, "network.yaml");  // the caller has checked it; never stamp less
  return replace_config_file(image, kNetworkName, text, keep_mode);
}

std::optional<std::string> read_stamped_network_config(const fs::path& image) {
  GptDisk disk;
  const GptPartition& partition = config_partition(image, disk);
  return read_config_file(image, partition, kNetworkName);
}

std::optional<std::string> read_stamped_config(const fs::path& image) {
  GptDisk disk;
  const GptPartition& partition = config_partition(image, disk);
  return read_config_file(image, partition, kConfigName);
}

std::optional<std::string> read_stamped_update_url(const fs::path& image) {
  GptDisk disk;
  const GptPartition& partition = config_partition(image, disk);
  auto url = read_config_file(image, partition, kUpdateUrlName);
  if (url) {
    while (!url->empty() && (url->back() == '\n' || url->back() == '\r')) url->pop_back();
  }
  return url;
}

}  // namespace kiln
