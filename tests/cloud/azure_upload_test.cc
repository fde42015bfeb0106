// kiln upload azure against Azurite (a real Blob service on loopback) and the fake Resource
// Manager and Entra ID of cloud_control_fake.py: the page blob reads back equal to the
// default image's VHD while only the pages holding data were written, the image-create request
// is checked as sent, throttling and a dropped page write are retried, an upload stopped
// mid-way resumes without writing a block twice, refused credentials get exit 6 before any
// data moves, and no secret reaches output, argv, the cache or a log.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "builder/upload/azure_blob.h"
#include "builder/util/base64.h"
#include "builder/util/files.h"
#include "cloud/cloud_test_support.h"
#include "cloud/local_clouds.h"
#include "cloud/moto_server.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::test::argv_containing;
using kiln::test::Azurite;
using kiln::test::CloudControlFake;
using kiln::test::files_containing;
using kiln::test::parse_result;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kVhd = kImage / "worker.vhd";

std::string upload_command(const std::string& args) {
  return std::string(KILN_BINARY) + " upload azure " + kImage.string() + " " + args;
}

/// A fresh HOME and cache, Azurite's account and key, and the fake's service principal.
class AzureEnvironment : public kiln::test::ScopedEnvironment {
 public:
  explicit AzureEnvironment(const fs::path& home, const std::string& client_secret) {
    Azurite& azurite = Azurite::shared();
    CloudControlFake& control = CloudControlFake::shared();
    set("HOME", home.string());
    set("KILN_CACHE", (home / "cache").string());
    unset("AZURE_STORAGE_CONNECTION_STRING");
    unset("AZURE_STORAGE_SAS_TOKEN");
    unset("AZURE_FEDERATED_TOKEN_FILE");
    set("AZURE_STORAGE_ACCOUNT", azurite.account());
    set("AZURE_STORAGE_KEY", azurite.key());
    set("AZURE_TENANT_ID", CloudControlFake::kTenant);
    set("AZURE_CLIENT_ID", CloudControlFake::kClientId);
    set("AZURE_CLIENT_SECRET", client_secret);
    set("AZURE_AUTHORITY_HOST", control.url() + "/entra");
    set("AZURE_SUBSCRIPTION_ID", "5f1c2a3b-kiln-test-subscription");
  }
};

std::string image_flags(const std::string& name, const std::string& container,
                        const std::string& blob_endpoint) {
  return "--name " + name + " --container " + container +
         " --resource-group kiln-rg --location westeurope --management-endpoint " +
         CloudControlFake::shared().url() + " --blob-endpoint " + blob_endpoint;
}

/// Reads the blob back from Azurite: Get Page Ranges names what was written; those ranges must
/// equal the VHD there, and the VHD must hold only zeros everywhere else.
void check_blob_equals_vhd(const std::string& path) {
  Azurite& azurite = Azurite::shared();
  kiln::azure::StorageSettings storage{.account = azurite.account(),
                                       .blob_endpoint = azurite.endpoint(),
                                       .account_key = azurite.key()};
  kiln::azure::BlobClient client(storage);
  auto list = client.send({.method = "GET", .path = path, .query = {{"comp", "pagelist"}}}, 1, {});
  REQUIRE(list.status == 200);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (std::size_t at = 0; (at = list.body.find("<Start>", at)) != std::string::npos;) {
    std::uint64_t start = std::stoull(list.body.substr(at + 7));
    at = list.body.find("<End>", at);
    ranges.emplace_back(start, std::stoull(list.body.substr(at + 5)));
  }
  REQUIRE(!ranges.empty());
  const std::uint64_t size = fs::file_size(kVhd);
  auto zeros = [&](std::uint64_t from, std::uint64_t to) {  // the VHD holds only zeros there
    for (std::uint64_t at = from; at < to; at += 64 << 20) {
      std::string data = kiln::read_at(kVhd, at, std::min<std::uint64_t>(64 << 20, to - at));
      if (data.find_first_not_of('\0') != std::string::npos) return false;
    }
    return true;
  };
  std::uint64_t written = 0, previous_end = 0;
  for (const auto& [start, end] : ranges) {
    INFO("page range " << start << "-" << end);
    written += end - start + 1;
    CHECK(zeros(previous_end, start));
    for (std::uint64_t at = start; at <= end; at += 32 << 20) {
      std::uint64_t chunk = std::min<std::uint64_t>(32 << 20, end + 1 - at);
      auto data =
          client.send({.method = "GET",
                       .path = path,
                       .headers = {{"x-ms-range", fmt::format("bytes={}-{}", at, at + chunk - 1)}}},
                      1, {});
      REQUIRE(data.status == 206);
      REQUIRE(data.body.size() == chunk);
      CHECK(data.body == kiln::read_at(kVhd, at, chunk));
    }
    previous_end = end + 1;
  }
  CHECK(zeros(previous_end, size));
  CHECK(written <= size / 5);                               // zero pages were not written
  CHECK(kiln::read_at(kVhd, size - 512, 8) == "conectix");  // the footer is among them
}

}  // namespace

TEST_CASE(
    "kiln upload azure writes only the VHD's data pages to an Azurite page blob that reads "
    "back equal to it, through throttling and a dropped write, then asks Resource Manager for "
    "a V2 image of it",
    "[cloud][azure]") {
  Azurite& azurite = Azurite::shared();
  CloudControlFake& control = CloudControlFake::shared();
  kiln::test::TempDir work;
  AzureEnvironment env(work.path(), control.client_secret());
  kiln::test::FaultProxy proxy("http://127.0.0.1:" + std::to_string(azurite.port()),
                               (work.path() / "requests.log").string(),
                               {"--throttle", "2", "--drop-put", "6"});
  const std::string endpoint = proxy.url() + "/kilntest";

  auto upload = std::async(std::launch::async, [&] {
    return kiln::test::run_stdout(upload_command(image_flags("kiln-worker", "images", endpoint) +
                                                 " --json 2> " + (work.path() / "err").string()));
  });
  std::set<std::string> argv_hits;
  while (upload.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    for (const auto& secret : {azurite.key(), control.client_secret()})
      for (const auto& pid : argv_containing(secret)) argv_hits.insert(pid);
  }
  auto run = upload.get();
  std::string printed = run.output + kiln::read_file(work.path() / "err");
  INFO(printed);
  auto result = parse_result(run);
  const std::string blob_url = endpoint + "/images/kiln-worker.vhd";
  CHECK(result["blobUrl"] == blob_url);
  CHECK(result["imageBytes"] == fs::file_size(kVhd));
  CHECK(result["imageId"] ==
        "/subscriptions/5f1c2a3b-kiln-test-subscription/resourceGroups/kiln-rg/providers/"
        "Microsoft.Compute/images/kiln-worker");
  CHECK(printed.find("read the blob's properties: HTTP 503; retrying") != std::string::npos);
  check_blob_equals_vhd("/images/kiln-worker.vhd");

  // Every page range was written once, except the write the proxy cut off, which was sent
  // once more: nothing else twice.
  std::map<std::string, int> writes;
  std::uint64_t bytes = 0;
  int dropped = 0;
  for (const auto& request : proxy.requests()) {
    if (request["path"].get<std::string>().find("comp=page") == std::string::npos) continue;
    if (request.value("fault", "") == "dropped") {
      ++dropped;
      continue;
    }
    if (request["status"] != 201) continue;
    std::string range = request["headers"]["x-ms-range"];
    ++writes[range];
    auto dash = range.find('-');
    bytes += std::stoull(range.substr(dash + 1)) - std::stoull(range.substr(6, dash - 6)) + 1;
  }
  CHECK(dropped == 1);
  for (const auto& [range, count] : writes) CHECK(count == 1);
  CHECK(result["bytesSent"] == bytes);

  // The image-create request as Resource Manager received it.
  auto arm = control.requests("/subscriptions/");
  nlohmann::json put;
  for (const auto& request : arm)
    if (request["method"] == "PUT") put = request;
  REQUIRE(put.is_object());
  CHECK(put["authorized"] == true);
  CHECK(put["query"]["api-version"][0] == "2024-03-01");
  CHECK(put["body"]["location"] == "westeurope");
  CHECK(put["body"]["properties"]["hyperVGeneration"] == "V2");
  auto os_disk = put["body"]["properties"]["storageProfile"]["osDisk"];
  CHECK(os_disk["blobUri"] == blob_url);
  CHECK(os_disk["osType"] == "Linux");
  CHECK(os_disk["osState"] == "Generalized");
  CHECK(put["body"]["tags"]["kiln-image"] == "worker");
  auto token = control.requests("/entra/")[0];
  CHECK(token["form"]["client_id"] == CloudControlFake::kClientId);
  CHECK(token["form"]["client_secret"] == "<secret>");
  CHECK(token["form"]["scope"] == control.url() + "/.default");

  // No secret anywhere: output, argv, the cache, the proxy's and the fake's logs.
  CHECK(argv_hits.empty());
  for (const auto& secret : {azurite.key(), control.client_secret(), std::string("fake-access-")}) {
    CHECK(printed.find(secret) == std::string::npos);
    CHECK(files_containing(work.path(), secret).empty());
    CHECK(files_containing(control.log(), secret).empty());
  }

  // The same command again finds the image made from this blob and sends nothing.
  auto again =
      kiln::test::run_command(upload_command(image_flags("kiln-worker", "images", endpoint)));
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK(again.output.find("image kiln-worker already exists from " + blob_url) !=
        std::string::npos);
}

TEST_CASE(
    "an Azure upload stopped mid-way resumes from its journal without writing a block twice, "
    "and a blob this upload did not write is refused",
    "[cloud][azure]") {
  Azurite& azurite = Azurite::shared();
  CloudControlFake& control = CloudControlFake::shared();
  kiln::test::TempDir work;
  AzureEnvironment env(work.path(), control.client_secret());
  kiln::test::FaultProxy proxy("http://127.0.0.1:" + std::to_string(azurite.port()),
                               (work.path() / "requests.log").string(), {"--refuse", "PUT:40"});
  const std::string endpoint = proxy.url() + "/kilntest";
  const std::string flags =
      "--name kiln-resumed --container resume --blob-only --jobs 2 --blob-endpoint " + endpoint;

  auto first = kiln::test::run_command(upload_command(flags));
  INFO(first.output);
  CHECK(first.exit_code == 6);
  CHECK(first.output.find("run the same command again to resume") != std::string::npos);

  auto second = kiln::test::run_command(upload_command(flags + " --json"));
  INFO(second.output);
  REQUIRE(second.exit_code == 0);
  CHECK(second.output.find("resuming " + endpoint + "/resume/kiln-resumed.vhd") !=
        std::string::npos);
  auto json = nlohmann::json::parse(second.output.substr(second.output.find("{\n")));
  CHECK(json["blocksResumed"].get<int>() > 0);

  // Across both runs every range was written once: the refused write is not a write.
  std::map<std::string, int> writes;
  int creates = 0;
  for (const auto& request : proxy.requests()) {
    std::string path = request["path"];
    if (request["method"] == "PUT" && path == "/kilntest/resume/kiln-resumed.vhd" &&
        request["status"] == 201)
      ++creates;
    if (path.find("comp=page") == std::string::npos || request["status"] != 201) continue;
    ++writes[request["headers"]["x-ms-range"].get<std::string>()];
  }
  CHECK(creates == 1);  // the second run wrote into the same blob
  for (const auto& [range, count] : writes) {
    INFO(range);
    CHECK(count == 1);
  }
  check_blob_equals_vhd("/resume/kiln-resumed.vhd");

  // A fresh cache knows nothing of that blob: kiln will not overwrite it.
  AzureEnvironment other(work.path() / "other", control.client_secret());
  auto clash = kiln::test::run_command(upload_command(flags));
  CHECK(clash.exit_code == 6);
  CHECK(clash.output.find("a blob named 'kiln-resumed.vhd' already exists in container 'resume'") !=
        std::string::npos);
}

TEST_CASE(
    "refused Azure credentials end the upload with exit code 6 and the service's words, before "
    "any data moves",
    "[cloud][azure]") {
  Azurite& azurite = Azurite::shared();
  CloudControlFake& control = CloudControlFake::shared();
  kiln::test::TempDir work;

  SECTION("a wrong client secret: Entra ID's error, and no blob") {
    const std::string wrong = "cs-not-the-secret-7Hq2";
    AzureEnvironment env(work.path(), wrong);
    auto run = kiln::test::run_command(
        upload_command(image_flags("kiln-denied", "images", azurite.endpoint())));
    INFO(run.output);
    CHECK(run.exit_code == 6);
    CHECK(run.output.find("Microsoft Entra token (service principal (AZURE_CLIENT_SECRET)): HTTP "
                          "401 invalid_client: AADSTS7000215") != std::string::npos);
    CHECK(run.output.find(wrong) == std::string::npos);
    CHECK(run.output.find("created page blob") == std::string::npos);
  }
  SECTION("a wrong storage key: Blob storage's error code") {
    AzureEnvironment env(work.path(), control.client_secret());
    const std::string wrong_key = kiln::base64_encode(std::string(64, 'k'));
    env.set("AZURE_STORAGE_KEY", wrong_key);
    auto run = kiln::test::run_command(upload_command(
        "--name kiln-denied --container images --blob-only --blob-endpoint " + azurite.endpoint()));
    INFO(run.output);
    CHECK(run.exit_code == 6);
    CHECK(run.output.find("HTTP 403 AuthorizationFailure") != std::string::npos);
    CHECK(run.output.find(wrong_key) == std::string::npos);
  }
}

TEST_CASE("--dry-run prints Azure's requests without any secret and sends none", "[cloud][azure]") {
  kiln::test::TempDir work;
  AzureEnvironment env(work.path(), "unused");
  env.unset("AZURE_STORAGE_KEY");  // a dry run needs no credential
  env.unset("AZURE_CLIENT_SECRET");
  auto run = kiln::test::run_command(upload_command(
      image_flags("kiln-dry", "images", "https://kilntest.blob.core.windows.net") + " --dry-run"));
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("PUT https://kilntest.blob.core.windows.net/images/kiln-dry.vhd") !=
        std::string::npos);
  CHECK(run.output.find("x-ms-blob-type: PageBlob") != std::string::npos);
  CHECK(run.output.find("Authorization: SharedKey kilntest:<signature>") != std::string::npos);
  CHECK(run.output.find("client_secret=<secret>") != std::string::npos);
  CHECK(run.output.find("\"hyperVGeneration\":\"V2\"") != std::string::npos);
  CHECK(files_containing(work.path(), "kiln-dry").empty());  // no journal: nothing was sent
}
