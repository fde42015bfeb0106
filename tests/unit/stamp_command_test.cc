// `kiln stamp` leaves a stamped image readable only by its owner (it holds the token) unless
// told to keep its mode, and warns when the join config it reads is readable by others.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "builder/util/files.h"
#include "support/join_config_text.h"
#include "support/run_command.h"
#include "support/small_gpt_image.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kSecret = "0123456789abcdef";

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

struct Stamping {
  kiln::test::TempDir dir;
  fs::path image = kiln::test::small_gpt_image(dir.path());
  fs::path config = dir.path() / "join.yaml";

  explicit Stamping(unsigned config_mode = 0600) {
    kiln::write_file_atomic(config, kiln::test::join_config_text("2099-01-01T00:00:00Z"),
                            config_mode);
    ::chmod(image.c_str(), 0644);
  }
  kiln::test::CommandResult stamp(const std::string& extra = "") const {
    return kiln::test::run_command(std::string(KILN_BINARY) + " stamp " + image.string() +
                                   " --join " + config.string() + extra);
  }
};

}  // namespace

TEST_CASE("kiln stamp makes the image 0600 and says so") {
  Stamping s;
  auto result = s.stamp();
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK(mode_of(s.image) == 0600);
  CHECK_THAT(result.output,
             Catch::Contains("kiln: made " + s.image.string() +
                             " mode 0600 (it was 0644): it holds the token; --keep-mode keeps "
                             "the mode"));
  CHECK(result.output.find(kSecret) == std::string::npos);
  auto show =
      kiln::test::run_command(std::string(KILN_BINARY) + " stamp --show " + s.image.string());
  CHECK(show.exit_code == 0);
  CHECK_THAT(show.output, Catch::Contains("endpoint       https://10.0.2.2:6443"));
}

TEST_CASE("kiln stamp --keep-mode keeps the image's mode and warns that others can read it") {
  Stamping s;
  auto result = s.stamp(" --keep-mode");
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK(mode_of(s.image) == 0644);
  CHECK_THAT(result.output, Catch::Contains("kiln: warning: " + s.image.string() +
                                            " holds the token and stays mode 0644 "
                                            "(--keep-mode): others can read it"));
}

TEST_CASE("kiln stamp says nothing about the mode of an image that is already 0600") {
  Stamping s;
  ::chmod(s.image.c_str(), 0600);
  auto result = s.stamp();
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK(result.output.find("mode") == std::string::npos);
}

TEST_CASE("kiln stamp warns about a join config others can read") {
  Stamping s(0644);
  auto result = s.stamp();
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("kiln: warning: " + s.config.string() +
                                            " holds a bootstrap token and every user can read "
                                            "it (mode 0644); run: chmod 600 " +
                                            s.config.string()));
  CHECK(result.output.find(kSecret) == std::string::npos);
}

TEST_CASE("kiln stamp warns about a join config its group can read, and not about a private one") {
  Stamping group(0640);
  CHECK_THAT(group.stamp().output, Catch::Contains("its group can read it (mode 0640)"));
  Stamping owner(0600);
  CHECK(owner.stamp().output.find("warning") == std::string::npos);
}

TEST_CASE(
    "kiln stamp --update-url gives one node its own update source and keeps its join "
    "config") {
  Stamping s;
  auto url = [&](const std::string& value) {
    return kiln::test::run_command(std::string(KILN_BINARY) + " stamp " + s.image.string() +
                                   " --update-url " + value);
  };
  auto show = [&] {
    return kiln::test::run_command(std::string(KILN_BINARY) + " stamp --show " + s.image.string())
        .output;
  };
  REQUIRE(s.stamp().exit_code == 0);
  auto first = url("http://10.0.0.5/pool-a/");
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  CHECK_THAT(show(), Catch::Contains("update source  http://10.0.0.5/pool-a/\n") &&
                         Catch::Contains("endpoint       https://10.0.2.2:6443"));
  // A new token later keeps the node's update source.
  REQUIRE(s.stamp().exit_code == 0);
  CHECK_THAT(show(), Catch::Contains("update source  http://10.0.0.5/pool-a/\n"));
  auto bad = url("'ftp://x/'");
  CHECK(bad.exit_code != 0);
  CHECK_THAT(bad.output, Catch::Contains("must be an http:// URL"));
}

TEST_CASE(
    "kiln stamp --network writes a node's static network beside its join config, and refuses "
    "a malformed one before writing anything",
    "[network]") {
  Stamping s;
  auto run = [&](const std::string& args) {
    return kiln::test::run_command(std::string(KILN_BINARY) + " stamp " + args);
  };
  fs::path network = s.dir.path() / "node-17.yaml";
  kiln::write_file_atomic(network,
                          "network:\n  version: 2\n  ethernets:\n    uplink:\n"
                          "      match: {macaddress: \"52:54:00:12:34:99\"}\n"
                          "      addresses: [192.168.77.10/24]\n"
                          "      routes: [{to: default, via: 192.168.77.1}]\n");
  auto stamped =
      run(s.image.string() + " --join " + s.config.string() + " --network " + network.string());
  INFO(stamped.output);
  REQUIRE(stamped.exit_code == 0);
  auto shown = run("--show " + s.image.string());
  CHECK_THAT(shown.output,
             Catch::Contains("network        uplink (mac 52:54:00:12:34:99): 192.168.77.10/24; "
                             "via 192.168.77.1\n"));
  CHECK_THAT(shown.output, Catch::Contains("endpoint       https://10.0.2.2:6443"));
  auto json = run("--show --json " + s.image.string());
  CHECK_THAT(json.output, Catch::Contains("\"matchMacAddress\": \"52:54:00:12:34:99\""));
  // A new token later keeps the network, and the network alone can be re-stamped.
  REQUIRE(s.stamp().exit_code == 0);
  CHECK_THAT(run("--show " + s.image.string()).output, Catch::Contains("network        uplink"));

  fs::path bad = s.dir.path() / "bad.yaml";
  kiln::write_file_atomic(bad,
                          "network:\n  version: 2\n  ethernets:\n    uplink:\n"
                          "      addresses: [192.168.77.10]\n");
  std::string before = kiln::read_file(s.image);
  auto refused =
      run(s.image.string() + " --join " + s.config.string() + " --network " + bad.string());
  CHECK(refused.exit_code != 0);
  CHECK_THAT(refused.output, Catch::Contains(bad.string() + ":5:19: error: address "
                                                            "'192.168.77.10' of uplink must be "
                                                            "ADDRESS/PREFIX"));
  CHECK(kiln::read_file(s.image) == before);
}
