// kiln-netroot: brings a netbooted node's root file system into RAM and verifies it.
//
// Runs in the initrd (kiln-netroot.service) when the kernel command line names a root image:
//   kiln.root_url=http://server/pxe/root.img kiln.roothash=HEX kiln.root_hash_offset=BYTES
// The image is the same EROFS root as a kiln disk's, followed by its dm-verity hash tree.
// It is downloaded into a tmpfs (retrying, resuming with ranges), read once in full through
// dm-verity so a single altered block refuses the boot with a clear message, then opened as
// /dev/mapper/root with panic-on-corruption, exactly as a disk boot opens its root partition.
// A join config appended as an extra initrd (`kiln stamp --pxe`) is moved to /run/kiln,
// where the first-boot agent finds it after switch-root.
//
// Plain HTTP is enough: the root hash on the command line decides what may boot, not the
// transport. Statically linked, like the agent, and small: no TLS library.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "builder/util/scan.h"
#include "firstboot/kernel_cmdline.h"
#include "firstboot/netroot/http_download.h"
#include "firstboot/static_network.h"

namespace fs = std::filesystem;
using namespace kiln::firstboot;

namespace {

const fs::path kImageDir = "/run/kiln/netroot";
const fs::path kImage = kImageDir / "root.img";
const char* kVeritysetup = "/usr/lib/systemd/systemd-veritysetup";
constexpr const char* kCheckName = "kiln-netroot-check";

/// One line on the console and in the journal (stdout goes to both).
void say(const std::string& line) {
  std::printf("kiln: %s\n", line.c_str());
  std::fflush(stdout);
}

int run(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/// Reads the whole verity device: the kernel checks every block against the root hash and
/// answers EIO for any that does not match.
bool read_through(const fs::path& device, std::uint64_t& failed_at) {
  for (int i = 0; i < 100 && !fs::exists(device); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + device.string());
  std::vector<char> buffer(1 << 20);
  std::uint64_t at = 0;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      failed_at = at;
      ::close(fd);
      return false;
    }
    at += n;
  }
  ::close(fd);
  return true;
}

std::string verity_options(const std::string& offset, bool panic) {
  return "hash-offset=" + offset + (panic ? ",panic-on-corruption" : "");
}

/// A config image appended to the initrd carries /kiln/join.yaml; files of the initramfs
/// itself vanish at switch-root, /run does not.
void keep_appended_join_config() {
  const fs::path appended = "/kiln/join.yaml";
  if (!fs::exists(appended)) return;
  fs::create_directories("/run/kiln");
  ::chmod("/run/kiln", 0700);
  fs::copy_file(appended, "/run/kiln/netboot-join.yaml", fs::copy_options::overwrite_existing);
  ::chmod("/run/kiln/netboot-join.yaml", 0600);
  fs::remove(appended);
  say("join config from the appended initrd kept for the first-boot agent");
}

/// The same for a static network config: kiln-network.service applies it in the booted root.
void keep_appended_network_config() {
  const fs::path appended = "/kiln/network.yaml";
  if (!fs::exists(appended)) return;
  fs::create_directories("/run/kiln");
  ::chmod("/run/kiln", 0700);
  fs::copy_file(appended, kiln::firstboot::kNetbootNetworkConfig,
                fs::copy_options::overwrite_existing);
  fs::remove(appended);
  say("static network config from the appended initrd kept for the booted root");
}

int netroot() {
  const std::string cmdline = read_kernel_cmdline();
  auto url = kernel_argument(cmdline, "kiln.root_url");
  auto hash = kernel_argument(cmdline, "kiln.roothash");
  auto offset = kernel_argument(cmdline, "kiln.root_hash_offset");
  if (!url) return 0;  // not a netboot
  if (!hash || !kiln::scan::is_lower_hex(*hash, 64) || !offset ||
      !kiln::scan::parse_unsigned(*offset)) {
    say("refusing to boot: kiln.root_url needs kiln.roothash=<64 hex digits> and "
        "kiln.root_hash_offset=<bytes> beside it on the kernel command line");
    return 1;
  }
  if (url->rfind("http://", 0) != 0) {
    say("refusing to boot: kiln.root_url=" + *url +
        " is not an http:// URL (booted from boot.ipxe? an iPXE without ${cwduri} needs "
        "`set kiln-base http://SERVER/FOLDER` before it chains boot.ipxe)");
    return 1;
  }
  keep_appended_join_config();
  keep_appended_network_config();

  say("fetching the root image " + *url);
  auto started = std::chrono::steady_clock::now();
  // The image's tmpfs lives under /run, so it moves into the booted system with /run and
  // stays mounted there, under the loop device that carries the root.
  auto make_room = [](std::uint64_t size) { mount_tmpfs_for(kImageDir, size, "the root image"); };
  std::uint64_t size = download_with_retries(*url, kImage, make_room, say);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  say("fetched " + std::to_string(size >> 20) + " MiB in " + std::to_string(int(seconds)) +
      " s; verifying it against roothash " + hash->substr(0, 12) + "…");

  if (run({kVeritysetup, "attach", kCheckName, kImage, kImage, *hash,
           verity_options(*offset, false)}) != 0) {
    say("refusing to boot: the root image from " + *url +
        " has no valid dm-verity hash tree for roothash " + *hash);
    return 1;
  }
  std::uint64_t failed_at = 0;
  bool intact = read_through(fs::path("/dev/mapper") / kCheckName, failed_at);
  run({kVeritysetup, "detach", kCheckName});
  if (!intact) {
    say("refusing to boot: the root image from " + *url + " does not match roothash " + *hash +
        " (dm-verity rejected the block at byte " + std::to_string(failed_at) + ")");
    return 1;
  }
  if (run({kVeritysetup, "attach", "root", kImage, kImage, *hash, verity_options(*offset, true)}) !=
      0) {
    say("refusing to boot: cannot open the verified root image");
    return 1;
  }
  say("root image verified; booting it from RAM");
  return 0;
}

/// A refused root leaves nothing to boot: the machine halts with the reason as the last
/// thing on its console, rather than dropping into an emergency shell nobody can log into.
[[noreturn]] void halt() {
  say("halting");
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let the console show it
  ::sync();
  ::reboot(RB_HALT_SYSTEM);
  std::_Exit(1);
}

}  // namespace

int main() {
  try {
    if (netroot() != 0) halt();
    return 0;
  } catch (const std::exception& e) {
    say(std::string("refusing to boot: ") + e.what());
    halt();
  }
}
