// kiln inspect on every output the fixture exported from one build, on stamped copies, and on
// a qcow2 whose root partition was altered by one byte through qemu's own block layer.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/disk/gpt.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "support/join_config_text.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";

struct Inspection {
  int exit_code;
  json doc;
};

/// Parses a command's JSON document, which must also satisfy `python3 -m json.tool`.
json parse_checked(const std::string& text) {
  INFO(text);
  kiln::test::TempDir dir;
  kiln::write_file_atomic(dir.path() / "document.json", text);
  REQUIRE(kiln::test::run_command("python3 -m json.tool " +
                                  (dir.path() / "document.json").string() + " > /dev/null")
              .exit_code == 0);
  return json::parse(text);
}

/// `kiln inspect --json PATH`.
Inspection inspect(const fs::path& path) {
  auto run =
      kiln::test::run_stdout(std::string(KILN_BINARY) + " inspect --json '" + path.string() + "'");
  INFO(path.string());
  return {run.exit_code, parse_checked(run.output)};
}

/// Copies a sparse raw image without filling its holes.
void copy_sparse(const fs::path& from, const fs::path& to) {
  kiln::run({"cp", "--sparse=always", from.string(), to.string()});
}

}  // namespace

TEST_CASE("kiln inspect reports the same root, manifest, SBOM and stamp for every format",
          "[image][inspect]") {
  std::string manifest_sha256 = kiln::sha256_file(kImage / "manifest.json");
  std::string sbom_sha256 = kiln::sha256_file(kImage / "worker.spdx.json");
  json manifest = json::parse(kiln::read_file(kImage / "manifest.json"));
  Inspection raw = inspect(kImage / "worker.raw");
  REQUIRE(raw.exit_code == 0);
  std::string root_hash = raw.doc["rootHash"];
  CHECK(root_hash.size() == 64);
  const std::pair<const char*, const char*> outputs[] = {
      {"worker.raw", "raw"},        {"worker.raw.zst", "raw.zst"},
      {"worker.qcow2", "qcow2"},    {"worker.vhd", "vhd"},
      {"worker.vmdk", "vmdk"},      {"worker.ova", "ova"},
      {"worker.gce.tar.gz", "gce"}, {"pxe", "pxe"}};
  for (const auto& [file, format] : outputs) {
    INFO(file);
    Inspection result = inspect(kImage / file);
    json& doc = result.doc;
    CHECK(result.exit_code == 0);
    CHECK(doc["schemaVersion"] == 1);
    CHECK(doc["verified"] == true);
    CHECK(doc["rootHash"] == root_hash);
    CHECK(doc["roots"].size() == 1);
    CHECK(doc["roots"].at(0)["matches"] == true);
    CHECK(doc["manifest"]["sha256"] == manifest_sha256);
    CHECK(doc["sbomSha256"] == sbom_sha256);
    CHECK(doc["stamp"]["stamped"] == false);
    CHECK(doc["name"] == manifest["name"]);
    CHECK(doc["version"] == "1.0.0");
    CHECK(doc["arch"] == "amd64");
    CHECK(doc["buildEpoch"] == manifest["source_date_epoch"]);
    CHECK(doc["kubernetesVersion"] == manifest["kubernetes"]["version"]);
    CHECK(doc["manifest"]["packages"].size() == manifest["packages"].size());
    // Every loader entry boots this root.
    CHECK(!doc["loaderEntries"].empty());
    for (const auto& entry : doc["loaderEntries"])
      CHECK_THAT(entry["cmdline"].get<std::string>(), Catch::Contains(root_hash));
    CHECK(doc["format"] == format);
  }
  // Both loaders of the disk are listed: systemd-boot for UEFI, GRUB for BIOS.
  std::vector<std::string> loaders;
  for (const auto& entry : raw.doc["loaderEntries"]) loaders.push_back(entry["loader"]);
  CHECK(loaders == std::vector<std::string>{"systemd-boot", "grub"});
  // The text form says the same for people.
  auto text = kiln::test::run_stdout(std::string(KILN_BINARY) + " inspect " +
                                     (kImage / "worker.qcow2").string());
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.output, Catch::Contains("root           root " + root_hash + " matches"));
  CHECK_THAT(text.output, Catch::Contains("sbom           sha256:" + sbom_sha256));
  CHECK_THAT(text.output, Catch::Contains("package        containerd "));
}

TEST_CASE("kiln inspect shows the same stamp on a stamped raw and on its qcow2, token masked",
          "[image][inspect]") {
  kiln::test::TempDir dir;
  copy_sparse(kImage / "worker.raw", dir.path() / "node.raw");
  kiln::write_file_atomic(dir.path() / "join.yaml",
                          kiln::test::join_config_text("2099-01-01T00:00:00Z"), 0600);
  kiln::run({KILN_BINARY, "stamp", (dir.path() / "node.raw").string(), "--join",
             (dir.path() / "join.yaml").string(), "--update-url", "http://10.0.2.2:8080/update"});
  kiln::run({"qemu-img", "convert", "-f", "raw", "-O", "qcow2", (dir.path() / "node.raw").string(),
             (dir.path() / "node.qcow2").string()});
  Inspection raw = inspect(dir.path() / "node.raw");
  Inspection qcow2 = inspect(dir.path() / "node.qcow2");
  CHECK(raw.exit_code == 0);
  CHECK(qcow2.exit_code == 0);
  json stamp = raw.doc["stamp"];
  CHECK(stamp["stamped"] == true);
  CHECK(stamp["endpoint"] == "https://10.0.2.2:6443");
  CHECK(stamp["controlPlane"] == "tcp-netboot");
  CHECK(stamp["token"] == "abcdef.****************");
  CHECK(stamp["expires"] == "2099-01-01T00:00:00Z");
  CHECK(stamp["expired"] == false);
  CHECK(stamp["updateUrl"] == "http://10.0.2.2:8080/update");
  CHECK(qcow2.doc["stamp"] == stamp);
  CHECK(qcow2.doc["rootHash"] == raw.doc["rootHash"]);
  // Neither form ever prints the token's secret.
  auto text = kiln::test::run_command(std::string(KILN_BINARY) + " inspect " +
                                      (dir.path() / "node.qcow2").string());
  CHECK_THAT(text.output, Catch::Contains("token          abcdef.****************"));
  CHECK(text.output.find("0123456789abcdef") == std::string::npos);
  CHECK(raw.doc.dump().find("0123456789abcdef") == std::string::npos);

  // A PXE folder with a join initrd from `kiln stamp --pxe` shows the same join config.
  kiln::run({"cp", "-rl", (kImage / "pxe").string(), (dir.path() / "pxe").string()});
  kiln::run({KILN_BINARY, "stamp", "--pxe", (dir.path() / "pxe").string(), "--join",
             (dir.path() / "join.yaml").string()});
  Inspection pxe = inspect(dir.path() / "pxe");
  CHECK(pxe.exit_code == 0);
  for (const char* key : {"stamped", "endpoint", "controlPlane", "token", "expires", "caCertHash"})
    CHECK(pxe.doc["stamp"][key] == stamp[key]);

  // `kiln stamp --show --json` reports the stamp as inspect does.
  auto show = kiln::test::run_stdout(std::string(KILN_BINARY) + " stamp --show --json " +
                                     (dir.path() / "node.raw").string());
  REQUIRE(show.exit_code == 0);
  json shown = parse_checked(show.output);
  CHECK(shown["schemaVersion"] == 1);
  CHECK(shown["stamped"] == true);
  for (const char* key : {"endpoint", "controlPlane", "token", "expires", "updateUrl"})
    CHECK(shown[key] == stamp[key]);
  CHECK(shown["caCertHash"] == stamp["caCertHash"]);
  CHECK(shown["labels"].is_object());
  CHECK(shown["taints"].is_array());
  CHECK(show.output.find("0123456789abcdef") == std::string::npos);
}

TEST_CASE("every disk format of a build stamped with --join reports the raw image's stamp",
          "[image][inspect]") {
  kiln::test::TempDir dir;
  kiln::write_file_atomic(dir.path() / "join.yaml",
                          kiln::test::join_config_text("2099-01-01T00:00:00Z"), 0600);
  auto build = kiln::test::run_command(
      std::string(KILN_BINARY) + " build " + KILN_SOURCE_DIR +
      "/recipes/worker.yaml --outputs raw,raw.zst,vhd,ova --join " +
      (dir.path() / "join.yaml").string() + " -o " + (dir.path() / "out").string());
  INFO(build.output);
  REQUIRE(build.exit_code == 0);
  Inspection raw = inspect(dir.path() / "out" / "worker.raw");
  REQUIRE(raw.exit_code == 0);
  CHECK(raw.doc["stamp"]["stamped"] == true);
  CHECK(raw.doc["stamp"]["token"] == "abcdef.****************");
  // The unstamped fixture's root: stamping touches the config partition only.
  CHECK(raw.doc["rootHash"] == inspect(kImage / "worker.raw").doc["rootHash"]);
  // One of each way inspect reads: a stream (raw.zst, as the GCE tarball), qemu's block layer
  // (vhd, as qcow2 and vmdk) and a disk inside a tar (ova).
  for (const char* file : {"worker.raw.zst", "worker.vhd", "worker.ova"}) {
    INFO(file);
    Inspection result = inspect(dir.path() / "out" / file);
    CHECK(result.exit_code == 0);
    CHECK(result.doc["stamp"] == raw.doc["stamp"]);
    CHECK(result.doc["rootHash"] == raw.doc["rootHash"]);
    CHECK(result.doc["manifest"]["sha256"] == raw.doc["manifest"]["sha256"]);
  }
}

TEST_CASE("a qcow2 with one byte flipped inside its root partition does not match its root hash",
          "[image][inspect]") {
  kiln::test::TempDir dir;
  fs::path qcow2 = dir.path() / "altered.qcow2";
  fs::copy_file(kImage / "worker.qcow2", qcow2);
  kiln::GptDisk disk = kiln::read_gpt(kImage / "worker.raw");
  const auto& root = kiln::find_partition(disk, "root", kImage / "worker.raw");
  std::uint64_t at = root.offset + 100 * (1ull << 20) + 4321;
  auto original = static_cast<unsigned char>(kiln::read_at(kImage / "worker.raw", at, 1)[0]);
  // qemu-io writes through the qcow2 driver, as a hypervisor's disk write would.
  kiln::run({"qemu-io", "-f", "qcow2", "-c",
             "write -P " + std::to_string(original ^ 0xffu) + " " + std::to_string(at) + " 1",
             qcow2.string()});
  Inspection result = inspect(qcow2);
  CHECK(result.exit_code == 5);
  CHECK(result.doc["verified"] == false);
  REQUIRE(result.doc["roots"].size() == 1);
  CHECK(result.doc["roots"][0]["matches"] == false);
  CHECK_THAT(result.doc["roots"][0]["problem"].get<std::string>(), Catch::Contains("differs"));
  // Everything else still reads: the ESP and config partition are untouched.
  CHECK(result.doc["manifest"]["sha256"] == kiln::sha256_file(kImage / "manifest.json"));
  auto text = kiln::test::run_command(std::string(KILN_BINARY) + " inspect " + qcow2.string());
  CHECK(text.exit_code == 5);
  CHECK_THAT(text.output, Catch::Contains("DOES NOT MATCH"));
}

TEST_CASE("kiln inspect refuses what is not a kiln output, naming what it reads",
          "[image][inspect]") {
  kiln::test::TempDir dir;
  kiln::write_file_atomic(dir.path() / "notes.txt", std::string(4096, 'x'));
  auto text = kiln::test::run_command(std::string(KILN_BINARY) + " inspect " +
                                      (dir.path() / "notes.txt").string());
  CHECK(text.exit_code == 1);
  CHECK_THAT(text.output, Catch::Contains("is not a disk image kiln writes"));
  fs::create_directory(dir.path() / "empty");
  text = kiln::test::run_command(std::string(KILN_BINARY) + " inspect " +
                                 (dir.path() / "empty").string());
  CHECK(text.exit_code == 1);
  CHECK_THAT(text.output, Catch::Contains("neither a kiln PXE folder"));
  // A qcow2 cut short is reported by qemu's block layer, not read past its end.
  kiln::run({"truncate", "-s", "1M", (dir.path() / "cut.qcow2").string()});
  std::string head = kiln::read_at(kImage / "worker.qcow2", 0, 1 << 20);
  kiln::write_file_atomic(dir.path() / "cut.qcow2", head);
  text = kiln::test::run_command(std::string(KILN_BINARY) + " inspect " +
                                 (dir.path() / "cut.qcow2").string());
  CHECK(text.exit_code != 0);
  CHECK(text.exit_code != 5);
}

TEST_CASE("kiln build --json lists every file it wrote with the digest SHA256SUMS records",
          "[image][inspect]") {
  kiln::test::TempDir dir;
  auto run = kiln::test::run_stdout(std::string(KILN_BINARY) + " build " + KILN_SOURCE_DIR +
                                    "/recipes/worker.yaml --outputs raw --json -o " +
                                    (dir.path() / "out").string());
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  json doc = parse_checked(run.output);  // stdout holds the document alone: logs go to stderr
  CHECK(doc["schemaVersion"] == 1);
  CHECK(doc["name"] == "worker");
  CHECK(doc["version"] == "1.0.0");
  CHECK(doc["arch"] == "amd64");
  CHECK(doc["outputDir"] == (dir.path() / "out").string());
  CHECK(doc["rootfsSha256"].get<std::string>().size() == 64);
  std::string sums = kiln::read_file(dir.path() / "out" / "SHA256SUMS");
  bool saw_raw = false;
  for (const auto& file : doc["files"]) {
    CHECK(fs::exists(file["path"].get<std::string>()));
    if (file["name"] == "worker.raw") {
      saw_raw = true;
      CHECK(file["size"] == fs::file_size(dir.path() / "out" / "worker.raw"));
      CHECK_THAT(sums, Catch::Contains(file["sha256"].get<std::string>() + "  worker.raw"));
    }
  }
  CHECK(saw_raw);
}
