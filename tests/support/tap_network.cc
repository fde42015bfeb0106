#include "support/tap_network.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "builder/util/process.h"

namespace kiln::test {

namespace {

constexpr const char* kHostAddress = "10.0.2.2";
// Short: an interface name is at most 15 characters, and the pid and subnet follow.
constexpr const char* kDevicePrefix = "ktap";

bool accepts_connections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, kHostAddress, &address.sin_addr);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

void ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  run(argv, {.quiet = true});
}

/// Taps named after test processes that are gone (killed before they could clean up), which
/// would still answer for 10.0.2.2 and their subnet.
void remove_orphaned_taps() {
  for (const auto& entry : std::filesystem::directory_iterator("/sys/class/net")) {
    std::string name = entry.path().filename();
    if (!name.starts_with(kDevicePrefix)) continue;
    std::string pid = name.substr(std::string(kDevicePrefix).size());
    auto dash = pid.find('-');
    if (dash != std::string::npos) pid.resize(dash);
    if (!std::filesystem::exists("/proc/" + pid)) ip({"link", "delete", name});
  }
}

}  // namespace

TapNetwork::TapNetwork(int subnet, const std::vector<int>& relay_ports)
    : subnet_(subnet),
      device_(kDevicePrefix + std::to_string(::getpid()) + "-" + std::to_string(subnet)) {
  if (::geteuid() != 0 || !std::filesystem::exists("/dev/net/tun"))
    throw std::runtime_error("a static-network test needs root and /dev/net/tun for its tap link");
  remove_orphaned_taps();
  ip({"tuntap", "add", "dev", device_, "mode", "tap"});
  ip({"address", "add", gateway() + "/24", "dev", device_});
  ip({"address", "add", std::string(kHostAddress) + "/32", "dev", device_});
  ip({"link", "set", device_, "up"});
  for (int port : relay_ports) {
    int pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      std::string listen =
          "TCP-LISTEN:" + std::to_string(port) + ",bind=" + kHostAddress + ",reuseaddr,fork";
      std::string target = "TCP:127.0.0.1:" + std::to_string(port);
      ::execlp("socat", "socat", listen.c_str(), target.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    relay_pids_.push_back(pid);
    for (int i = 0; i < 100 && !accepts_connections(port); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!accepts_connections(port)) {
      take_down();
      throw std::runtime_error("socat did not start relaying 10.0.2.2:" + std::to_string(port));
    }
  }
}

TapNetwork::~TapNetwork() {
  take_down();
}

std::string TapNetwork::address(int host) const {
  return "192.168." + std::to_string(subnet_) + "." + std::to_string(host);
}

std::string TapNetwork::node_config(const std::string& mac, int host) const {
  return "network:\n"
         "  version: 2\n"
         "  ethernets:\n"
         "    uplink:\n"
         "      match: {macaddress: \"" +
         mac + "\"}\n      addresses: [" + address(host) +
         "/24]\n"
         "      routes: [{to: default, via: " +
         gateway() + "}]\n";
}

void TapNetwork::take_down() {
  for (int pid : relay_pids_) {
    ::kill(-pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  relay_pids_.clear();
  try {
    if (std::filesystem::exists("/sys/class/net/" + device_)) ip({"link", "delete", device_});
  } catch (const std::exception&) {
  }
}

}  // namespace kiln::test
