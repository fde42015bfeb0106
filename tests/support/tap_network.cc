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

constexpr const char* kControlPlaneAddress = "10.0.2.2";
constexpr const char* kDevicePrefix = "kilntap";

bool accepts_connections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, kControlPlaneAddress, &address.sin_addr);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

void ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  run(argv, {.quiet = true});
}

}  // namespace

TapNetwork::TapNetwork(int relay_port)
    : device_(kDevicePrefix + std::to_string(::getpid() % 100000)) {
  if (::geteuid() != 0 || !std::filesystem::exists("/dev/net/tun"))
    throw std::runtime_error(
        "the static-network test needs root and /dev/net/tun for its tap link");
  // A tap left by an earlier, killed run would answer for 10.0.2.2 too.
  for (const auto& entry : std::filesystem::directory_iterator("/sys/class/net")) {
    std::string name = entry.path().filename();
    if (name.starts_with(kDevicePrefix)) ip({"link", "delete", name});
  }
  ip({"tuntap", "add", "dev", device_, "mode", "tap"});
  ip({"address", "add", std::string(kGateway) + "/24", "dev", device_});
  ip({"address", "add", std::string(kControlPlaneAddress) + "/32", "dev", device_});
  ip({"link", "set", device_, "up"});
  relay_pid_ = ::fork();
  if (relay_pid_ == 0) {
    ::setpgid(0, 0);
    std::string listen = "TCP-LISTEN:" + std::to_string(relay_port) +
                         ",bind=" + kControlPlaneAddress + ",reuseaddr,fork";
    std::string target = "TCP:127.0.0.1:" + std::to_string(relay_port);
    ::execlp("socat", "socat", listen.c_str(), target.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 100 && !accepts_connections(relay_port); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (!accepts_connections(relay_port)) {
    take_down();
    throw std::runtime_error("socat did not start relaying 10.0.2.2:" + std::to_string(relay_port));
  }
}

TapNetwork::~TapNetwork() {
  take_down();
}

void TapNetwork::take_down() {
  if (relay_pid_ > 0) {
    ::kill(-relay_pid_, SIGTERM);
    ::waitpid(relay_pid_, nullptr, 0);
    relay_pid_ = -1;
  }
  try {
    if (std::filesystem::exists("/sys/class/net/" + device_)) ip({"link", "delete", device_});
  } catch (const std::exception&) {
  }
}

}  // namespace kiln::test
