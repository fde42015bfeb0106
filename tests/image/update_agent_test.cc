// kiln-update on the build host, against a real release: the fixture's recipe built with
// `--outputs raw,update`, served by `kiln serve`, and a node made of files — the slot
// partitions as sparse files and the ESP as a folder copied out of the fixture's disk. What
// the boot loaders then do with the entries is what the boot tests show; these tests show
// what the agent writes, and everything it refuses to write.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/disk/gpt.h"
#include "builder/update/release_signature.h"
#include "builder/update/update_index.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "support/run_command.h"
#include "support/served_folder.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kSource = KILN_SOURCE_DIR;
const fs::path kAgent = fs::path(KILN_FIRSTBOOT_DIR) / "kiln-update";

/// One release of the default recipe (version 1.0.0), exported from the fixture's cached
/// stages, and the key that signed it. Built once for every test here.
struct Release {
  fs::path dir, key, folder;
  UpdateIndex index;
};

const Release& release() {
  static const Release built = [] {
    Release r;
    r.dir = fs::path(KILN_TEST_IMAGES) / "update-release";
    r.key = r.dir / "release.key";
    r.folder = r.dir / "update";
    fs::remove_all(r.dir);
    fs::create_directories(r.dir);
    auto key =
        test::run_command("umask 077; openssl genpkey -algorithm ed25519 -out " + r.key.string());
    REQUIRE(key.exit_code == 0);
    auto build = test::run_command(
        std::string(KILN_BINARY) + " build " + (kSource / "recipes/worker.yaml").string() +
        " --outputs raw,update --signing-key " + r.key.string() + " -o " + r.dir.string());
    INFO(build.output);
    REQUIRE(build.exit_code == 0);
    r.index = parse_update_index(read_file(r.folder / "index.json"));
    return r;
  }();
  return built;
}

std::string tree_digest(const fs::path& dir) {
  std::vector<std::string> lines;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string line = e.path().lexically_relative(dir).string();
    if (e.is_regular_file()) line += " " + sha256_file(e.path());
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  return all;
}

/// A node running `version` from slot A, made of files.
struct FileNode {
  test::TempDir dir;
  fs::path esp = dir.path() / "esp", partitions = dir.path() / "partitions",
           state = dir.path() / "state", keys = dir.path() / "keys";

  explicit FileNode(const std::string& version, const std::string& url) {
    fs::path raw = release().dir / "worker.raw";
    GptDisk disk = read_gpt(raw);
    fs::create_directories(partitions);
    for (const char* name : {"root", "root-verity", "root-b", "root-b-verity"}) {
      auto p = find_partition(disk, name, raw);
      REQUIRE(test::run_command("truncate -s " + std::to_string(p.size) + " " +
                                (partitions / name).string())
                  .exit_code == 0);
    }
    fs::create_directories(esp);
    auto esp_offset = find_partition(disk, "esp", raw).offset;
    REQUIRE(test::run_command("mcopy -s -n -m -i " + raw.string() + "@@" +
                              std::to_string(esp_offset) + " ::/loader ::/kiln ::/grub " +
                              esp.string())
                .exit_code == 0);
    // The node's own entry names the version it runs.
    std::string entry = read_file(esp / "loader/entries/kiln-1.0.0.conf");
    fs::remove(esp / "loader/entries/kiln-1.0.0.conf");
    entry.replace(entry.find("version 1.0.0"), 13, "version " + version);
    write_file_atomic(esp / "loader/entries" / ("kiln-" + version + ".conf"), entry);
    write_file_atomic(dir.path() / "cmdline",
                      "roothash=" + release().index.releases[0].root_hash + " ro console=ttyS0\n");
    fs::create_directories(keys);
    write_file_atomic(keys / "01.pem", public_key_of(release().key));
    configure(version, url);
  }

  void configure(const std::string& version, const std::string& url) {
    write_file_atomic(dir.path() / "update.conf", "name=worker\narch=amd64\nversion=" + version +
                                                      "\nurl=" + url + "\nreboot=kured\ntries=3\n");
  }

  test::CommandResult run(const std::string& command) const {
    return test::run_command(kAgent.string() + " " + command + " --esp " + esp.string() +
                             " --partitions " + partitions.string() + " --state " + state.string() +
                             " --config " + (dir.path() / "update.conf").string() + " --keys " +
                             keys.string() + " --cmdline " + (dir.path() / "cmdline").string() +
                             " --config-partition " +
                             (dir.path() / "no-config-partition").string() + " --reboot-required " +
                             (dir.path() / "reboot-required").string() + " --no-reboot");
  }

  std::string slot_b_sha256(std::uint64_t size) const {
    return sha256_hex(read_at(partitions / "root-b", 0, size));
  }
};

/// A served copy of the release folder: hard links, so changing a file means replacing it.
struct ServedCopy {
  test::TempDir dir;
  fs::path folder = dir.path() / "update";
  std::unique_ptr<test::ServedFolder> server;
  ServedCopy() {
    REQUIRE(test::run_command("cp -al " + release().folder.string() + " " + folder.string())
                .exit_code == 0);
  }
  std::string url() {
    if (!server) server = std::make_unique<test::ServedFolder>(dir.path());
    return "http://127.0.0.1:" + std::to_string(server->port()) + "/update";
  }
  void replace(const std::string& name, const std::string& content) {
    fs::remove(folder / name);
    write_file_atomic(folder / name, content);
  }
};

}  // namespace

TEST_CASE("a node stages a newer signed release into its inactive slot for a trial boot",
          "[image][update]") {
  const UpdateRelease& r = release().index.releases.at(0);
  CHECK(r.version == "1.0.0");
  ServedCopy served;
  FileNode node("0.9", served.url());
  auto result = node.run("check");
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("slot b matches root hash " + r.root_hash));
  // The root came as zstd frames, a fraction of its size, and was never fetched whole.
  REQUIRE(r.root_zstd);
  CHECK(r.root_zstd->file.size < r.root.size / 2);
  CHECK_THAT(served.server->log(), Catch::Contains("/update/" + r.root_zstd->file.name + " 200") &&
                                       !Catch::Contains("/update/" + r.root.name + " "));
  // The slot holds exactly the release's root and hash tree.
  CHECK(node.slot_b_sha256(r.root.size) == r.root.sha256);
  CHECK(sha256_hex(read_at(node.partitions / "root-b-verity", 0, r.verity.size)) ==
        r.verity.sha256);
  CHECK(read_at(node.partitions / "root", 0, 1 << 20) ==
        std::string(1 << 20, '\0'));  // slot A untouched
  // A boot-counted entry for slot B, and the same trial for GRUB.
  std::string entry = read_file(node.esp / "loader/entries/kiln-1.0.0+3.conf");
  CHECK_THAT(entry, Catch::Contains("options roothash=" + r.root_hash));
  CHECK_THAT(entry,
             Catch::Contains("systemd.verity_root_data=PARTLABEL=root-b "
                             "systemd.verity_root_hash=PARTLABEL=root-b-verity kiln.slot=b"));
  CHECK_THAT(entry, Catch::Contains(" panic=10 "));
  CHECK(fs::exists(node.esp / "loader/entries/kiln-0.9.conf"));
  CHECK(sha256_file(node.esp / "kiln/1.0.0/vmlinuz") == r.kernel.sha256);
  CHECK(sha256_file(node.esp / "kiln/1.0.0/initrd.img") == r.initrd.sha256);
  CHECK_THAT(read_file(node.esp / "grub/grub.cfg"), Catch::Contains("--id kiln-trial"));
  CHECK_THAT(read_file(node.esp / "grub/grubenv"), Catch::Contains("kiln_tries=3\n"));
  // updates.reboot: kured — the reboot daemon's sentinel, no reboot of our own.
  CHECK(fs::exists(node.dir.path() / "reboot-required"));
  CHECK_THAT(result.output, Catch::Contains("for kured"));

  // Checking again changes nothing while the trial waits for its reboot.
  std::string esp_before = tree_digest(node.esp);
  auto again = node.run("check");
  CHECK_THAT(again.output, Catch::Contains("1.0.0 is staged"));
  CHECK(tree_digest(node.esp) == esp_before);
}

TEST_CASE(
    "a node refuses releases that are unsigned or signed by another key or do not match "
    "and switches nothing",
    "[image][update]") {
  const UpdateRelease& r = release().index.releases.at(0);
  auto refused = [&](ServedCopy& served, FileNode& node, const std::string& words) {
    std::string esp_before = tree_digest(node.esp);
    auto result = node.run("check");
    INFO(result.output);
    CHECK(result.exit_code == 3);
    CHECK_THAT(result.output, Catch::Contains("REFUSED") && Catch::Contains(words) &&
                                  Catch::Contains("nothing was switched"));
    CHECK(tree_digest(node.esp) == esp_before);
    (void)served;
  };
  SECTION("unsigned index") {
    ServedCopy served;
    fs::remove(served.folder / "index.json.sig");
    FileNode node("0.9", served.url());
    refused(served, node, "unsigned");
  }
  SECTION("index signed by another key") {
    ServedCopy served;
    FileNode node("0.9", served.url());
    test::TempDir other;
    REQUIRE(test::run_command("openssl genpkey -algorithm ed25519 -out " +
                              (other.path() / "k").string())
                .exit_code == 0);
    served.replace("index.json.sig",
                   sign_release(other.path() / "k", read_file(served.folder / "index.json")));
    refused(served, node, "not signed by a key this image trusts");
  }
  SECTION("a root whose digest differs from the signed index") {
    // Its frames are damaged too, so the node falls back to the whole root and refuses that.
    ServedCopy served;
    std::string root = read_file(served.folder / r.root.name);
    root[root.size() / 2] ^= 1;
    served.replace(r.root.name, root);
    served.replace(r.root_zstd->file.name, std::string(r.root_zstd->file.size, 'x'));
    FileNode node("0.9", served.url());
    refused(served, node, "not the " + r.root.sha256 + " the signed index lists");
  }
  SECTION("a signed release whose root fails dm-verity") {
    // Digests match, but the signed root hash is not the tree's: the slot check catches it.
    ServedCopy served;
    std::string index = read_file(served.folder / "index.json");
    std::string wrong = std::string(64, 'e');
    for (std::size_t at; (at = index.find(r.root_hash)) != std::string::npos;)
      index.replace(at, 64, wrong);
    served.replace("index.json", index);
    served.replace("index.json.sig", sign_release(release().key, index));
    FileNode node("0.9", served.url());
    refused(served, node, "fails dm-verity verification");
  }
}

TEST_CASE("a node whose root frames do not decode fetches the root whole and stages it",
          "[image][update]") {
  const UpdateRelease& r = release().index.releases.at(0);
  ServedCopy served;
  // One flipped bit in the third frame, after the first checkpoint (32 MiB): it no longer
  // decodes, or not to what its checksum says.
  const auto& frames = r.root_zstd->frames;
  std::string packed = read_file(served.folder / r.root_zstd->file.name);
  packed[frames[0] + frames[1] + frames[2] / 2] ^= 0x10;
  served.replace(r.root_zstd->file.name, packed);
  FileNode node("0.9", served.url());
  auto result = node.run("check");
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.output,
             Catch::Contains(r.root_zstd->file.name + ": frame 3 of the compressed root") &&
                 Catch::Contains("fetching " + r.root.name + " whole instead"));
  // The whole root resumed at the checkpoint the frames before it made.
  CHECK_THAT(result.output, Catch::Contains("resuming " + r.root.name + " at 32 MiB"));
  CHECK(node.slot_b_sha256(r.root.size) == r.root.sha256);
  CHECK_THAT(result.output, Catch::Contains("slot b matches root hash " + r.root_hash));
}

TEST_CASE("a node that boots through the Raspberry Pi firmware refuses to stage an update",
          "[image][update]") {
  ServedCopy served;
  FileNode node("0.9", served.url());
  // What `board: rpi4` adds to the ESP: the firmware loads kiln/ and counts no boot tries.
  write_file_atomic(node.esp / "config.txt", "os_prefix=kiln/\n");
  write_file_atomic(node.esp / "start4.elf", "firmware");
  std::string esp_before = tree_digest(node.esp);
  auto result = node.run("check");
  INFO(result.output);
  CHECK(result.exit_code == 3);
  CHECK_THAT(result.output, Catch::Contains("REFUSED: this node boots through the Raspberry Pi "
                                            "firmware") &&
                                Catch::Contains("flash the new image instead"));
  CHECK(tree_digest(node.esp) == esp_before);
  // The slot write starts at its first byte: still the zeros of the empty slot.
  CHECK(read_at(node.partitions / "root-b", 0, 1 << 20) == std::string(1 << 20, '\0'));
}

TEST_CASE("a node never installs an older release or one it rolled back", "[image][update]") {
  ServedCopy served;
  FileNode newer("2.0", served.url());
  std::string esp_before = tree_digest(newer.esp);
  auto result = newer.run("check");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("up to date (1.0.0 is the newest release; this node "
                                            "runs 2.0)"));
  CHECK(tree_digest(newer.esp) == esp_before);

  // A trial whose tries were spent (systemd-boot renames the entry to +0-3 as it counts).
  FileNode node("0.9", served.url());
  REQUIRE(node.run("check").exit_code == 0);
  fs::rename(node.esp / "loader/entries/kiln-1.0.0+3.conf",
             node.esp / "loader/entries/kiln-1.0.0+0-3.conf");
  auto health = node.run("health");
  INFO(health.output);
  CHECK(health.exit_code == 0);
  CHECK_THAT(health.output, Catch::Contains("ROLLED BACK: version 1.0.0 did not become healthy") &&
                                Catch::Contains("never reached the health check"));
  CHECK_FALSE(fs::exists(node.esp / "loader/entries/kiln-1.0.0+0-3.conf"));
  CHECK_FALSE(fs::exists(node.esp / "kiln/1.0.0"));
  auto later = node.run("check");
  CHECK_THAT(later.output, Catch::Contains("skipping 1.0.0: it was rolled back"));
  CHECK_FALSE(fs::exists(node.esp / "loader/entries/kiln-1.0.0+3.conf"));
  CHECK_THAT(node.run("status").output, Catch::Contains("refused:  1.0.0"));
}

TEST_CASE("an interrupted slot write resumes where its last synced checkpoint was",
          "[image][update]") {
  const UpdateRelease& r = release().index.releases.at(0);
  ServedCopy served;
  FileNode node("0.9", served.url());
  constexpr std::uint64_t kDone = 64ull << 20;
  // What a run cut off after 64 MiB leaves: the bytes on the slot, and the progress record.
  write_at(node.partitions / "root-b", read_at(served.folder / r.root.name, 0, kDone), 0);
  fs::create_directories(node.state);
  write_file_atomic(node.state / "download", "1.0.0 root " + std::to_string(kDone) + "\n");
  auto result = node.run("check");
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("resuming " + r.root.name + " at 64 MiB"));
  CHECK_THAT(served.server->log(), Catch::Contains(" 206 "));
  CHECK(node.slot_b_sha256(r.root.size) == r.root.sha256);

  // A progress record that lies about the slot's content is caught by the read-back digest,
  // and the next run starts over.
  FileNode liar("0.9", served.url());
  fs::create_directories(liar.state);
  write_file_atomic(liar.state / "download", "1.0.0 root " + std::to_string(kDone) + "\n");
  auto first = liar.run("check");
  CHECK(first.exit_code == 3);
  CHECK_FALSE(fs::exists(liar.state / "download"));
  CHECK(liar.run("check").exit_code == 0);
  CHECK(liar.slot_b_sha256(r.root.size) == r.root.sha256);
}

TEST_CASE(
    "kiln-update --rollback returns to the previous version on purpose and refuses the "
    "current one",
    "[image][update]") {
  ServedCopy served;
  FileNode node("0.9", served.url());
  REQUIRE(node.run("check").exit_code == 0);
  // What a healthy trial boot of 1.0.0 from slot B leaves: a blessed entry, no trial.
  fs::rename(node.esp / "loader/entries/kiln-1.0.0+3.conf",
             node.esp / "loader/entries/kiln-1.0.0.conf");
  for (const char* name : {"trial-version", "trial-slot"}) fs::remove(node.state / name);
  node.configure("1.0.0", served.url());
  write_file_atomic(node.dir.path() / "cmdline", "roothash=x kiln.slot=b\n");

  auto result = node.run("--rollback");
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("rolling back from 1.0.0 to 0.9"));
  CHECK(fs::exists(node.esp / "loader/entries/kiln-1.0.0+0-1.conf"));  // sorted last
  CHECK_THAT(read_file(node.esp / "grub/grub.cfg"),
             Catch::Contains("--id kiln-0 {\n  linux /kiln/vmlinuz") &&
                 !Catch::Contains("/kiln/1.0.0/vmlinuz"));
  CHECK_THAT(node.run("status").output, Catch::Contains("refused:  1.0.0"));
  // Nothing earlier than 0.9 is on the disk: a second rollback from 0.9 has nowhere to go.
  node.configure("0.9", served.url());
  write_file_atomic(node.dir.path() / "cmdline", "roothash=x\n");
  CHECK(node.run("--rollback").exit_code == 1);
}

TEST_CASE("a health check that cannot run never reboots the node", "[image][update]") {
  // kiln-update-health.service reboots the machine when the check fails: only an unhealthy
  // trial may make it fail, never a broken setting, or every boot would reboot.
  ServedCopy served;
  FileNode node("0.9", served.url());
  fs::remove(node.dir.path() / "update.conf");
  auto result = node.run("health");
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.output,
             Catch::Contains("the health check could not run") && Catch::Contains("not rebooting"));
}

TEST_CASE("kiln inspect lists an update folder's releases and checks each root against its hash",
          "[image][update][inspect]") {
  const Release& r = release();
  auto run = test::run_stdout(std::string(KILN_BINARY) + " inspect --json " + r.folder.string());
  REQUIRE(run.exit_code == 0);
  auto doc = nlohmann::json::parse(run.output);
  CHECK(doc["format"] == "update");
  CHECK(doc["verified"] == true);
  CHECK(doc["update"]["name"] == "worker");
  CHECK(doc["update"]["arch"] == "amd64");
  CHECK(doc["update"]["signed"] == true);
  REQUIRE(doc["update"]["releases"].size() == 1);
  CHECK(doc["update"]["releases"][0]["version"] == "1.0.0");
  CHECK(doc["update"]["releases"][0]["rootHash"] == r.index.releases[0].root_hash);
  CHECK(doc["update"]["releases"][0]["matches"] == true);
  CHECK(doc["update"]["releases"][0]["framesMatch"] == true);
  CHECK(doc["rootHash"] == r.index.releases[0].root_hash);

  // The same folder with one byte of the root file changed: refused, exit code 5.
  test::TempDir dir;
  fs::path copy = dir.path() / "update";
  fs::create_directories(copy);
  for (const auto& entry : fs::directory_iterator(r.folder))
    fs::copy_file(entry.path(), copy / entry.path().filename());
  fs::path root = copy / r.index.releases[0].root.name;
  std::string byte = read_at(root, 5 << 20, 1);
  write_at(root, std::string(1, char(byte[0] ^ 0x01)), 5 << 20);
  run = test::run_stdout(std::string(KILN_BINARY) + " inspect --json " + copy.string());
  CHECK(run.exit_code == 5);
  doc = nlohmann::json::parse(run.output);
  CHECK(doc["update"]["releases"][0]["matches"] == false);
  CHECK_THAT(doc["roots"][0]["problem"].get<std::string>(), Catch::Contains("differs"));
  // The frames still decode to the signed root: only the root file is wrong.
  CHECK(doc["update"]["releases"][0]["framesMatch"] == true);

  // The root file restored and one frame damaged: the frames are what fails now.
  fs::copy_file(r.folder / r.index.releases[0].root.name, root,
                fs::copy_options::overwrite_existing);
  const ZstdFrames& zstd = *r.index.releases[0].root_zstd;
  fs::path frames = copy / zstd.file.name;
  std::uint64_t at = zstd.frames[0] + zstd.frames[1] / 2;
  write_at(frames, std::string(1, char(read_at(frames, at, 1)[0] ^ 0x01)), at);
  run = test::run_stdout(std::string(KILN_BINARY) + " inspect --json " + copy.string());
  CHECK(run.exit_code == 5);
  doc = nlohmann::json::parse(run.output);
  CHECK(doc["verified"] == false);
  CHECK(doc["update"]["releases"][0]["matches"] == true);
  CHECK(doc["update"]["releases"][0]["framesMatch"] == false);
  CHECK_THAT(doc["update"]["releases"][0]["framesProblem"].get<std::string>(),
             Catch::Contains("frame 2 of the compressed root"));
}
