#include "firstboot/static_network.h"

#include <sys/mount.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "builder/join/network_config.h"
#include "builder/join/networkd_files.h"
#include "builder/util/files.h"
#include "builder/util/parse_errors.h"
#include "firstboot/kernel_cmdline.h"

namespace kiln::firstboot {
namespace fs = std::filesystem;

namespace {

const fs::path kConfigDevice = "/dev/disk/by-partlabel/kiln-config";
const fs::path kMountPoint = "/run/kiln/network-source";
const fs::path kNetworkdRuntime = "/run/systemd/network";
constexpr const char* kFileName = "network.yaml";

void say(const std::string& line) {
  std::printf("kiln-network: %s\n", line.c_str());
  std::fflush(stdout);
}

/// network.yaml from the KILNCFG partition, mounted read-only for as long as it takes to read
/// it (the join agent mounts the partition itself later).
std::optional<std::string> read_from_config_partition() {
  // udev made the link in the initrd already; a slow disk gets a few seconds more.
  for (int i = 0; i < 20 && !fs::exists(kConfigDevice); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  if (!fs::exists(kConfigDevice)) return std::nullopt;
  fs::create_directories(kMountPoint);
  if (::mount(kConfigDevice.c_str(), kMountPoint.c_str(), "vfat",
              MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "umask=0077") != 0) {
    say("cannot mount the KILNCFG partition; no static network config read");
    return std::nullopt;
  }
  std::optional<std::string> text;
  fs::path file = kMountPoint / kFileName;
  try {
    if (fs::exists(file)) text = read_network_config_file(file);
  } catch (const std::exception& e) {
    say(std::string(e.what()) + "; ignored");
  }
  ::umount(kMountPoint.c_str());
  return text;
}

}  // namespace

int apply_static_network() {
  std::optional<std::string> text;
  std::string origin;
  if (fs::exists(kNetbootNetworkConfig)) {
    text = read_network_config_file(kNetbootNetworkConfig);
    origin = "the netboot config initrd";
  } else if (!kernel_argument(read_kernel_cmdline(), "kiln.root_url")) {
    text = read_from_config_partition();
    origin = "the KILNCFG partition";
  }
  if (!text) return 0;
  NetworkConfig config;
  try {
    config = parse_network_config(*text, "KILNCFG/network.yaml");
  } catch (const ParseErrors& e) {
    say("the stamped network config is refused; the node falls back to DHCP:\n" + e.render_all());
    return 1;
  }
  fs::create_directories(kNetworkdRuntime);
  for (const auto& entry : fs::directory_iterator(kNetworkdRuntime)) {
    if (entry.path().filename().string().starts_with("10-kiln-")) fs::remove(entry.path());
  }
  for (const auto& [name, content] : networkd_files(config))
    write_file_atomic(kNetworkdRuntime / name, content, 0644);
  say("static network from " + origin + ":");
  for (const auto& line : describe_network(config)) say("  " + line);
  return 0;
}

}  // namespace kiln::firstboot
