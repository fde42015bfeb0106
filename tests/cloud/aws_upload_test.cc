// kiln upload aws against moto's server mode on loopback (never a real cloud), through
// fault_proxy.py, which logs each request as kiln sent it: the snapshot's blocks read back
// from moto equal the default image's, all-zero blocks are never sent, RegisterImage carries
// the image's parameters, an interrupted upload resumes, faults are retried, bad credentials
// get their own exit code, and no secret appears in output, argv or the cache.
#include <dirent.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>

#include "builder/upload/aws_client.h"
#include "builder/util/base64.h"
#include "builder/util/files.h"
#include "cloud/cloud_test_support.h"
#include "cloud/moto_server.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kRaw = kImage / "worker.raw";
constexpr std::uint64_t kBlock = 512 * 1024;
const std::string kSecret = "kiln-test-secret-Zq9Xv2Lm7Pw4";
const std::string kSessionToken = "kiln-test-session-Hk3Rt8Yn1Bc6";

/// The AWS settings a kiln child process inherits, as a user's shell would export them. HOME
/// is a fresh folder: no ~/.aws of the machine's is read.
class AwsEnvironment : public kiln::test::ScopedEnvironment {
 public:
  AwsEnvironment(const std::string& endpoint, const fs::path& home, bool credentials = true) {
    set("HOME", home.string());
    set("KILN_CACHE", (home / "cache").string());
    set("AWS_REGION", "eu-west-1");
    set("AWS_ENDPOINT_URL", endpoint);
    set("AWS_EC2_METADATA_DISABLED", "true");  // a test never asks a real instance's role
    if (credentials) {
      set("AWS_ACCESS_KEY_ID", "AKIAKILNTEST0000");
      set("AWS_SECRET_ACCESS_KEY", kSecret);
      set("AWS_SESSION_TOKEN", kSessionToken);
    }
  }
};

std::string upload_command(const std::string& args) {
  return std::string(KILN_BINARY) + " upload aws " + kImage.string() + " " + args;
}

/// Block indices of the raw image that hold anything but zeros.
std::set<std::uint64_t> data_blocks(const fs::path& raw) {
  std::set<std::uint64_t> blocks;
  int fd = ::open(raw.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  std::uint64_t size = fs::file_size(raw);
  std::string block(kBlock, '\0');
  for (off_t at = ::lseek(fd, 0, SEEK_DATA); at >= 0 && std::uint64_t(at) < size;) {
    std::uint64_t index = std::uint64_t(at) / kBlock;
    std::fill(block.begin(), block.end(), '\0');
    ssize_t n = ::pread(fd, block.data(), kBlock, off_t(index * kBlock));
    REQUIRE(n > 0);
    if (block.find_first_not_of('\0') != std::string::npos) blocks.insert(index);
    at = ::lseek(fd, off_t((index + 1) * kBlock), SEEK_DATA);
  }
  ::close(fd);
  return blocks;
}

std::string image_block(std::uint64_t index) {
  std::string block = kiln::read_at(kRaw, index * kBlock, kBlock);
  block.resize(kBlock, '\0');
  return block;
}

/// A client for reading back what moto holds (moto tells services apart by the signature's
/// scope, so these requests are signed too).
kiln::aws::Client moto_client(const std::string& moto, const std::string& region = "eu-west-1") {
  kiln::aws::AwsSettings settings;
  settings.region = region;
  settings.credentials = {"AKIAKILNTEST0000", "reader", "", "test"};
  settings.endpoints = {{"ebs", moto}, {"ec2", moto}};
  return kiln::aws::Client(settings);
}

std::string moto_get(const std::string& moto, const std::string& service, const std::string& path,
                     const std::string& region = "eu-west-1") {
  kiln::aws::Client client = moto_client(moto, region);
  kiln::aws::Reply reply = client.send({.service = service, .path = path, .what = path});
  INFO(reply.error);
  REQUIRE(reply.ok());
  return reply.body;
}

/// Every block the snapshot holds, read back from moto through the EBS direct APIs.
std::map<std::uint64_t, std::string> snapshot_blocks(const std::string& moto,
                                                     const std::string& snapshot) {
  std::string listing = moto_get(moto, "ebs", "/snapshots/" + snapshot + "/blocks");
  auto doc = nlohmann::json::parse(listing);
  INFO(listing.substr(0, 500));
  REQUIRE(doc.contains("Blocks"));
  std::map<std::uint64_t, std::string> blocks;
  for (const auto& entry : doc["Blocks"]) {
    std::uint64_t index = entry["BlockIndex"];
    blocks[index] = moto_get(moto, "ebs",
                             "/snapshots/" + snapshot + "/blocks/" + std::to_string(index) +
                                 "?blockToken=" + entry["BlockToken"].get<std::string>());
  }
  return blocks;
}

/// Checks the snapshot holds exactly the image's non-zero blocks, byte for byte.
void check_snapshot_equals_image(const std::string& moto, const std::string& snapshot) {
  auto blocks = snapshot_blocks(moto, snapshot);
  auto expected = data_blocks(kRaw);
  std::set<std::uint64_t> got;
  for (const auto& [index, data] : blocks) got.insert(index);
  CHECK(got == expected);
  std::size_t differing = 0;
  for (const auto& [index, data] : blocks) differing += data != image_block(index);
  CHECK(differing == 0);
}

std::map<std::string, std::string> form_fields(const std::string& body) {
  std::map<std::string, std::string> fields;
  auto decode = [](const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += text[i] == '+' ? ' ' : text[i];
      }
    }
    return out;
  };
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t end = std::min(body.find('&', start), body.size());
    std::string pair = body.substr(start, end - start);
    auto eq = pair.find('=');
    if (eq != std::string::npos) fields[decode(pair.substr(0, eq))] = decode(pair.substr(eq + 1));
    start = end + 1;
  }
  return fields;
}

/// The block PUTs in a proxy log: index -> how many times it was sent (answered or not).
std::map<std::uint64_t, int> block_puts(const std::vector<nlohmann::json>& requests) {
  std::map<std::uint64_t, int> puts;
  for (const auto& r : requests) {
    std::string path = r["path"];
    if (r["method"] == "PUT" && path.find("/blocks/") != std::string::npos)
      ++puts[std::stoull(path.substr(path.rfind('/') + 1))];
  }
  return puts;
}

}  // namespace

using kiln::test::argv_containing;
using kiln::test::files_containing;
using kiln::test::parse_result;

TEST_CASE(
    "kiln upload aws sends the raw image's non-zero blocks as an EBS snapshot equal to the "
    "image and registers an AMI with the image's architecture, boot mode, ENA and root device",
    "[cloud][aws]") {
  kiln::test::TempDir work;
  kiln::test::MotoServer moto;
  kiln::test::FaultProxy proxy(moto.url(), (work.path() / "requests.log").string());
  AwsEnvironment env(proxy.url(), work.path());

  // Watches every process's arguments while the upload runs.
  auto upload = std::async(std::launch::async, [&] {
    return kiln::test::run_stdout(
        upload_command("--name kiln-test-worker --tags pool=edge,team=platform "
                       "--public-regions eu-west-1,us-east-2 --json 2> " +
                       (work.path() / "upload.err").string()));
  });
  std::set<std::string> argv_hits;
  while (upload.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    for (const std::string& secret : {kSecret, kSessionToken})
      for (const auto& pid : argv_containing(secret)) argv_hits.insert(pid);
  }
  auto result = parse_result(upload.get());
  CHECK(argv_hits.empty());
  const std::string snapshot = result["snapshotId"], image = result["imageId"];
  CHECK(image.rfind("ami-", 0) == 0);

  // The snapshot holds exactly the non-zero blocks, equal to the image's.
  check_snapshot_equals_image(moto.url(), snapshot);
  auto requests = proxy.requests();
  auto puts = block_puts(requests);
  CHECK(puts.size() == data_blocks(kRaw).size());
  CHECK(std::all_of(puts.begin(), puts.end(), [](const auto& p) { return p.second == 1; }));
  std::uint64_t size = fs::file_size(kRaw);
  CHECK(result["bytesSent"] == puts.size() * kBlock);
  CHECK(double(result["bytesSent"].get<std::uint64_t>()) / size <= 0.2);
  // Each block carries its own SHA-256.
  for (const auto& r : requests) {
    if (r["method"] != "PUT") continue;
    std::string path = r["path"];
    std::string block = image_block(std::stoull(path.substr(path.rfind('/') + 1)));
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(block.data()), block.size(), digest);
    CHECK(r["headers"]["x-amz-Checksum"] ==
          kiln::base64_encode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest)));
    CHECK(r["headers"]["x-amz-Checksum-Algorithm"] == "SHA256");
  }

  // RegisterImage as sent (moto keeps only some of its fields).
  std::map<std::string, std::string> register_image;
  for (const auto& r : requests) {
    if (r.contains("body") && r["body"].get<std::string>().rfind("Action=RegisterImage", 0) == 0)
      register_image = form_fields(r["body"]);
  }
  INFO(nlohmann::json(register_image).dump(2));
  CHECK(register_image["Name"] == "kiln-test-worker");
  CHECK(register_image["Architecture"] == "x86_64");
  CHECK(register_image["BootMode"] == "uefi-preferred");  // the default image boots by BIOS too
  CHECK(register_image["EnaSupport"] == "true");
  CHECK(register_image["ImdsSupport"] == "v2.0");
  CHECK(register_image["VirtualizationType"] == "hvm");
  CHECK(register_image["RootDeviceName"] == "/dev/xvda");
  CHECK(register_image["BlockDeviceMapping.1.DeviceName"] == "/dev/xvda");
  CHECK(register_image["BlockDeviceMapping.1.Ebs.SnapshotId"] == snapshot);
  CHECK(register_image["TagSpecification.1.Tag.1.Key"] == "pool");
  CHECK(register_image["TagSpecification.1.Tag.1.Value"] == "edge");
  // moto registered it.
  std::string images =
      moto_get(moto.url(), "ec2", "/?Action=DescribeImages&Version=2016-11-15&ImageId.1=" + image);
  CHECK_THAT(images, Catch::Contains("<name>kiln-test-worker</name>"));

  // --public-regions: the AMI itself is public at home; us-east-2 has a public copy.
  std::string copy = result["publicImages"].value("us-east-2", "");
  CHECK(result["publicImages"]["eu-west-1"] == image);
  CHECK(copy.rfind("ami-", 0) == 0);
  CHECK(copy != image);
  std::vector<std::map<std::string, std::string>> copies, launch_permissions;
  for (const auto& r : requests) {
    std::string body = r.value("body", "");
    if (body.rfind("Action=CopyImage", 0) == 0) copies.push_back(form_fields(body));
    if (body.rfind("Action=ModifyImageAttribute", 0) == 0)
      launch_permissions.push_back(form_fields(body));
  }
  REQUIRE(copies.size() == 1);
  CHECK(copies[0]["SourceRegion"] == "eu-west-1");
  CHECK(copies[0]["SourceImageId"] == image);
  CHECK(copies[0]["Name"] == "kiln-test-worker");
  CHECK(copies[0]["CopyImageTags"] == "true");
  REQUIRE(launch_permissions.size() == 2);
  std::set<std::string> made_public;
  for (auto& fields : launch_permissions) {
    CHECK(fields["LaunchPermission.Add.1.Group"] == "all");
    made_public.insert(fields["ImageId"]);
  }
  CHECK(made_public == std::set<std::string>{image, copy});
  CHECK_THAT(images, Catch::Contains("<isPublic>true</isPublic>"));
  std::string copied =
      moto_get(moto.url(), "ec2", "/?Action=DescribeImages&Version=2016-11-15&ImageId.1=" + copy,
               "us-east-2");
  CHECK_THAT(copied, Catch::Contains("<name>kiln-test-worker</name>") &&
                         Catch::Contains("<isPublic>true</isPublic>"));

  // No secret in what kiln printed, in its cache (the upload journal), or in any argv.
  std::string printed = result.dump() + kiln::read_file(work.path() / "upload.err");
  for (const std::string& secret : {kSecret, kSessionToken}) {
    CHECK(printed.find(secret) == std::string::npos);
    CHECK(files_containing(work.path() / "cache", secret).empty());
  }
  CHECK(files_containing(work.path() / "requests.log", kSecret).empty());

  // The same command again finds its journal: nothing is sent, the same AMI is printed.
  auto again =
      parse_result(kiln::test::run_stdout(upload_command("--name kiln-test-worker --json")));
  CHECK(again["imageId"] == image);
  CHECK(proxy.requests().size() == requests.size());
}

TEST_CASE(
    "an upload killed part-way resumes when the same command runs again, sending no block "
    "twice but the one in flight",
    "[cloud][aws]") {
  kiln::test::TempDir work;
  kiln::test::MotoServer moto;
  kiln::test::FaultProxy proxy(moto.url(), (work.path() / "requests.log").string());
  AwsEnvironment env(proxy.url(), work.path());
  const std::string args = "--name kiln-test-resume --jobs 1 --json";

  pid_t pid = ::fork();
  if (pid == 0) {
    int log = ::open((work.path() / "first.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execl(KILN_BINARY, KILN_BINARY, "upload", "aws", kImage.c_str(), "--name", "kiln-test-resume",
            "--jobs", "1", "--json", nullptr);
    ::_exit(127);
  }
  // Killed once the journal holds 200 acknowledged blocks.
  bool killed = false;
  for (int i = 0; i < 6000 && !killed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!fs::exists(work.path() / "cache/uploads")) continue;
    for (const auto& entry : fs::directory_iterator(work.path() / "cache/uploads")) {
      std::string journal = kiln::read_file(entry.path());
      if (std::count(journal.begin(), journal.end(), '\n') >= 202) {
        ::kill(pid, SIGKILL);
        killed = true;
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  INFO(kiln::read_file(work.path() / "first.log"));
  REQUIRE(killed);
  REQUIRE(WIFSIGNALED(status));

  auto result = parse_result(kiln::test::run_stdout(upload_command(args)));
  const std::size_t total = data_blocks(kRaw).size();
  CHECK(result["blocksResumed"].get<std::size_t>() >= 200);
  CHECK(result["blocksResumed"].get<std::size_t>() + result["blocksSent"].get<std::size_t>() ==
        total);
  check_snapshot_equals_image(moto.url(), result["snapshotId"]);
  auto requests = proxy.requests();
  auto puts = block_puts(requests);
  CHECK(puts.size() == total);
  std::size_t twice =
      std::count_if(puts.begin(), puts.end(), [](const auto& p) { return p.second > 1; });
  CHECK(twice <= 1);  // at most the block in flight when the upload was killed
  CHECK(std::all_of(puts.begin(), puts.end(), [](const auto& p) { return p.second <= 2; }));
  std::size_t starts = std::count_if(requests.begin(), requests.end(), [](const auto& r) {
    return r["method"] == "POST" && r["path"] == "/snapshots";
  });
  CHECK(starts == 1);
}

TEST_CASE("throttled requests and a connection dropped mid-block are retried to completion",
          "[cloud][aws]") {
  kiln::test::TempDir work;
  kiln::test::MotoServer moto;
  kiln::test::FaultProxy proxy(moto.url(), (work.path() / "requests.log").string(),
                               {"--throttle", "3", "--drop-put", "5"});
  AwsEnvironment env(proxy.url(), work.path());
  auto run = kiln::test::run_command(upload_command("--name kiln-test-faults"));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.output, Catch::Contains("RequestLimitExceeded: Request limit exceeded.") &&
                             Catch::Contains("retrying in"));
  auto requests = proxy.requests();
  std::size_t throttled = 0, dropped = 0;
  std::string dropped_path;
  for (const auto& r : requests) {
    if (r.value("fault", "") == "throttled") ++throttled;
    if (r.value("fault", "") == "dropped") {
      ++dropped;
      dropped_path = r["path"];
    }
  }
  CHECK(throttled == 3);
  CHECK(dropped == 1);
  // The dropped block was sent again and answered.
  CHECK(std::any_of(requests.begin(), requests.end(), [&](const auto& r) {
    return r["path"] == dropped_path && r["status"] == 201;
  }));
  std::string snapshot;
  for (const auto& r : requests) {
    std::string path = r["path"];
    if (path.rfind("/snapshots/completion/", 0) == 0) snapshot = path.substr(22);
  }
  REQUIRE_FALSE(snapshot.empty());
  check_snapshot_equals_image(moto.url(), snapshot);
}

TEST_CASE("credentials AWS refuses end the upload with exit code 6 and AWS's error code",
          "[cloud][aws]") {
  kiln::test::TempDir work;
  kiln::test::MotoServer moto(/*authenticate=*/true);
  AwsEnvironment env(moto.url(), work.path());
  auto run = kiln::test::run_command(upload_command("--name kiln-test-denied"));
  INFO(run.output);
  CHECK(run.exit_code == 6);
  CHECK_THAT(run.output,
             Catch::Contains("HTTP 401 AuthFailure") || Catch::Contains("InvalidClientTokenId"));
  CHECK(run.output.find(kSecret) == std::string::npos);
  CHECK(run.output.find(kSessionToken) == std::string::npos);
}

TEST_CASE("--dry-run prints the requests without credentials and sends nothing", "[cloud][aws]") {
  kiln::test::TempDir work;
  // Nothing listens here: a request would fail.
  AwsEnvironment env("http://127.0.0.1:" + std::to_string(kiln::test::free_port()), work.path(),
                     /*credentials=*/false);
  auto run = kiln::test::run_command(upload_command("--name kiln-test-dry --dry-run"));
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK_THAT(run.output, Catch::Contains("POST http://127.0.0.1:") &&
                             Catch::Contains("/snapshots\n") &&
                             Catch::Contains("Action=RegisterImage") &&
                             Catch::Contains("Architecture=x86_64") &&
                             Catch::Contains("BootMode=uefi-preferred"));
  // Without --dry-run the same environment is refused before any request.
  auto real = kiln::test::run_command(upload_command("--name kiln-test-dry"));
  CHECK(real.exit_code == 1);
  CHECK_THAT(real.output, Catch::Contains("no AWS credentials"));
}

TEST_CASE(
    "temporary keys from a web identity (STS AssumeRoleWithWebIdentity) or the instance role "
    "(IMDSv2) sign kiln's requests, and the identity token is never printed",
    "[cloud][aws]") {
  kiln::test::TempDir work;
  kiln::test::MotoServer moto;
  kiln::test::FaultProxy proxy(moto.url(), (work.path() / "requests.log").string());
  // The first run uploads with the web identity's keys; the second, from another cache (no
  // journal), finds the name taken and stops (exit 6) after its first signed request.
  const std::string name = "kiln-test-identity";
  const std::string identity_token = "eyJhbGciOiJSUzI1NiJ9.kiln-test-identity-Vb7Qx2.sig";
  const std::string role = "arn:aws:iam::123456789012:role/kiln-builder";
  {
    AwsEnvironment env(proxy.url(), work.path(), /*credentials=*/false);
    kiln::write_file_atomic(work.path() / "token", identity_token + "\n", 0600);
    env.set("AWS_WEB_IDENTITY_TOKEN_FILE", (work.path() / "token").string());
    env.set("AWS_ROLE_ARN", role);
    auto run = kiln::test::run_command(upload_command("--name " + name));
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.output, Catch::Contains("credentials from a web identity "
                                           "(AWS_WEB_IDENTITY_TOKEN_FILE), role " +
                                           role));
    CHECK(run.output.find(identity_token) == std::string::npos);
    CHECK(files_containing(work.path() / "cache", identity_token).empty());
  }
  auto requests = proxy.requests();
  REQUIRE(requests.size() >= 2);
  std::string assume = requests[0].value("body", "");
  CHECK(requests[0]["method"] == "POST");
  CHECK_THAT(assume, Catch::Contains("Action=AssumeRoleWithWebIdentity") &&
                         Catch::Contains(
                             "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fkiln-builder") &&
                         Catch::Contains("WebIdentityToken=" + identity_token));
  CHECK_FALSE(requests[0].contains("credential"));  // STS takes the token, unsigned
  CHECK_THAT(requests[1].value("body", ""), Catch::Contains("Action=DescribeImages"));
  std::string assumed_key = requests[1].value("credential", "");
  CHECK(assumed_key.rfind("ASIA", 0) == 0);  // STS's temporary key, not a configured one
  CHECK(requests[1]["headers"].contains("X-Amz-Security-Token"));

  {
    AwsEnvironment env(proxy.url(), work.path() / "second", /*credentials=*/false);
    env.set("AWS_EC2_METADATA_DISABLED", "false");
    env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", proxy.url());
    auto run = kiln::test::run_command(upload_command("--name " + name));
    INFO(run.output);
    CHECK(run.exit_code == 6);
    CHECK_THAT(run.output, Catch::Contains("credentials from the instance role default-role "
                                           "(instance metadata)") &&
                               Catch::Contains("already exists"));
  }
  requests = proxy.requests();
  std::vector<std::string> metadata;
  std::string signed_with;
  for (const auto& request : requests) {
    std::string path = request["path"];
    if (path.rfind("/latest/", 0) == 0) {
      metadata.push_back(request["method"].get<std::string>() + " " + path);
      if (request["method"] == "GET")
        CHECK(request["headers"].contains("X-aws-ec2-metadata-token"));
    } else if (!metadata.empty() && signed_with.empty()) {
      signed_with = request.value("credential", "");
    }
  }
  CHECK(metadata == std::vector<std::string>{
                        "PUT /latest/api/token", "GET /latest/meta-data/iam/security-credentials/",
                        "GET /latest/meta-data/iam/security-credentials/default-role"});
  CHECK(!signed_with.empty());
  CHECK(signed_with != assumed_key);
}
