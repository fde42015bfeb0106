// kiln upload openstack against a real Keystone and Glance on loopback (never a real cloud):
// the image Glance stores equals the default image's qcow2 byte for byte and carries the boot
// properties, password (clouds.yaml + secure.yaml) and application-credential (OS_*) auth
// both work, a dropped upload and throttling are retried, refused credentials get exit 6, a
// second run sends nothing, and no secret appears in output, argv, the cache or the log.
#include <catch2/catch.hpp>
#include <filesystem>
#include <future>
#include <set>

#include "builder/upload/rest_session.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "cloud/cloud_test_support.h"
#include "cloud/moto_server.h"
#include "cloud/openstack_cloud.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::test::argv_containing;
using kiln::test::files_containing;
using kiln::test::OpenStackCloud;
using kiln::test::parse_result;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kQcow2 = kImage / "worker.qcow2";

std::string upload_command(const std::string& args) {
  return std::string(KILN_BINARY) + " upload openstack " + kImage.string() + " " + args;
}

/// A fresh HOME and cache for kiln, and none of the machine's OS_* settings.
class OpenStackEnvironment : public kiln::test::ScopedEnvironment {
 public:
  explicit OpenStackEnvironment(const fs::path& home) {
    set("HOME", home.string());
    set("KILN_CACHE", (home / "cache").string());
    for (const char* name : {"OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD",
                             "OS_PROJECT_NAME", "OS_CLIENT_CONFIG_FILE", "OS_AUTH_TYPE"})
      unset(name);
  }
};

/// Reads back what Glance holds, as the test project's user (its own Keystone token).
class GlanceReader {
 public:
  explicit GlanceReader(OpenStackCloud& cloud) : cloud_(cloud), session_({}, {"x-subject-token"}) {
    nlohmann::json body = {{"auth",
                            {{"identity",
                              {{"methods", {"password"}},
                               {"password",
                                {{"user",
                                  {{"name", cloud["username"]},
                                   {"domain", {{"id", "default"}}},
                                   {"password", cloud["password"]}}}}}}},
                             {"scope", {{"project", {{"id", cloud["project_id"]}}}}}}}};
    auto reply = session_.send_once({.method = "POST",
                                     .url = cloud["auth_url"] + "/auth/tokens",
                                     .body = body.dump(),
                                     .what = "test token"});
    REQUIRE(reply.status == 201);
    token_ = reply.headers.at("x-subject-token");
  }
  nlohmann::json get(const std::string& path) {
    auto reply = session_.send_once({.url = cloud_["image_url"] + "/v2" + path,
                                     .headers = {"X-Auth-Token: " + token_},
                                     .what = path});
    INFO(reply.body);
    REQUIRE(reply.status == 200);
    return nlohmann::json::parse(reply.body);
  }
  std::vector<nlohmann::json> named(const std::string& name) {
    auto images = get("/images?name=" + name)["images"];
    return {images.begin(), images.end()};
  }

 private:
  OpenStackCloud& cloud_;
  kiln::upload::RestSession session_;
  std::string token_;
};

/// clouds.yaml with the cloud's public settings, secure.yaml with its password: the split
/// OpenStack's clients read.
void write_clouds_yaml(const fs::path& home, OpenStackCloud& cloud, const std::string& password) {
  fs::create_directories(home / ".config/openstack");
  kiln::write_file_atomic(home / ".config/openstack/clouds.yaml",
                          "clouds:\n  kiln-test:\n    auth:\n      auth_url: " + cloud["auth_url"] +
                              "\n      username: " + cloud["username"] +
                              "\n      project_name: " + cloud["project"] +
                              "\n      user_domain_name: Default\n      project_domain_name: "
                              "Default\n    region_name: RegionOne\n    interface: public\n");
  kiln::write_file_atomic(home / ".config/openstack/secure.yaml",
                          "clouds:\n  kiln-test:\n    auth:\n      password: " + password + "\n",
                          0600);
}

/// Checks the image is active, equals the qcow2 (Glance's checksums and its stored file) and
/// carries the boot properties.
void check_image(OpenStackCloud& cloud, GlanceReader& glance, const std::string& id) {
  auto image = glance.get("/images/" + id);
  INFO(image.dump(2));
  CHECK(image["status"] == "active");
  CHECK(image["disk_format"] == "qcow2");
  CHECK(image["container_format"] == "bare");
  CHECK(image["visibility"] == "private");
  CHECK(image["size"] == fs::file_size(kQcow2));
  CHECK(image["os_hash_algo"] == "sha512");
  CHECK(image["architecture"] == "x86_64");
  CHECK(image["hw_firmware_type"] == "uefi");
  CHECK(image["hw_machine_type"] == "q35");
  CHECK(image["hw_disk_bus"] == "virtio");
  CHECK(image["os_distro"] == "debian");
  CHECK(image["os_version"] == "13");
  CHECK(image["os_type"] == "linux");
  CHECK(image["kiln_image"] == "worker");
  CHECK(image["min_disk"] == 3);  // the 3 GiB disk, rounded up
  // Glance's own checksum of what it received, and the bytes its store holds.
  CHECK(kiln::sha256_file(cloud.stored_image(id)) == kiln::sha256_file(kQcow2));
  CHECK(fs::file_size(cloud.stored_image(id)) == fs::file_size(kQcow2));
}

}  // namespace

TEST_CASE(
    "kiln upload openstack authenticates with Keystone from clouds.yaml and secure.yaml and "
    "stores the qcow2 in Glance byte for byte with the properties Nova boots it by",
    "[cloud][openstack]") {
  OpenStackCloud& cloud = OpenStackCloud::shared();
  kiln::test::TempDir work;
  OpenStackEnvironment env(work.path());
  write_clouds_yaml(work.path(), cloud, cloud["password"]);

  auto upload = std::async(std::launch::async, [&] {
    return kiln::test::run_stdout(upload_command(
        "--cloud kiln-test --name kiln-test-worker --json 2> " + (work.path() / "err").string()));
  });
  std::set<std::string> argv_hits;
  while (upload.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    for (const auto& pid : argv_containing(cloud["password"])) argv_hits.insert(pid);
  }
  auto run = upload.get();
  std::string printed = run.output + kiln::read_file(work.path() / "err");
  INFO(printed);
  auto result = parse_result(run);
  std::string id = result["imageId"];
  CHECK(result["diskFormat"] == "qcow2");
  CHECK(result["bytesSent"] == fs::file_size(kQcow2));
  CHECK(result["attempts"] == 1);
  GlanceReader glance(cloud);
  check_image(cloud, glance, id);
  CHECK(argv_hits.empty());
  CHECK(printed.find(cloud["password"]) == std::string::npos);
  CHECK(files_containing(work.path() / "cache", cloud["password"]).empty());

  // The same command again finds the verified image and sends nothing.
  auto again = kiln::test::run_command(upload_command("--cloud kiln-test --name kiln-test-worker"));
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK(again.output.find("already uploaded as " + id) != std::string::npos);
  CHECK(glance.named("kiln-test-worker").size() == 1);

  // Another command for the same name (a fresh cache knows no journal) is refused.
  OpenStackEnvironment other(work.path() / "other");
  write_clouds_yaml(work.path() / "other", cloud, cloud["password"]);
  auto duplicate =
      kiln::test::run_command(upload_command("--cloud kiln-test --name kiln-test-worker"));
  CHECK(duplicate.exit_code == 6);
  CHECK(duplicate.output.find("already exists (" + id + ")") != std::string::npos);
}

TEST_CASE(
    "an application credential from OS_* variables uploads through throttling and a "
    "connection dropped mid-upload, sending the file once more",
    "[cloud][openstack]") {
  OpenStackCloud& cloud = OpenStackCloud::shared();
  kiln::test::TempDir work;
  OpenStackEnvironment env(work.path());
  // Glance is reached through the proxy: the image endpoint override, as for a cloud whose
  // catalog names an address the uploader cannot reach.
  kiln::test::FaultProxy proxy(cloud["image_url"], (work.path() / "requests.log").string(),
                               {"--throttle", "2", "--drop-put", "1"});
  env.set("OS_AUTH_URL", cloud["auth_url"]);
  env.set("OS_AUTH_TYPE", "v3applicationcredential");
  env.set("OS_APPLICATION_CREDENTIAL_ID", cloud["application_credential_id"]);
  env.set("OS_APPLICATION_CREDENTIAL_SECRET", cloud["application_credential_secret"]);
  env.set("OS_IMAGE_ENDPOINT_OVERRIDE", proxy.url());

  auto run = kiln::test::run_command(upload_command("--name kiln-test-faults"));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  std::string id = run.output.substr(run.output.rfind('\n', run.output.size() - 2) + 1);
  id.pop_back();
  CHECK(run.output.find("HTTP 503; retrying") != std::string::npos);
  CHECK(run.output.find("sending the file again") != std::string::npos);

  int throttled = 0, dropped = 0, puts = 0;
  for (const auto& request : proxy.requests()) {
    std::string fault = request.value("fault", "");
    throttled += fault == "throttled";
    dropped += fault == "dropped";
    puts += request["method"] == "PUT";
  }
  CHECK(throttled == 2);
  CHECK(dropped == 1);
  CHECK(puts == 2);  // the dropped one and the one that completed: nothing more
  GlanceReader glance(cloud);
  check_image(cloud, glance, id);
  const std::string secret = cloud["application_credential_secret"];
  CHECK(run.output.find(secret) == std::string::npos);
  CHECK(files_containing(work.path(), secret).empty());  // cache and the request log
}

TEST_CASE("credentials Keystone refuses end the upload with exit code 6 and Keystone's words",
          "[cloud][openstack]") {
  OpenStackCloud& cloud = OpenStackCloud::shared();
  kiln::test::TempDir work;
  OpenStackEnvironment env(work.path());
  const std::string wrong = "not-the-password-Qm4Tz8";
  write_clouds_yaml(work.path(), cloud, wrong);
  auto run = kiln::test::run_command(upload_command("--cloud kiln-test --name kiln-test-denied"));
  INFO(run.output);
  CHECK(run.exit_code == 6);
  CHECK(run.output.find("Keystone authentication (cloud 'kiln-test' in ") != std::string::npos);
  CHECK(run.output.find("HTTP 401") != std::string::npos);
  CHECK(run.output.find(wrong) == std::string::npos);
  GlanceReader glance(cloud);
  CHECK(glance.named("kiln-test-denied").empty());
}

TEST_CASE("--dry-run prints Keystone's and Glance's requests without any secret and sends none",
          "[cloud][openstack]") {
  OpenStackCloud& cloud = OpenStackCloud::shared();
  kiln::test::TempDir work;
  OpenStackEnvironment env(work.path());
  env.set("OS_AUTH_URL", cloud["auth_url"]);
  env.set("OS_USERNAME", cloud["username"]);
  env.set("OS_PROJECT_NAME", cloud["project"]);  // no OS_PASSWORD: a dry run needs none
  auto run = kiln::test::run_command(upload_command("--name kiln-test-dry --dry-run"));
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("POST " + cloud["auth_url"] + "/auth/tokens") != std::string::npos);
  CHECK(run.output.find("\"password\":\"<secret>\"") != std::string::npos);
  CHECK(run.output.find("\"hw_firmware_type\":\"uefi\"") != std::string::npos);
  CHECK(run.output.find("PUT <the catalog's image endpoint>/images/IMAGE_ID/file") !=
        std::string::npos);
  GlanceReader glance(cloud);
  CHECK(glance.named("kiln-test-dry").empty());
}
