// The fixture's PXE folder: the same kernel, initrd and verified root as its disk image, a
// root image that veritysetup accepts for the hash on the command line, an initrd that can
// netboot, and `kiln stamp --pxe`.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <set>

#include "builder/disk/gpt.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "support/join_config_text.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kPxe = kImage / "pxe";

std::string kernel_line() {
  std::string script = kiln::read_file(kPxe / "boot.ipxe");
  std::smatch m;
  REQUIRE(std::regex_search(script, m, std::regex(R"(\nkernel vmlinuz ([^\n]*))")));
  return m[1];
}

std::string argument(const std::string& cmdline, const std::string& name) {
  std::smatch m;
  REQUIRE(std::regex_search(cmdline, m, std::regex(" " + name + "=([^ ]+)")));
  return m[1];
}

/// A file from the disk image's ESP, read with mtools.
std::string from_esp(const std::string& path) {
  kiln::GptDisk disk = kiln::read_gpt(kImage / "worker.raw");
  const auto& esp = kiln::find_partition(disk, "esp", kImage / "worker.raw");
  auto result =
      kiln::test::run_command("MTOOLS_SKIP_CHECK=1 mtype -i '" + (kImage / "worker.raw").string() +
                              "@@" + std::to_string(esp.offset) + "' '::" + path + "'");
  REQUIRE(result.exit_code == 0);
  return result.output;
}

std::set<std::string> initrd_paths(const fs::path& initrd) {
  std::set<std::string> paths;
  archive* reader = archive_read_new();
  archive_read_support_filter_all(reader);
  archive_read_support_format_cpio(reader);
  REQUIRE(archive_read_open_filename(reader, initrd.c_str(), 1 << 16) == ARCHIVE_OK);
  archive_entry* entry;
  while (archive_read_next_header(reader, &entry) == ARCHIVE_OK)
    paths.insert(archive_entry_pathname(entry));
  archive_read_free(reader);
  return paths;
}

}  // namespace

TEST_CASE("the PXE folder boots the disk's own kernel, initrd and root hash", "[image][pxe]") {
  CHECK(kiln::read_file(kPxe / "vmlinuz") == from_esp("/kiln/vmlinuz"));
  CHECK(kiln::read_file(kPxe / "initrd.img") == from_esp("/kiln/initrd.img"));
  std::string entry = from_esp("/loader/entries/kiln-1.0.0.conf");
  std::smatch m;
  REQUIRE(std::regex_search(entry, m, std::regex("roothash=([0-9a-f]{64})")));
  std::string cmdline = kernel_line();
  CHECK(argument(cmdline, "kiln.roothash") == std::string(m[1]));
  CHECK(argument(cmdline, "kiln.root_url") == "${kiln-base}/root.img");
  CHECK_THAT(cmdline, Catch::Contains(" console=ttyS0"));  // the recipe's own arguments
  CHECK_THAT(kiln::read_file(kPxe / "grub.cfg"),
             Catch::Contains("kiln.roothash=" + std::string(m[1])));
}

TEST_CASE("the PXE root image is the disk's EROFS root with a hash tree veritysetup accepts",
          "[image][pxe]") {
  std::string cmdline = kernel_line();
  std::string hash = argument(cmdline, "kiln.roothash");
  std::uint64_t offset = std::stoull(argument(cmdline, "kiln.root_hash_offset"));
  kiln::GptDisk disk = kiln::read_gpt(kImage / "worker.raw");
  const auto& root = kiln::find_partition(disk, "root", kImage / "worker.raw");
  CHECK(kiln::read_at(kPxe / "root.img", 0, 1 << 20) ==
        kiln::read_at(kImage / "worker.raw", root.offset, 1 << 20));
  CHECK(kiln::read_at(kPxe / "root.img", offset - 4096, 4096) ==
        kiln::read_at(kImage / "worker.raw", root.offset + offset - 4096, 4096));
  std::string image = (kPxe / "root.img").string();
  auto verified =
      kiln::test::run_command("veritysetup verify --hash-offset=" + std::to_string(offset) + " " +
                              image + " " + image + " " + hash);
  INFO(verified.output);
  CHECK(verified.exit_code == 0);
  // The same check fails for any other hash: it is not vacuous.
  std::string other = hash;
  other[0] = other[0] == '0' ? '1' : '0';
  CHECK(kiln::test::run_command("veritysetup verify --hash-offset=" + std::to_string(offset) + " " +
                                image + " " + image + " " + other)
            .exit_code != 0);
}

TEST_CASE("the initrd carries the netboot pieces and stays within 40 MB", "[image][pxe]") {
  auto paths = initrd_paths(kPxe / "initrd.img");
  for (const char* path :
       {"usr/bin/kiln-netroot", "usr/lib/systemd/system-generators/kiln-netroot-generator",
        "usr/lib/systemd/system/kiln-netroot.service", "usr/lib/systemd/systemd-networkd",
        "usr/lib/systemd/network/90-kiln-netboot.network", "usr/lib/systemd/systemd-veritysetup"}) {
    INFO(path);
    CHECK(paths.count(path));
  }
  bool virtio_net = false;
  for (const auto& path : paths) virtio_net |= path.find("/virtio_net.ko") != std::string::npos;
  CHECK(virtio_net);
  CHECK(fs::file_size(kPxe / "initrd.img") <= 40'000'000);
}

TEST_CASE("the PXE folder's SHA256SUMS, and the build's, list its files", "[image][pxe]") {
  std::string folder_sums = kiln::read_file(kPxe / "SHA256SUMS");
  std::string build_sums = kiln::read_file(kImage / "SHA256SUMS");
  for (const char* file : {"boot.ipxe", "grub.cfg", "initrd.img", "root.img", "vmlinuz"}) {
    INFO(file);
    std::string digest = kiln::sha256_file(kPxe / file);
    CHECK_THAT(folder_sums, Catch::Contains(digest + "  " + file + "\n"));
    CHECK_THAT(build_sums, Catch::Contains(digest + "  pxe/" + file + "\n"));
  }
}

TEST_CASE("kiln stamp --pxe writes a private join config initrd and refuses what cannot boot",
          "[image][pxe][join]") {
  kiln::test::TempDir work;
  fs::path folder = work.path() / "pxe";
  fs::create_directory(folder);
  fs::copy_file(kPxe / "boot.ipxe", folder / "boot.ipxe");
  kiln::write_file_atomic(work.path() / "join.yaml",
                          kiln::test::join_config_text("2099-01-01T00:00:00Z"), 0600);
  std::string kiln = KILN_BINARY;

  auto stamped = kiln::test::run_command(kiln + " stamp --pxe " + folder.string() + " --join " +
                                         (work.path() / "join.yaml").string());
  INFO(stamped.output);
  REQUIRE(stamped.exit_code == 0);
  CHECK_THAT(stamped.output, Catch::Contains("abcdef.****************"));
  CHECK(stamped.output.find("0123456789abcdef") == std::string::npos);
  std::smatch ms;
  REQUIRE(std::regex_search(stamped.output, ms, std::regex(R"(in (\d+) ms)")));
  CHECK(std::stoi(ms[1]) < 1000);
  struct stat st {};
  REQUIRE(::stat((folder / "join.img").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(initrd_paths(folder / "join.img") == std::set<std::string>{"kiln", "kiln/join.yaml"});

  auto not_pxe = kiln::test::run_command(kiln + " stamp --pxe " + work.path().string() +
                                         " --join " + (work.path() / "join.yaml").string());
  CHECK(not_pxe.exit_code != 0);
  CHECK_THAT(not_pxe.output, Catch::Contains("is not a kiln PXE folder (no boot.ipxe)"));

  kiln::write_file_atomic(work.path() / "old.yaml",
                          kiln::test::join_config_text("2026-01-01T00:00:00Z"), 0600);
  auto expired = kiln::test::run_command(kiln + " stamp --pxe " + (work.path() / "x.img").string() +
                                         " --join " + (work.path() / "old.yaml").string());
  CHECK(expired.exit_code != 0);
  CHECK_THAT(expired.output, Catch::Contains("expired"));
  CHECK_FALSE(fs::exists(work.path() / "x.img"));
}

TEST_CASE(
    "pxe.install puts the disk image in the folder and its URL and digest on the "
    "command line",
    "[image][pxe]") {
  kiln::test::TempDir work;
  kiln::write_file_atomic(
      work.path() / "install.yaml",
      "include: " + std::string(KILN_SOURCE_DIR) + "/recipes/worker.yaml\npxe:\n  install: true\n");
  auto built = kiln::test::run_command(std::string(KILN_BINARY) + " build " +
                                       (work.path() / "install.yaml").string() +
                                       " --outputs pxe -o " + (work.path() / "out").string());
  INFO(built.output);
  REQUIRE(built.exit_code == 0);
  fs::path folder = work.path() / "out" / "pxe";
  std::string script = kiln::read_file(folder / "boot.ipxe");
  std::string digest = kiln::sha256_file(folder / "disk.raw.zst");
  CHECK_THAT(script,
             Catch::Contains(" kiln.install_url=${kiln-base}/disk.raw.zst kiln.install_sha256=" +
                             digest + " "));
  CHECK_THAT(kiln::read_file(folder / "SHA256SUMS"), Catch::Contains(digest + "  disk.raw.zst\n"));
  // It is the disk image: a kiln GPT disk once decompressed.
  auto raw = work.path() / "disk.raw";
  REQUIRE(kiln::test::run_command("zstd -dq " + (folder / "disk.raw.zst").string() + " -o " +
                                  raw.string())
              .exit_code == 0);
  kiln::GptDisk disk = kiln::read_gpt(raw);
  CHECK_NOTHROW(kiln::find_partition(disk, "kiln-config", raw));
  CHECK_NOTHROW(kiln::find_partition(disk, "state", raw));
  // The root it installs is the one the folder netboots.
  const auto& root = kiln::find_partition(disk, "root", raw);
  CHECK(kiln::read_at(raw, root.offset, 1 << 20) == kiln::read_at(folder / "root.img", 0, 1 << 20));

  kiln::write_file_atomic(work.path() / "typo.yaml", "name: x\npxe:\n  instal: true\n");
  auto typo = kiln::test::run_command(std::string(KILN_BINARY) + " validate " +
                                      (work.path() / "typo.yaml").string());
  CHECK(typo.exit_code == 3);
  CHECK_THAT(typo.output, Catch::Contains("typo.yaml:3:3: error: unknown key 'instal'"));
  CHECK_THAT(typo.output, Catch::Contains("did you mean 'install'?"));
}
