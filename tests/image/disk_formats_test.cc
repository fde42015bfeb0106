// Checks every output format the fixture exported from the default recipe's disk, and the
// disk stage's refusals, without booting anything.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>

#include "builder/disk/gpt.h"
#include "builder/rootfs/tar_io.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kSource = KILN_SOURCE_DIR;

std::string capture(const std::vector<std::string>& argv) {
  return kiln::run(argv, {.capture_stdout = true}).stdout_text;
}

std::string json_field(const std::string& json, const std::string& key) {
  std::smatch match;
  std::regex pattern("\"" + key + "\": \"?([^,\"\\n]+)");
  if (!std::regex_search(json, match, pattern)) return {};
  return match[1];
}

std::uint64_t raw_size() {
  return fs::file_size(kImage / "worker.raw");
}

}  // namespace

TEST_CASE("the raw image has kiln's GPT layout with the root pair named by its verity hash",
          "[image][disk]") {
  kiln::GptDisk disk = kiln::read_gpt(kImage / "worker.raw");
  std::vector<std::string> names;
  for (const auto& p : disk.partitions) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"esp", "bios-boot", "root", "root-verity", "root-b",
                                          "root-b-verity", "kiln-config", "state"});
  // The Discoverable Partitions Specification's mapping, which roothash= relies on.
  std::string sgdisk = capture({"sgdisk", "-p", (kImage / "worker.raw").string()});
  CHECK_THAT(sgdisk, Catch::Contains("kiln-config"));
  std::string root_uuid = kiln::find_partition(disk, "root", kImage / "worker.raw").uuid.text;
  std::string verity_uuid =
      kiln::find_partition(disk, "root-verity", kImage / "worker.raw").uuid.text;
  std::string loader =
      capture({"mtype", "-i",
               (kImage / "worker.raw").string() + "@@" +
                   std::to_string(kiln::find_partition(disk, "esp", kImage / "worker.raw").offset),
               "::/loader/entries/kiln-1.0.0.conf"});
  std::smatch match;
  REQUIRE(std::regex_search(loader, match, std::regex("roothash=([0-9a-f]{64})")));
  std::string hash = match[1];
  auto dashed = [](std::string hex) {
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
           hex.substr(16, 4) + "-" + hex.substr(20, 12);
  };
  CHECK(root_uuid == dashed(hash.substr(0, 32)));
  CHECK(verity_uuid == dashed(hash.substr(32, 32)));
  // The config partition is a FAT file system labelled KILNCFG.
  std::string label = capture(
      {"mlabel", "-s", "-i",
       (kImage / "worker.raw").string() + "@@" +
           std::to_string(kiln::find_partition(disk, "kiln-config", kImage / "worker.raw").offset),
       "::"});
  CHECK_THAT(label, Catch::Contains("KILNCFG"));
}

TEST_CASE("the default root stores file data as plain blocks, as recipes/worker.yaml asks",
          "[image][disk]") {
  const fs::path raw = kImage / "worker.raw";
  const kiln::GptDisk layout = kiln::read_gpt(raw);
  const kiln::GptPartition& root = kiln::find_partition(layout, "root", raw);
  std::ifstream in(raw, std::ios::binary);
  // EROFS superblock at 1 KiB: magic, then feature_incompat at byte 80, where mkfs.erofs sets
  // bit 0 (lz4 zero padding) for any LZ4 or LZ4HC compressed file system.
  std::string superblock(128, '\0');
  in.seekg(static_cast<std::streamoff>(root.offset + 1024));
  REQUIRE(in.read(superblock.data(), superblock.size()));
  auto le32 = [&](std::size_t at) {
    std::uint32_t value = 0;
    for (std::size_t i = 4; i-- > 0;)
      value = value << 8 | static_cast<unsigned char>(superblock[at + i]);
    return value;
  };
  REQUIRE(le32(0) == 0xE0F5E1E2u);
  CHECK((le32(80) & 1u) == 0);
  // Plain blocks hold a file verbatim at a block boundary: the kubelet's block at 1 MiB is
  // found in the partition as it is in the root file system's tar.
  std::string kubelet = kiln::read_tar_member(kImage / "rootfs.tar", "usr/bin/kubelet");
  REQUIRE(kubelet.size() > (2u << 20));
  const std::string block = kubelet.substr(1u << 20, 4096);
  bool found = false;
  std::string chunk(1u << 20, '\0');
  in.clear();
  in.seekg(static_cast<std::streamoff>(root.offset));
  for (std::uint64_t done = 0; !found && done < root.size; done += chunk.size()) {
    if (!in.read(chunk.data(), chunk.size())) break;
    for (std::size_t at = 0; !found && at < chunk.size(); at += 4096)
      found = chunk.compare(at, 4096, block) == 0;
  }
  CHECK(found);
}

TEST_CASE("every exported format has the right format and virtual size", "[image][disk]") {
  auto info = [](const std::string& file) {
    return capture({"qemu-img", "info", "--output=json", (kImage / file).string()});
  };
  std::string size = std::to_string(raw_size());
  CHECK(json_field(info("worker.raw"), "format") == "raw");
  CHECK(json_field(info("worker.qcow2"), "format") == "qcow2");
  CHECK(json_field(info("worker.qcow2"), "virtual-size") == size);
  CHECK(json_field(info("worker.vmdk"), "format") == "vmdk");
  CHECK(json_field(info("worker.vmdk"), "virtual-size") == size);
  for (const char* file : {"worker.qcow2", "worker.vmdk"})
    kiln::run({"qemu-img", "check", "-q", (kImage / file).string()});
  CHECK_THAT(capture({"qemu-img", "info", (kImage / "worker.vmdk").string()}),
             Catch::Contains("create type: streamOptimized"));

  // Azure reads a fixed VHD's size from its footer's current size, as this option does.
  std::string vhd = capture({"qemu-img", "info", "--output=json", "--image-opts",
                             "driver=vpc,force_size_calc=current_size,file.filename=" +
                                 (kImage / "worker.vhd").string()});
  CHECK(json_field(vhd, "format") == "vpc");
  CHECK(json_field(vhd, "virtual-size") == size);
  CHECK(fs::file_size(kImage / "worker.vhd") == raw_size() + 512);
  CHECK(raw_size() % (1 << 20) == 0);
  CHECK(kiln::read_file(kImage / "worker.vhd").size() > 0);
}

TEST_CASE("raw.zst with its bmap flashes back to the identical raw image", "[image][disk]") {
  kiln::test::TempDir work;
  fs::path target = work.path() / "flashed.raw";
  kiln::run({"bmaptool", "copy", "--bmap", (kImage / "worker.raw.bmap").string(),
             (kImage / "worker.raw.zst").string(), target.string()},
            {.quiet = true});
  CHECK(fs::file_size(target) == raw_size());
  CHECK(kiln::sha256_file(target) == kiln::sha256_file(kImage / "worker.raw"));
}

TEST_CASE("the OVA holds a well-structured OVF descriptor first, a matching manifest, and the VMDK",
          "[image][disk]") {
  kiln::test::TempDir work;
  std::string listing = capture({"tar", "-tf", (kImage / "worker.ova").string()});
  CHECK(listing == "worker.ovf\nworker.mf\nworker-disk1.vmdk\n");
  kiln::run({"tar", "-xf", (kImage / "worker.ova").string(), "-C", work.path().string()});
  std::string manifest = kiln::read_file(work.path() / "worker.mf");
  CHECK_THAT(manifest, Catch::Contains("SHA256(worker-disk1.vmdk)= " +
                                       kiln::sha256_file(work.path() / "worker-disk1.vmdk")));
  CHECK_THAT(manifest, Catch::Contains("SHA256(worker.ovf)= " +
                                       kiln::sha256_file(work.path() / "worker.ovf")));
  kiln::run({"qemu-img", "check", "-q", (work.path() / "worker-disk1.vmdk").string()});
  CHECK_THAT(kiln::read_file(work.path() / "worker.ovf"),
             Catch::Contains("ovf:capacity=\"" + std::to_string(raw_size()) + "\""));
  // What an importer reads first: the envelope's structure as DMTF's OVF and CIM schemas
  // define it, and its references to the packed disk (see the script for every rule).
  auto structure =
      kiln::test::run_command("python3 " + (kSource / "tests/image/ovf_structure.py").string() +
                              " " + (work.path() / "worker.ovf").string() + " worker-disk1.vmdk=" +
                              std::to_string(fs::file_size(work.path() / "worker-disk1.vmdk")));
  INFO(structure.output);
  CHECK(structure.exit_code == 0);
  CHECK(structure.output == "ok\n");
}

TEST_CASE("the GCE archive holds disk.raw, byte-identical to the raw image", "[image][disk]") {
  kiln::test::TempDir work;
  CHECK(capture({"tar", "-tzf", (kImage / "worker.gce.tar.gz").string()}) == "disk.raw\n");
  kiln::run({"tar", "-xzf", (kImage / "worker.gce.tar.gz").string(), "-C", work.path().string()});
  CHECK(raw_size() % (1ull << 30) == 0);
  CHECK(kiln::sha256_file(work.path() / "disk.raw") == kiln::sha256_file(kImage / "worker.raw"));
}

TEST_CASE("the AMI output is the raw image plus register-image parameters", "[image][disk]") {
  std::string json = kiln::read_file(kImage / "worker.register-ami.json");
  CHECK(json_field(json, "Architecture") == "x86_64");
  CHECK(json_field(json, "BootMode") == "uefi-preferred");
  CHECK_THAT(json, Catch::Contains("S3Key=worker.raw"));
  CHECK(fs::exists(kImage / "worker.raw"));
}

TEST_CASE("SHA256SUMS lists every output with its digest", "[image][disk]") {
  std::string sums = kiln::read_file(kImage / "SHA256SUMS");
  for (const char* file : {"rootfs.tar", "worker.raw", "worker.raw.zst", "worker.raw.bmap",
                           "worker.qcow2", "worker.vhd", "worker.vmdk", "worker.ova",
                           "worker.gce.tar.gz", "worker.register-ami.json", "manifest.json"}) {
    INFO(file);
    CHECK_THAT(sums, Catch::Contains(kiln::sha256_file(kImage / file) + "  " + file + "\n"));
  }
}

TEST_CASE("a disk too small for the image is refused before any work, with the numbers",
          "[image][disk]") {
  kiln::test::TempDir work;
  kiln::write_file_atomic(
      work.path() / "small.yaml",
      "include: " + (kSource / "recipes/worker.yaml").string() + "\ndisk:\n  size: 512M\n");
  auto run = kiln::test::run_command(std::string(KILN_BINARY) + " build " +
                                     (work.path() / "small.yaml").string() + " -o " +
                                     (work.path() / "out").string());
  INFO(run.output);
  CHECK(run.exit_code == 3);
  CHECK_THAT(run.output, Catch::Contains("small.yaml:3:9: error: disk.size is 512 MiB but"));
  CHECK_FALSE(fs::exists(work.path() / "out/worker.raw"));
}

TEST_CASE("an unknown output format and an unwritable output directory are refused",
          "[image][disk]") {
  kiln::test::TempDir work;
  auto unknown = kiln::test::run_command(std::string(KILN_BINARY) + " build " +
                                         (kSource / "recipes/worker.yaml").string() +
                                         " --outputs raw,iso -o " + (work.path() / "out").string());
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.output, Catch::Contains("--outputs: unknown output format 'iso'"));

  // A regular file where a directory should be: no user, not even root, can write there.
  kiln::write_file_atomic(work.path() / "file", "");
  auto unwritable = kiln::test::run_command(std::string(KILN_BINARY) + " build " +
                                            (kSource / "recipes/worker.yaml").string() + " -o " +
                                            (work.path() / "file/out").string());
  CHECK(unwritable.exit_code == 1);
  CHECK_THAT(unwritable.output, Catch::Contains("cannot create output directory"));
  CHECK(fs::is_regular_file(work.path() / "file"));
}
