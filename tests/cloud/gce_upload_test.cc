// kiln upload gce against gcp-storage-emulator (Cloud Storage's JSON API on loopback) and the
// fake OAuth endpoint and Compute Engine API of cloud_control_fake.py: the object equals the
// default image's gce.tar.gz, the service account's signed JWT is accepted, images.insert is
// checked as sent (guest OS features, source, architecture), throttling and a dropped part are
// retried, an upload stopped mid-way resumes without sending a part twice, a key the token
// endpoint refuses gets exit 6, and no secret reaches output, argv, the cache or a log.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "builder/upload/rest_session.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "cloud/cloud_test_support.h"
#include "cloud/local_clouds.h"
#include "cloud/moto_server.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::test::argv_containing;
using kiln::test::CloudControlFake;
using kiln::test::files_containing;
using kiln::test::GcsEmulator;
using kiln::test::parse_result;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kTarball = kImage / "worker.gce.tar.gz";

std::string upload_command(const std::string& args) {
  return std::string(KILN_BINARY) + " upload gce " + kImage.string() + " " + args;
}

/// A fresh HOME and cache, the service account key file, and the servers' addresses as
/// Google's own tools take them.
class GoogleEnvironment : public kiln::test::ScopedEnvironment {
 public:
  GoogleEnvironment(const fs::path& home, const std::string& storage_url,
                    const fs::path& signing_key = {}) {
    CloudControlFake& control = CloudControlFake::shared();
    fs::create_directories(home);
    key_file_ = home / "service-account.json";
    kiln::write_file_atomic(key_file_, control.service_account_json(signing_key), 0600);
    set("HOME", home.string());
    set("KILN_CACHE", (home / "cache").string());
    for (const char* name : {"CLOUDSDK_AUTH_ACCESS_TOKEN", "CLOUDSDK_CORE_PROJECT",
                             "GOOGLE_CLOUD_PROJECT", "GCE_METADATA_HOST"})
      unset(name);
    set("GOOGLE_APPLICATION_CREDENTIALS", key_file_.string());
    set("STORAGE_EMULATOR_HOST", storage_url);
    set("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", control.url() + "/compute/v1/");
  }
  fs::path key_file() const { return key_file_; }

 private:
  fs::path key_file_;
};

/// A line from the middle of this run's private key: in any file or output it would mean
/// the key leaked.
std::string key_fragment() {
  std::string pem = kiln::read_file(CloudControlFake::shared().private_key());
  return pem.substr(pem.find('\n', 200) + 1, 40);
}

kiln::upload::RestReply storage_get(const std::string& path, std::size_t cap = 4 << 20) {
  kiln::upload::RestSession session({}, {});
  return session.send_once({.url = GcsEmulator::shared().url() + path, .what = path}, cap);
}

/// The object's bytes equal the tarball's, and no part object is left beside it.
void check_object(const std::string& object) {
  auto data = storage_get("/download/storage/v1/b/kiln-images/o/" + object + "?alt=media",
                          std::size_t(1) << 30);
  REQUIRE(data.status == 200);
  CHECK(data.body.size() == fs::file_size(kTarball));
  CHECK(kiln::sha256_hex(data.body) == kiln::sha256_file(kTarball));
  auto listing = storage_get("/storage/v1/b/kiln-images/o?prefix=" + object);
  REQUIRE(listing.status == 200);
  auto items = nlohmann::json::parse(listing.body).value("items", nlohmann::json::array());
  REQUIRE(items.size() == 1);
  CHECK(items[0]["name"] == object);
}

}  // namespace

TEST_CASE(
    "kiln upload gce stores the tarball in Cloud Storage equal to gce.tar.gz through throttling "
    "and a dropped part, and sends images.insert with the guest OS features and the source",
    "[cloud][gce]") {
  CloudControlFake& control = CloudControlFake::shared();
  kiln::test::TempDir work;
  kiln::test::FaultProxy proxy(GcsEmulator::shared().url(), (work.path() / "requests.log").string(),
                               {"--throttle", "2", "--drop-post", "3"});
  GoogleEnvironment env(work.path(), proxy.url());

  auto upload = std::async(std::launch::async, [&] {
    return kiln::test::run_stdout(
        upload_command("--name kiln-worker --bucket kiln-images "
                       "--family kiln --json 2> " +
                       (work.path() / "err").string()));
  });
  std::set<std::string> argv_hits;
  while (upload.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    for (const auto& pid : argv_containing(key_fragment())) argv_hits.insert(pid);
  }
  auto run = upload.get();
  std::string printed = run.output + kiln::read_file(work.path() / "err");
  INFO(printed);
  auto result = parse_result(run);
  CHECK(result["project"] == "kiln-test");  // the service account key's project
  CHECK(result["source"] == "https://storage.googleapis.com/kiln-images/kiln-worker.tar.gz");
  CHECK(result["selfLink"] ==
        "https://www.googleapis.com/compute/v1/projects/kiln-test/global/images/kiln-worker");
  CHECK(printed.find("read object kiln-worker.tar.gz: HTTP 503; retrying") != std::string::npos);
  check_object("kiln-worker.tar.gz");

  // Each part was sent once, except the one the proxy cut off, sent once more.
  std::map<std::string, int> parts;
  int dropped = 0;
  for (const auto& request : proxy.requests()) {
    std::string path = request["path"];
    if (request["method"] != "POST" || path.find("uploadType=media") == std::string::npos) continue;
    if (request.value("fault", "") == "dropped") {
      ++dropped;
      continue;
    }
    ++parts[path];
  }
  CHECK(dropped == 1);
  CHECK(parts.size() == std::size_t(std::ceil(fs::file_size(kTarball) / double(32 << 20))));
  for (const auto& [path, count] : parts) {
    INFO(path);
    CHECK(count == 1);
  }

  // The token came from the service account's signed JWT; images.insert as Compute Engine
  // received it.
  auto token = control.requests("/google/token");
  REQUIRE(!token.empty());
  CHECK(token.back()["status"] == 200);
  CHECK(token.back()["form"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer");
  nlohmann::json insert;
  for (const auto& request : control.requests("/compute/v1/projects/kiln-test/global/images"))
    if (request["method"] == "POST") insert = request;
  REQUIRE(insert.is_object());
  CHECK(insert["authorized"] == true);
  CHECK(insert["body"]["name"] == "kiln-worker");
  CHECK(insert["body"]["family"] == "kiln");
  CHECK(insert["body"]["architecture"] == "X86_64");
  CHECK(insert["body"]["rawDisk"]["source"] ==
        "https://storage.googleapis.com/kiln-images/kiln-worker.tar.gz");
  CHECK(insert["body"]["guestOsFeatures"] ==
        nlohmann::json::parse(R"([{"type":"UEFI_COMPATIBLE"},{"type":"VIRTIO_SCSI_MULTIQUEUE"},
                                  {"type":"GVNIC"}])"));
  CHECK(insert["body"]["labels"]["kiln-image"] == "worker");

  CHECK(argv_hits.empty());
  for (const auto& secret : {key_fragment(), std::string("fake-access-")}) {
    CHECK(printed.find(secret) == std::string::npos);
    CHECK(files_containing(work.path() / "cache", secret).empty());
    CHECK(files_containing(work.path() / "requests.log", secret).empty());
    CHECK(files_containing(control.log(), secret).empty());
  }

  // The same command again finds the image made from this object and sends nothing.
  auto again = kiln::test::run_command(upload_command("--name kiln-worker --bucket kiln-images"));
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK(again.output.find("image kiln-worker already exists from "
                          "gs://kiln-images/kiln-worker.tar.gz") != std::string::npos);
}

TEST_CASE(
    "a Cloud Storage upload stopped mid-way resumes from its journal without sending a part "
    "twice",
    "[cloud][gce]") {
  kiln::test::TempDir work;
  kiln::test::FaultProxy proxy(GcsEmulator::shared().url(), (work.path() / "requests.log").string(),
                               {"--refuse", "POST:4"});
  GoogleEnvironment env(work.path(), proxy.url());
  const std::string flags = "--name kiln-resumed --bucket kiln-images --jobs 2";

  auto first = kiln::test::run_command(upload_command(flags));
  INFO(first.output);
  CHECK(first.exit_code == 6);
  CHECK(first.output.find("run the same command again to resume") != std::string::npos);

  auto second = kiln::test::run_command(upload_command(flags + " --json"));
  INFO(second.output);
  REQUIRE(second.exit_code == 0);
  CHECK(second.output.find("resuming: ") != std::string::npos);
  auto json = nlohmann::json::parse(second.output.substr(second.output.find("{\n")));
  CHECK(json["partsResumed"].get<int>() >= 2);

  std::map<std::string, int> parts;
  for (const auto& request : proxy.requests()) {
    std::string path = request["path"];
    if (request["method"] == "POST" && path.find("uploadType=media") != std::string::npos &&
        request["status"] == 200)
      ++parts[path];
  }
  for (const auto& [path, count] : parts) {
    INFO(path);
    CHECK(count == 1);
  }
  check_object("kiln-resumed.tar.gz");
}

TEST_CASE("a service account key the token endpoint refuses ends the upload with exit code 6",
          "[cloud][gce]") {
  kiln::test::TempDir work;
  REQUIRE(kiln::test::run_command("openssl genrsa -out '" + (work.path() / "other.pem").string() +
                                  "' 2048 2>/dev/null")
              .exit_code == 0);
  GoogleEnvironment env(work.path() / "home", GcsEmulator::shared().url(),
                        work.path() / "other.pem");
  auto run = kiln::test::run_command(upload_command("--name kiln-denied --bucket kiln-images"));
  INFO(run.output);
  CHECK(run.exit_code == 6);
  CHECK(run.output.find("OAuth token (GOOGLE_APPLICATION_CREDENTIALS (") != std::string::npos);
  CHECK(run.output.find("HTTP 400: invalid_grant: Invalid JWT Signature.") != std::string::npos);
  CHECK(storage_get("/storage/v1/b/kiln-images/o/kiln-denied.tar.gz").status == 404);
}

TEST_CASE("--dry-run prints Google Cloud's requests without any secret and sends none",
          "[cloud][gce]") {
  kiln::test::TempDir work;
  GoogleEnvironment env(work.path(), "http://127.0.0.1:9");  // nothing listens there
  auto run = kiln::test::run_command(
      upload_command("--name kiln-dry --bucket kiln-images --project other-project --dry-run"));
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("assertion=<JWT signed with the key of " +
                        std::string(CloudControlFake::kEmail) + ">") != std::string::npos);
  CHECK(run.output.find("/projects/other-project/global/images\n") != std::string::npos);
  CHECK(run.output.find("{\"type\":\"GVNIC\"}") != std::string::npos);
  CHECK(run.output.find(key_fragment()) == std::string::npos);
  CHECK(files_containing(work.path() / "cache", "kiln-dry").empty());
}
