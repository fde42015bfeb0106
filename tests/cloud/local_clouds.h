#pragma once

// The servers the Azure and Google Cloud upload tests run on loopback, each started once per
// test binary and stopped when it exits:
// - Azurite (npm, pinned) for Blob storage, with an account and key made up per run;
// - gcp-storage-emulator (PyPI, pinned) for Cloud Storage, holding the bucket kiln-images;
// - cloud_control_fake.py, a FAKE of Microsoft Entra ID, Azure Resource Manager, Google's
//   OAuth endpoint and the Compute Engine API, which cannot run outside their clouds: it
//   checks the credentials kiln presents and logs the requests kiln sent for the tests.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "builder/util/base64.h"
#include "builder/util/files.h"
#include "cloud/moto_server.h"
#include "support/run_command.h"

namespace kiln::test {

/// `bytes` random bytes as hex: the made-up secrets of a test run.
inline std::string random_hex(int bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::random_device random;
  std::string out;
  for (int i = 0; i < bytes * 2; ++i) out += kDigits[random() % 16];
  return out;
}

/// A server process of the tests: started in its own process group with extra environment
/// variables (secrets go there, never into argv), ready once its port accepts connections.
class ChildServer {
 public:
  ChildServer(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::filesystem::path& workdir, int port)
      : port_(port) {
    std::filesystem::create_directories(workdir);
    std::string log = (workdir / "server.log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
      if (::chdir(workdir.c_str()) != 0) ::_exit(126);
      std::freopen(log.c_str(), "w", stdout);
      std::freopen(log.c_str(), "a", stderr);
      std::vector<const char*> args;
      for (const auto& arg : argv) args.push_back(arg.c_str());
      args.push_back(nullptr);
      ::execv(args[0], const_cast<char* const*>(args.data()));
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);
    for (int i = 0; i < 1200; ++i) {
      if (accepts()) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL(argv[0] << " exited; see " << log << ":\n" << kiln::read_file(log));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL(argv[0] << " did not listen on port " << port_ << "; see " << log);
  }
  ~ChildServer() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      ::kill(-pid_, SIGKILL);
    }
  }
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  bool accepts() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(std::uint16_t(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return ok;
  }
  int port_;
  pid_t pid_ = -1;
};

inline std::filesystem::path server_state(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  return std::filesystem::path(tmp ? tmp : "/tmp") / (name + "-" + std::to_string(::getpid()));
}

/// Azurite's Blob service with the account "kilntest" and a key made up for this run.
class Azurite {
 public:
  Azurite() : key_(make_key()), port_(free_port()), state_(server_state("azurite")) {
    server_ = std::make_unique<ChildServer>(
        std::vector<std::string>{std::string(KILN_AZURITE_DIR) + "/node_modules/.bin/azurite-blob",
                                 "--blobHost", "127.0.0.1", "--blobPort", std::to_string(port_),
                                 "--location", (state_ / "data").string(), "--silent",
                                 "--disableTelemetry"},
        std::map<std::string, std::string>{{"AZURITE_ACCOUNTS", "kilntest:" + key_}}, state_,
        port_);
  }
  ~Azurite() {
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(state_, ignored);
  }
  static Azurite& shared() {
    static Azurite azurite;
    return azurite;
  }
  std::string account() const { return "kilntest"; }
  std::string key() const { return key_; }
  std::string endpoint() const { return server_->url() + "/kilntest"; }
  int port() const { return port_; }

 private:
  static std::string make_key() {
    std::random_device random;
    std::string bytes;
    for (int i = 0; i < 64; ++i) bytes += char(random() & 0xff);
    return kiln::base64_encode(bytes);
  }
  std::string key_;
  int port_;
  std::filesystem::path state_;
  std::unique_ptr<ChildServer> server_;
};

/// gcp-storage-emulator, in memory, with the bucket kiln-images.
class GcsEmulator {
 public:
  GcsEmulator() : port_(free_port()), state_(server_state("gcs")) {
    server_ = std::make_unique<ChildServer>(
        std::vector<std::string>{std::string(KILN_GCS_EMULATOR_DIR) + "/bin/gcp-storage-emulator",
                                 "start", "--host", "127.0.0.1", "--port", std::to_string(port_),
                                 "--default-bucket", "kiln-images", "--in-memory"},
        std::map<std::string, std::string>{}, state_, port_);
  }
  ~GcsEmulator() {
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(state_, ignored);
  }
  static GcsEmulator& shared() {
    static GcsEmulator emulator;
    return emulator;
  }
  std::string url() const { return server_->url(); }

 private:
  int port_;
  std::filesystem::path state_;
  std::unique_ptr<ChildServer> server_;
};

/// cloud_control_fake.py (see its header): Entra ID, Resource Manager, Google OAuth and
/// Compute Engine, with a client secret and a service account key made up for this run.
class CloudControlFake {
 public:
  static constexpr const char* kTenant = "7c1f0e5a-kiln-test-tenant";
  static constexpr const char* kClientId = "0b2d4c6e-kiln-test-client";
  static constexpr const char* kEmail = "uploader@kiln-test.iam.gserviceaccount.com";

  CloudControlFake()
      : client_secret_("cs-" + random_hex(20)),
        port_(free_port()),
        state_(server_state("control")) {
    std::filesystem::create_directories(state_);
    auto made = kiln::test::run_command(
        "cd '" + state_.string() +
        "' && openssl genrsa -out sa.pem 2048 2>/dev/null && openssl rsa -in sa.pem -pubout "
        "-out sa.pub 2>/dev/null && chmod 600 sa.pem");
    REQUIRE(made.exit_code == 0);
    server_ = std::make_unique<ChildServer>(
        std::vector<std::string>{
            "/usr/bin/python3", std::string(KILN_SOURCE_DIR) + "/tests/cloud/cloud_control_fake.py",
            std::to_string(port_), (state_ / "requests.log").string(), kTenant, kClientId, kEmail,
            GcsEmulator::shared().url()},
        std::map<std::string, std::string>{
            {"FAKE_AZURE_CLIENT_SECRET", client_secret_},
            {"FAKE_GOOGLE_PUBLIC_KEY", (state_ / "sa.pub").string()}},
        state_ / "server", port_);
  }
  ~CloudControlFake() {
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(state_, ignored);
  }
  static CloudControlFake& shared() {
    static CloudControlFake fake;
    return fake;
  }
  std::string url() const { return server_->url(); }
  std::string client_secret() const { return client_secret_; }
  std::filesystem::path private_key() const { return state_ / "sa.pem"; }

  /// A service account key file as Google's console writes it, for this fake's token
  /// endpoint, signed with `key` (this run's key unless another is given).
  std::string service_account_json(const std::filesystem::path& key = {}) const {
    nlohmann::json doc = {{"type", "service_account"},
                          {"project_id", "kiln-test"},
                          {"private_key_id", "0123456789abcdef"},
                          {"private_key", kiln::read_file(key.empty() ? private_key() : key)},
                          {"client_email", kEmail},
                          {"client_id", "1234567890"},
                          {"token_uri", url() + "/google/token"}};
    return doc.dump(2);
  }

  /// The requests logged so far, optionally only those whose path starts with `prefix`.
  std::vector<nlohmann::json> requests(const std::string& prefix = "") const {
    std::vector<nlohmann::json> out;
    std::ifstream in(state_ / "requests.log");
    for (std::string line; std::getline(in, line);) {
      auto entry = nlohmann::json::parse(line);
      if (entry["path"].get<std::string>().rfind(prefix, 0) == 0) out.push_back(entry);
    }
    return out;
  }
  std::filesystem::path log() const { return state_ / "requests.log"; }

 private:
  std::string client_secret_;
  int port_;
  std::filesystem::path state_;
  std::unique_ptr<ChildServer> server_;
};

}  // namespace kiln::test
