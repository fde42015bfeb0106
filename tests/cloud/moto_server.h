#pragma once

// moto's server mode (the moto package from PyPI, in the build's virtualenv): real AWS API
// endpoints for EBS and EC2 on loopback. kiln's requests reach it exactly as they would reach
// AWS, signed; moto keeps the snapshots' blocks and the images. In front of it, FaultProxy
// (fault_proxy.py) logs every request as kiln sent it and injects faults.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "builder/fetch/http.h"

namespace kiln::test {

/// A port nothing listens on now (the kernel's pick for a socket bound to port 0) and not
/// handed out before in this process: the kernel may pick a just-closed port again, and two
/// servers of one test given the same port would have one of them answer for both.
inline int free_port() {
  static std::set<int> handed_out;
  for (;;) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    int port = ntohs(address.sin_port);
    if (handed_out.insert(port).second) return port;
  }
}

class MotoServer {
 public:
  /// `authenticate`: requests must carry an access key moto's IAM knows (none does), as AWS
  /// checks them (moto's INITIAL_NO_AUTH_ACTION_COUNT=0).
  explicit MotoServer(bool authenticate = false) : port_(free_port()) {
    pid_ = ::fork();
    if (pid_ == 0) {
      if (authenticate) ::setenv("INITIAL_NO_AUTH_ACTION_COUNT", "0", 1);
      std::string log = std::string(::getenv("TMPDIR") ? ::getenv("TMPDIR") : "/tmp") + "/moto-" +
                        std::to_string(port_) + ".log";
      std::freopen(log.c_str(), "w", stdout);
      std::freopen(log.c_str(), "a", stderr);
      std::string binary = std::string(KILN_MOTO_DIR) + "/bin/moto_server";
      std::string port = std::to_string(port_);
      ::execl(binary.c_str(), binary.c_str(), "-H", "127.0.0.1", "-p", port.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 600; ++i) {
      std::string body;
      if (kiln::http::get_text(url() + "/moto-api/data.json", body, 2).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("moto_server did not answer on port " << port_);
  }
  ~MotoServer() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  MotoServer(const MotoServer&) = delete;
  MotoServer& operator=(const MotoServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

/// tests/cloud/fault_proxy.py in front of `upstream`: a log line per request (JSON), and the
/// faults its options ask for (--throttle N, --drop-put N).
class FaultProxy {
 public:
  FaultProxy(const std::string& upstream, const std::string& log,
             const std::vector<std::string>& faults = {})
      : port_(free_port()), log_(log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string python = "/usr/bin/python3";  // the proxy needs only the standard library
      std::string script = std::string(KILN_SOURCE_DIR) + "/tests/cloud/fault_proxy.py";
      std::string port = std::to_string(port_);
      std::vector<const char*> argv = {python.c_str(), script.c_str(), port.c_str(),
                                       upstream.c_str(), log.c_str()};
      for (const auto& fault : faults) argv.push_back(fault.c_str());
      argv.push_back(nullptr);
      ::execv(python.c_str(), const_cast<char* const*>(argv.data()));
      ::_exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      std::string body;
      if (kiln::http::get_text(url() + "/fault-proxy/ready", body, 2).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("fault_proxy.py did not answer on port " << port_);
  }
  ~FaultProxy() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// The requests logged so far (the readiness probe's GET of /moto-api/ left out).
  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);) {
      auto entry = nlohmann::json::parse(line);
      if (entry["path"].get<std::string>().rfind("/moto-api/", 0) != 0) out.push_back(entry);
    }
    return out;
  }

 private:
  int port_;
  std::string log_;
  pid_t pid_ = -1;
};

}  // namespace kiln::test
