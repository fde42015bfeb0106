// The readers `kiln inspect` uses on images it is handed: FAT file systems made by mkfs.fat
// and mtools (FAT12 and FAT32, long names), hostile FATs, OVA tar headers written by
// libarchive, loader entries and kernel command lines.
#include <archive.h>
#include <archive_entry.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "builder/inspect/fat_volume.h"
#include "builder/inspect/image_report.h"
#include "builder/inspect/tar_index.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

/// A FAT image of `kib` KiB (FAT32 when `fat32`) holding `files` (path, content).
std::string make_fat_image(const fs::path& dir, int kib, bool fat32,
                           const std::vector<std::pair<std::string, std::string>>& files) {
  fs::path tree = dir / "tree", image = dir / "fat.img";
  for (const auto& [path, content] : files) {
    fs::create_directories((tree / path).parent_path());
    kiln::write_file_atomic(tree / path, content);
  }
  std::vector<std::string> mkfs = {"mkfs.fat", "-C", "-n", "TEST"};
  if (fat32) mkfs.insert(mkfs.end(), {"-F", "32"});
  mkfs.insert(mkfs.end(), {image.string(), std::to_string(kib)});
  kiln::run(mkfs, {.quiet = true});
  for (const auto& entry : fs::directory_iterator(tree)) {
    kiln::run({"mcopy", "-s", "-i", image.string(), entry.path().string(), "::/"},
              {.env = {{"MTOOLS_SKIP_CHECK", "1"}}, .quiet = true});
  }
  return kiln::read_file(image);
}

std::string le16(unsigned value) {
  return {char(value & 0xff), char(value >> 8)};
}

}  // namespace

TEST_CASE("FatVolume reads files by long name from FAT12 and FAT32, as mtools wrote them",
          "[inspect]") {
  std::string big(70000, 'k');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = char('a' + i % 26);
  for (bool fat32 : {false, true}) {
    DYNAMIC_SECTION((fat32 ? "FAT32" : "FAT12")) {
      kiln::test::TempDir dir;
      std::string bytes = make_fat_image(dir.path(), fat32 ? 40 * 1024 : 1024, fat32,
                                         {{"loader/entries/kiln-1.0.0.conf", "title kiln\n"},
                                          {"loader/entries/kiln-2.0.0.conf", "title two\n"},
                                          {"kiln/manifest.json", big},
                                          {"grub/grub.cfg", "set timeout=0\n"},
                                          {"README", "short name"}});
      kiln::FatVolume volume(bytes, "test");
      auto entries = volume.list("/loader/entries");
      REQUIRE(entries);
      std::sort(entries->begin(), entries->end());
      CHECK(*entries == std::vector<std::string>{"kiln-1.0.0.conf", "kiln-2.0.0.conf"});
      CHECK(volume.read("/loader/entries/kiln-2.0.0.conf", 100) == "title two\n");
      CHECK(volume.read("/KILN/Manifest.JSON", 1 << 20) == big);  // FAT ignores case
      CHECK(volume.read("/grub/grub.cfg", 100) == "set timeout=0\n");
      CHECK(volume.read("/README", 100) == "short name");
      CHECK_FALSE(volume.read("/kiln/missing", 100));
      CHECK_FALSE(volume.read("/loader", 100));  // a directory is not a file
      CHECK_FALSE(volume.list("/README"));
      CHECK_THROWS_WITH(volume.read("/kiln/manifest.json", 1000),
                        Catch::Contains("more than the 1000 expected"));
    }
  }
}

TEST_CASE("FatVolume refuses broken boot sectors and loops in a cluster chain", "[inspect]") {
  kiln::test::TempDir dir;
  std::string bytes = make_fat_image(dir.path(), 1024, false, {{"a.txt", std::string(5000, 'a')}});
  CHECK_THROWS_WITH(kiln::FatVolume(bytes.substr(0, 100), "t"), Catch::Contains("too small"));
  std::string unsigned_boot = bytes;
  unsigned_boot[510] = 0;
  CHECK_THROWS_WITH(kiln::FatVolume(unsigned_boot, "t"), Catch::Contains("signature"));
  CHECK_THROWS_WITH(kiln::FatVolume(bytes.substr(0, bytes.size() / 2), "t"),
                    Catch::Contains("do not fit"));
  std::string odd_sector = bytes;
  odd_sector.replace(11, 2, le16(700));
  CHECK_THROWS_WITH(kiln::FatVolume(odd_sector, "t"), Catch::Contains("geometry"));

  // Point the file's second cluster back at its first: the chain loops.
  kiln::FatVolume volume(bytes, "t");
  REQUIRE(volume.read("/a.txt", 10000));
  unsigned reserved = static_cast<unsigned char>(bytes[14]) | static_cast<unsigned char>(bytes[15])
                                                                  << 8;
  std::size_t fat = std::size_t(reserved) * 512;
  std::string looped = bytes;
  // The file starts at cluster 2. In FAT12, entries 2 and 3 share bytes 3-5 of the table:
  // entry 2 = 3 and entry 3 = 2 make the chain 2, 3, 2, ...
  looped[fat + 3] = 0x03;
  looped[fat + 4] = 0x20;
  looped[fat + 5] = 0x00;
  CHECK_THROWS_WITH(kiln::FatVolume(looped, "t").read("/a.txt", 10000), Catch::Contains("loops"));
}

TEST_CASE("find_tar_member locates an OVA's disk in ustar headers and refuses bad ones",
          "[inspect]") {
  kiln::test::TempDir dir;
  fs::path ova = dir.path() / "x.ova";
  {
    archive* tar = archive_write_new();
    archive_write_set_format_ustar(tar);
    REQUIRE(archive_write_open_filename(tar, ova.c_str()) == ARCHIVE_OK);
    for (auto [name, size] : {std::pair{"x.ovf", 300}, std::pair{"x-disk1.vmdk", 2000}}) {
      archive_entry* entry = archive_entry_new();
      archive_entry_set_pathname(entry, name);
      archive_entry_set_size(entry, size);
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_perm(entry, 0644);
      archive_write_header(tar, entry);
      std::string data(std::size_t(size), name[2] == 'o' ? 'o' : 'v');
      archive_write_data(tar, data.data(), data.size());
      archive_entry_free(entry);
    }
    archive_write_close(tar);
    archive_write_free(tar);
  }
  std::string bytes = kiln::read_file(ova);
  auto reader = [&](const std::string& archive) {
    return [archive](std::uint64_t at, std::size_t count) {
      return at >= archive.size() ? std::string() : archive.substr(at, count);
    };
  };
  auto member = kiln::find_tar_member(reader(bytes), bytes.size(), ".vmdk", "x.ova");
  REQUIRE(member);
  CHECK(member->name == "x-disk1.vmdk");
  CHECK(member->size == 2000);
  CHECK(bytes.substr(member->offset, 2000) == std::string(2000, 'v'));
  CHECK_FALSE(kiln::find_tar_member(reader(bytes), bytes.size(), ".qcow2", "x.ova"));

  std::string bad_sum = bytes;
  bad_sum[0] = 'y';
  CHECK_THROWS_WITH(kiln::find_tar_member(reader(bad_sum), bad_sum.size(), ".vmdk", "x.ova"),
                    Catch::Contains("wrong checksum"));
  // A member claiming more bytes than the archive holds.
  std::string cut = bytes.substr(0, 512 + 512 + 512 + 100);
  CHECK_THROWS_WITH(kiln::find_tar_member(reader(cut), cut.size(), ".vmdk", "x.ova"),
                    Catch::Contains("ends past the archive"));
}

TEST_CASE("loader entries, GRUB menus and command lines are read as the loaders read them",
          "[inspect]") {
  auto entry = kiln::parse_boot_entry(
      "title kiln worker 2.0.0\nversion 2.0.0\r\nlinux /kiln/vmlinuz\noptions  roothash=ab ro\n"
      "options console=ttyS0\n");
  CHECK(entry.title == "kiln worker 2.0.0");
  CHECK(entry.version == "2.0.0");
  CHECK(entry.cmdline == "roothash=ab ro console=ttyS0");
  auto grub = kiln::parse_grub_entries(
      "set timeout=0\nmenuentry 'kiln worker 1.0.0' {\n  linux /kiln/vmlinuz roothash=cd ro\n"
      "  initrd /kiln/initrd.img\n}\nmenuentry \"second\" {\n linux /k x=1\n}\n");
  REQUIRE(grub.size() == 2);
  CHECK(grub[0].title == "kiln worker 1.0.0");
  CHECK(grub[0].cmdline == "roothash=cd ro");
  CHECK(grub[1].title == "second");
  auto ipxe = kiln::parse_ipxe_script(
      "#!ipxe\n# kernel in a comment\nisset ${x} || set x\nkernel vmlinuz initrd=initrd.img "
      "kiln.roothash=ef ro\nkernel other\n");
  REQUIRE(ipxe);
  CHECK(ipxe->loader == "ipxe");
  CHECK(ipxe->cmdline == "initrd=initrd.img kiln.roothash=ef ro");
  CHECK_FALSE(kiln::parse_ipxe_script("#!ipxe\nboot\n"));
  CHECK(kiln::cmdline_value("ro roothash=cd kiln.roothash=ef", "roothash") == "cd");
  CHECK(kiln::cmdline_value("ro kiln.roothash=ef", "roothash").empty());
  CHECK(kiln::cmdline_value("kiln.root_hash_offset=4096 ro", "kiln.root_hash_offset") == "4096");
}

TEST_CASE("a manifest summary needs kiln's fields and keeps packages and artifacts", "[inspect]") {
  auto summary = kiln::parse_manifest_summary(
      R"({"name": "w", "version": "1.2.0", "source_date_epoch": 5, "base": {"arch": "arm64"},
          "kubernetes": {"version": "v1.35.4"}, "kiln_version": "0.1.0",
          "packages": [{"name": "runc", "version": "1.1"}],
          "artifacts": [{"name": "kubelet", "origin": "go:x", "sha256": "ab"}]})",
      "m");
  CHECK(summary.name == "w");
  CHECK(summary.version == "1.2.0");
  CHECK(summary.arch == "arm64");
  CHECK(summary.source_date_epoch == 5);
  CHECK(summary.kubernetes_version == "v1.35.4");
  CHECK(summary.packages == std::vector<std::pair<std::string, std::string>>{{"runc", "1.1"}});
  REQUIRE(summary.artifacts.size() == 1);
  CHECK(summary.artifacts[0].origin == "go:x");
  CHECK(summary.sha256.size() == 64);
  CHECK_THROWS_WITH(kiln::parse_manifest_summary("[1]", "m"), Catch::Contains("not a JSON object"));
  CHECK_THROWS_WITH(kiln::parse_manifest_summary("{\"name\": \"w\"}", "m"),
                    Catch::Contains("not a kiln manifest"));
  CHECK_THROWS_WITH(kiln::parse_manifest_summary("{\"name\": ", "m"),
                    Catch::Contains("not a JSON object"));
}
