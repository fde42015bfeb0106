#pragma once

// A real Keystone and Glance on loopback (openstack_cloud.py, from the build's virtualenv of
// PyPI's keystone and glance): kiln authenticates and uploads exactly as it would to a cloud.
// One cloud serves every test of a run; it stops when the test binary exits.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "builder/util/files.h"
#include "cloud/moto_server.h"

namespace kiln::test {

class OpenStackCloud {
 public:
  OpenStackCloud() : keystone_port_(free_port()), glance_port_(free_port()) {
    const char* tmp = std::getenv("TMPDIR");
    state_ =
        std::filesystem::path(tmp ? tmp : "/tmp") / ("openstack-" + std::to_string(::getpid()));
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);  // the servers it starts go down with it
      std::string python = std::string(KILN_OPENSTACK_DIR) + "/bin/python3";
      std::string script = std::string(KILN_SOURCE_DIR) + "/tests/cloud/openstack_cloud.py";
      std::string keystone = std::to_string(keystone_port_), glance = std::to_string(glance_port_);
      ::execl(python.c_str(), python.c_str(), script.c_str(), state_.c_str(), keystone.c_str(),
              glance.c_str(), nullptr);
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);
    auto done = state_ / "cloud.json";
    for (int i = 0; i < 1800 && !std::filesystem::exists(done); ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("openstack_cloud.py exited; see " << (state_ / "servers.log").string());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    REQUIRE(std::filesystem::exists(done));
    settings_ = nlohmann::json::parse(kiln::read_file(done));
  }
  ~OpenStackCloud() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      ::kill(-pid_, SIGKILL);  // anything left of the process group
    }
    std::error_code ignored;
    std::filesystem::remove_all(state_, ignored);
  }
  OpenStackCloud(const OpenStackCloud&) = delete;
  OpenStackCloud& operator=(const OpenStackCloud&) = delete;

  /// auth_url, image_url, region, project, username, password, application_credential_id
  /// and _secret (made up per run).
  std::string operator[](const std::string& key) const { return settings_.at(key); }
  /// Where Glance's file store keeps image ID's data.
  std::filesystem::path stored_image(const std::string& id) const {
    return state_ / "glance" / "images" / id;
  }

  /// The one cloud of this test run, started on first use.
  static OpenStackCloud& shared() {
    static OpenStackCloud cloud;
    return cloud;
  }

 private:
  int keystone_port_, glance_port_;
  std::filesystem::path state_;
  pid_t pid_ = -1;
  nlohmann::json settings_;
};

}  // namespace kiln::test
