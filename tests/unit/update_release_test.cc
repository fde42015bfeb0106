// Update releases: version order, the signed index, and the dm-verity slot check, against
// keys made by the openssl CLI and hash trees made by veritysetup.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <random>

#include "builder/update/image_version.h"
#include "builder/update/node_status.h"
#include "builder/update/release_signature.h"
#include "builder/update/update_index.h"
#include "builder/update/verity_check.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

UpdateRelease sample_release(const std::string& version) {
  auto file = [&](const std::string& role) {
    return UpdateFile{"worker_" + version + "." + role, 4096, std::string(64, 'a')};
  };
  return {version,           std::string(64, 'b'), "roothash=x ro console=ttyS0",
          file("root.img"),  file("verity"),       file("vmlinuz"),
          file("initrd.img")};
}

fs::path make_key(const fs::path& dir, const std::string& name, const std::string& algorithm) {
  fs::path key = dir / name;
  auto result = test::run_command("openssl genpkey " + algorithm + " -out " + key.string());
  REQUIRE(result.exit_code == 0);
  return key;
}

struct Fd {
  int fd;
  explicit Fd(const fs::path& p) : fd(::open(p.c_str(), O_RDONLY)) { REQUIRE(fd >= 0); }
  ~Fd() { ::close(fd); }
};

}  // namespace

TEST_CASE("image versions order as systemd orders releases", "[update]") {
  CHECK(compare_image_versions("1.0.0", "2.0.0") < 0);
  CHECK(compare_image_versions("1.10.0", "1.9.9") > 0);
  CHECK(compare_image_versions("1.0", "1.0.0") < 0);
  CHECK(compare_image_versions("1.0~rc1", "1.0") < 0);
  CHECK(compare_image_versions("1.0~rc1", "1.0~rc2") < 0);
  CHECK(compare_image_versions("1.0.1", "1.0.beta") > 0);
  CHECK(compare_image_versions("001.2", "1.2") == 0);
  CHECK(compare_image_versions("2026.12.1", "2026.12.1") == 0);
  CHECK(is_image_version("1.4.0"));
  CHECK(is_image_version("2026.12.1-rc1"));
  CHECK_FALSE(is_image_version(""));
  CHECK_FALSE(is_image_version("../1"));
  CHECK_FALSE(is_image_version("1/2"));
  CHECK_FALSE(is_image_version(".1"));
  CHECK_FALSE(is_image_version(std::string(65, '1')));
}

TEST_CASE("an update index renders sorted and parses back to the same releases", "[update]") {
  UpdateIndex index{"worker", "amd64", {sample_release("2.0.0"), sample_release("1.0.0")}};
  std::string text = render_update_index(index);
  CHECK(text == render_update_index(index));
  UpdateIndex parsed = parse_update_index(text);
  REQUIRE(parsed.releases.size() == 2);
  CHECK(parsed.releases[0].version == "1.0.0");
  CHECK(parsed.releases[1].root.name == "worker_2.0.0.root.img");
  CHECK(parsed.releases[1].cmdline == "roothash=x ro console=ttyS0");
  CHECK(newest_release(parsed)->version == "2.0.0");
  CHECK(render_update_index(parsed) == text);
}

TEST_CASE("an update index from the network is refused when any field is unsafe", "[update]") {
  std::string good = render_update_index({"worker", "amd64", {sample_release("1.0.0")}});
  auto broken = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  auto refused = [](const std::string& text, const std::string& words) {
    CHECK_THROWS_WITH(parse_update_index(text), Catch::Contains(words));
  };
  refused(broken("worker_1.0.0.root.img", "../../dev/sda"), "not a plain file name");
  refused(broken("\"size\": 4096", "\"size\": 18446744073709551615"), "out of range");
  refused(broken("\"size\": 4096", "\"size\": -1"), "wrong type");
  refused(broken("\"size\": 4096", "\"size\": 0"), "out of range");
  refused(broken(std::string(64, 'a'), std::string(64, 'A')), "64 lowercase hex");
  refused(broken("\"version\": \"1.0.0\"", "\"version\": \"1/0\""), "invalid version");
  refused(broken("\"schemaVersion\": 1", "\"schemaVersion\": 7"), "schemaVersion 7");
  refused(broken("console=ttyS0", "console=ttyS0\\u0000"), "control characters");
  refused(good.substr(0, good.size() / 2), "not a JSON object");
  refused(std::string(kMaxUpdateIndexBytes + 1, ' '), "larger than");
  std::string twice = render_update_index({"worker", "amd64", {sample_release("1.0.0")}});
  auto releases = twice.find("\"releases\": [") + 13;
  auto end = twice.rfind(']');
  std::string one = twice.substr(releases, end - releases);
  refused(twice.substr(0, end) + "," + one + twice.substr(end), "twice");
}

TEST_CASE("a release signed with Ed25519 or ECDSA P-256 verifies only with its own key",
          "[update]") {
  test::TempDir dir;
  fs::path ed = make_key(dir.path(), "ed.pem", "-algorithm ed25519");
  fs::path ec = make_key(dir.path(), "ec.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256");
  fs::path other = make_key(dir.path(), "other.pem", "-algorithm ed25519");
  std::vector<std::string> trusted = {public_key_of(ed), public_key_of(ec)};
  std::string index = render_update_index({"worker", "amd64", {sample_release("1.0.0")}});

  std::string by_ed = sign_release(ed, index);
  CHECK(by_ed == sign_release(ed, index));  // Ed25519 is deterministic
  CHECK(verify_release(trusted, index, by_ed) == std::optional<std::size_t>(0));
  CHECK(verify_release(trusted, index, sign_release(ec, index)) == std::optional<std::size_t>(1));
  CHECK_FALSE(verify_release(trusted, index, sign_release(other, index)));
  CHECK_FALSE(verify_release(trusted, index + " ", by_ed));
  CHECK_FALSE(verify_release(trusted, index, ""));
  CHECK_FALSE(verify_release(trusted, index, "not base64 !!"));
  CHECK_FALSE(verify_release(trusted, index, std::string(4096, 'A')));
  CHECK_FALSE(verify_release({}, index, by_ed));
}

TEST_CASE("signing keys kiln cannot use are refused without quoting them", "[update]") {
  test::TempDir dir;
  fs::path rsa = make_key(dir.path(), "rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
  fs::path p384 =
      make_key(dir.path(), "p384.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384");
  CHECK_THROWS_WITH(sign_release(rsa, "x"),
                    Catch::Contains("RSA key") && !Catch::Contains("BEGIN"));
  CHECK_THROWS_WITH(sign_release(p384, "x"), Catch::Contains("not P-256"));
  CHECK_THROWS_WITH(sign_release(dir.path() / "missing.pem", "x"), Catch::Contains("cannot read"));
  write_file_atomic(dir.path() / "junk.pem", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n");
  CHECK_THROWS_WITH(
      sign_release(dir.path() / "junk.pem", "x"),
      Catch::Contains("not an unencrypted PEM private key") && !Catch::Contains("c2VjcmV0"));
  CHECK(check_trusted_key(public_key_of(make_key(dir.path(), "ok.pem", "-algorithm ed25519"))) ==
        "");
  CHECK_THAT(check_trusted_key("hello"), Catch::Contains("not a PEM public key"));
}

TEST_CASE("a slot matches its dm-verity root hash exactly as veritysetup made it", "[update]") {
  test::TempDir dir;
  // 2 MiB + 4 KiB: two levels of tree with a partly filled last hash block.
  for (std::size_t blocks : {1u, 3u, 129u, 513u}) {
    INFO(blocks << " data blocks");
    fs::path data = dir.path() / "data", hash = dir.path() / "hash";
    std::string bytes(blocks * 4096, '\0');
    std::mt19937 random(blocks);
    for (auto& c : bytes) c = static_cast<char>(random());
    write_file_atomic(data, bytes);
    fs::remove(hash);
    auto format = test::run_command("veritysetup format --salt=00112233 " + data.string() + " " +
                                    hash.string() + " | awk '/Root hash/ {print $3}'");
    REQUIRE(format.exit_code == 0);
    std::string root_hash = format.output.substr(0, 64);
    {
      Fd d(data), h(hash);
      CHECK(verify_verity(d.fd, bytes.size(), h.fd, root_hash) == "");
      CHECK_THAT(verify_verity(d.fd, bytes.size(), h.fd, std::string(64, '0')),
                 Catch::Contains("not the"));
    }
    // One flipped bit in the data, then in the stored tree: both are found.
    write_at(data, std::string(1, char(bytes[4096 * blocks / 2] ^ 1)), 4096 * blocks / 2);
    {
      Fd d(data), h(hash);
      CHECK(verify_verity(d.fd, bytes.size(), h.fd, root_hash) != "");
    }
    write_file_atomic(data, bytes);
    if (blocks > 1) {
      std::string tree = read_file(hash);
      write_at(hash, std::string(1, char(tree[4096 + 7] ^ 1)), 4096 + 7);
      Fd d(data), h(hash);
      CHECK_THAT(verify_verity(d.fd, bytes.size(), h.fd, root_hash), Catch::Contains("differs"));
    }
  }
}

TEST_CASE("the health check reads a Node's kubelet version from any API answer without throwing",
          "[update]") {
  CHECK(reported_kubelet_version(R"({"status":{"nodeInfo":{"kubeletVersion":"v1.35.4"}}})") ==
        std::optional<std::string>("v1.35.4"));
  CHECK_FALSE(reported_kubelet_version(R"({"status":"Ready"})"));
  CHECK_FALSE(reported_kubelet_version(R"({"status":{"nodeInfo":[1,2]}})"));
  CHECK_FALSE(reported_kubelet_version(R"({"status":{"nodeInfo":{"kubeletVersion":7}}})"));
  CHECK_FALSE(reported_kubelet_version(R"({"status":{"nodeInfo":{"kubeletVersion":"v1\nx"}}})"));
  CHECK_FALSE(reported_kubelet_version("[]"));
  CHECK_FALSE(reported_kubelet_version("{\"status\":"));
  CHECK_FALSE(reported_kubelet_version(R"({"status":{"nodeInfo":{"kubeletVersion":")" +
                                       std::string(100, 'v') + "\"}}}"));
}
