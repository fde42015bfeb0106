#include "firstboot/disk_install.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "firstboot/image_writer.h"
#include "firstboot/kernel_cmdline.h"
#include "firstboot/netroot/http_download.h"

namespace kiln::firstboot {
namespace fs = std::filesystem;

namespace {

const fs::path kDownloadDir = "/run/kiln/install";

std::string read_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

bool first_mib_is_zero(const fs::path& device) {
  int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::vector<char> head(1 << 20);
  ssize_t n = ::read(fd, head.data(), head.size());
  ::close(fd);
  return n == ssize_t(head.size()) &&
         std::all_of(head.begin(), head.end(), [](char c) { return c == 0; });
}

/// The device node of the partition named `label` on `disk`, from the kernel's view of the
/// new partition table (sysfs), so a second kiln disk in the machine cannot be mistaken.
std::optional<fs::path> partition_by_label(const std::string& disk, const std::string& label) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/sys/block/" + disk, ec)) {
    if (!fs::exists(entry.path() / "partition")) continue;
    std::ifstream uevent(entry.path() / "uevent");
    for (std::string line; std::getline(uevent, line);)
      if (line == "PARTNAME=" + label) return fs::path("/dev") / entry.path().filename();
  }
  return std::nullopt;
}

/// A BSD lock on the whole disk for as long as kiln rewrites it. udev leaves a locked disk
/// alone: it neither probes it nor re-reads its partition table itself when the writer closes
/// it, which would race kiln's own re-read into EBUSY.
class WholeDiskLock {
 public:
  explicit WholeDiskLock(const fs::path& device) {
    fd_ = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error("cannot open " + device.string() + ": " + std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~WholeDiskLock() { ::close(fd_); }
  WholeDiskLock(const WholeDiskLock&) = delete;
  WholeDiskLock& operator=(const WholeDiskLock&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

/// Makes the kernel read the new partition table. A partition someone still has open makes
/// that fail with EBUSY for a moment, so it is retried for up to ten seconds.
void reread_partitions(const WholeDiskLock& disk, const fs::path& device) {
  ::fsync(disk.fd());
  for (int attempt = 1;; ++attempt) {
    if (::ioctl(disk.fd(), BLKRRPART) == 0) return;
    if (errno != EBUSY || attempt == 50)
      throw Error("cannot re-read the partition table of " + device.string() + ": " +
                  std::strerror(errno));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

/// Writes `files` (name, content, mode) onto the installed disk's KILNCFG partition.
void stamp_config(const std::string& disk,
                  const std::vector<std::tuple<std::string, std::string, unsigned>>& files) {
  std::optional<fs::path> partition;
  for (int i = 0; i < 100 && !(partition = partition_by_label(disk, "kiln-config")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (!partition) throw Error("the installed disk /dev/" + disk + " has no kiln-config partition");
  for (int i = 0; i < 100 && !fs::exists(*partition); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  fs::path mount_point = kDownloadDir / "config";
  fs::create_directories(mount_point);
  if (::mount(partition->c_str(), mount_point.c_str(), "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "umask=0077") != 0)
    throw Error("cannot mount " + partition->string() + ": " + std::strerror(errno));
  try {
    for (const auto& [name, content, mode] : files)
      write_file_atomic(mount_point / name, content, mode);
  } catch (...) {
    ::umount(mount_point.c_str());
    throw;
  }
  ::umount(mount_point.c_str());
}

}  // namespace

std::optional<std::string> first_empty_disk(const std::string& sys_block, const std::string& dev) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(sys_block, ec)) {
    std::string name = entry.path().filename();
    bool virtual_or_optical = false;
    for (const char* prefix : {"loop", "ram", "dm-", "sr", "zram", "fd", "nbd", "md", "mtdblock"})
      virtual_or_optical |= name.rfind(prefix, 0) == 0;
    if (virtual_or_optical || read_line(entry.path() / "removable") == "1" ||
        read_line(entry.path() / "ro") == "1" || read_line(entry.path() / "size") == "0")
      continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names)
    if (first_mib_is_zero(fs::path(dev) / name)) return name;
  return std::nullopt;
}

bool install_to_empty_disk(const std::optional<std::string>& join_yaml,
                           const std::optional<std::string>& network_yaml,
                           const std::function<void(const std::string&)>& status) {
  const std::string cmdline = read_kernel_cmdline();
  auto url = kernel_argument(cmdline, "kiln.install_url");
  if (!url) return false;
  auto pin = sha256_argument(cmdline, "kiln.install_sha256");
  if (!pin) throw Error("kiln.install_url needs kiln.install_sha256=<64 hex digits> beside it");
  auto disk = first_empty_disk();
  if (!disk) {
    status(
        "kiln: no empty disk to install onto (a disk counts as empty when its first MiB is "
        "zero); running from RAM");
    return false;
  }
  const fs::path device = fs::path("/dev") / *disk;
  status("kiln: installing " + *url + " onto " + device.string());

  fs::path image = kDownloadDir / "disk.raw.zst";
  // The image only needs RAM until it is on the disk: the tmpfs goes on every way out.
  struct UnmountOnExit {
    ~UnmountOnExit() { ::umount(kDownloadDir.c_str()); }
  } release_ram;
  auto make_room = [](std::uint64_t size) {
    mount_tmpfs_for(kDownloadDir, size, "the disk image");
  };
  // Progress goes to the unit's output only (journal and console), not the login banner.
  download_with_retries(*url, image, make_room, [](const std::string& line) {
    std::printf("kiln: %s\n", line.c_str());
    std::fflush(stdout);
  });
  std::string got = sha256_file(image);
  if (got != *pin) {
    throw Error("the disk image from " + *url + " does not match kiln.install_sha256 (got " + got +
                "); not installing it");
  }
  status("kiln: writing the disk image onto " + device.string());
  std::optional<WholeDiskLock> lock(std::in_place, device);
  // The image's empty space is zeroed on the disk too (the disk may hold old data there), but
  // as zero-range requests rather than gigabytes of written zeros.
  WrittenImage written = write_zstd_image(image, device);
  std::printf("kiln: wrote %llu MiB of data and zeroed %llu MiB\n",
              static_cast<unsigned long long>((written.size - written.zeroed) >> 20),
              static_cast<unsigned long long>(written.zeroed >> 20));
  std::fflush(stdout);
  fs::remove(image);
  reread_partitions(*lock, device);
  lock.reset();  // udev may now make the partitions' device links
  std::vector<std::tuple<std::string, std::string, unsigned>> files;
  if (join_yaml) files.emplace_back("join.yaml", *join_yaml, 0600);
  // A node on a static network keeps it on the disk it boots from next.
  if (network_yaml) files.emplace_back("network.yaml", *network_yaml, 0644);
  if (!files.empty()) {
    stamp_config(*disk, files);
    status(std::string("kiln: put the ") +
           (join_yaml && network_yaml ? "join and network configs"
            : join_yaml               ? "join config"
                                      : "network config") +
           " into the installed disk's KILNCFG partition");
  }
  write_file_atomic("/run/kiln/installed", device.string() + "\n");
  status("kiln: installed onto " + device.string() + "; rebooting into it");
  run({"systemctl", "reboot"});
  return true;
}

}  // namespace kiln::firstboot
