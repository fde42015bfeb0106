#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "builder/export/disk_formats.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

/// A small raw disk with data in a few places and holes between them.
fs::path write_raw(const fs::path& dir, const std::string& fill) {
  fs::path raw = dir / "disk.raw";
  kiln::write_file_atomic(raw, "");
  fs::resize_file(raw, 16 << 20);
  for (std::uint64_t at : {0ull, 1ull << 20, 9ull << 20}) {
    std::string block(64 << 10, '\0');
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = fill[(i * 7 + at) % fill.size()];
    kiln::write_at(raw, block, at);
  }
  return raw;
}

/// The descriptor text a streamOptimized VMDK embeds in its second sector.
std::string descriptor_of(const fs::path& vmdk) {
  std::string text = kiln::read_at(vmdk, 512, 1024);
  return text.substr(0, text.find('\0'));
}

std::string listing(const fs::path& dir) {
  std::string names;
  for (const auto& entry : fs::directory_iterator(dir))
    names += entry.path().filename().string() + "\n";
  return names;
}

}  // namespace

TEST_CASE("two VMDKs of the same disk are byte-identical and name their final file") {
  kiln::test::TempDir dir;
  fs::path raw = write_raw(dir.path(), "kiln reproducible vmdk ");
  fs::create_directories(dir.path() / "a");
  fs::create_directories(dir.path() / "b");
  kiln::write_vmdk(raw, dir.path() / "a/worker.vmdk");
  kiln::write_vmdk(raw, dir.path() / "b/worker.vmdk");

  // qemu-img picks a random CID and names the extent after the file it writes.
  CHECK(kiln::sha256_file(dir.path() / "a/worker.vmdk") ==
        kiln::sha256_file(dir.path() / "b/worker.vmdk"));
  std::string descriptor = descriptor_of(dir.path() / "a/worker.vmdk");
  CHECK_THAT(descriptor, Catch::Contains("\nparentCID=ffffffff\n"));
  CHECK_THAT(descriptor, Catch::Contains("createType=\"streamOptimized\""));
  CHECK_THAT(descriptor, Catch::Contains("RW 32768 SPARSE \"worker.vmdk\"\n"));
  CHECK(listing(dir.path() / "a") == "worker.vmdk\n");

  // Still a valid VMDK holding exactly the raw disk.
  kiln::run({"qemu-img", "check", "-q", (dir.path() / "a/worker.vmdk").string()});
  kiln::run({"qemu-img", "compare", "-q", "-f", "raw", "-F", "vmdk", raw.string(),
             (dir.path() / "a/worker.vmdk").string()});
}

TEST_CASE("the VMDK content ID follows the disk's content") {
  kiln::test::TempDir one, other;
  kiln::write_vmdk(write_raw(one.path(), "first disk "), one.path() / "worker.vmdk");
  kiln::write_vmdk(write_raw(other.path(), "second disk "), other.path() / "worker.vmdk");
  auto cid = [](const fs::path& vmdk) {
    std::string descriptor = descriptor_of(vmdk);
    std::size_t at = descriptor.find("\nCID=");
    REQUIRE(at != std::string::npos);
    return descriptor.substr(at + 5, 9);
  };
  std::string first = cid(one.path() / "worker.vmdk");
  CHECK(first.size() == 9);
  CHECK(first.back() == '\n');
  CHECK(first.find_first_not_of("0123456789abcdef") == 8);
  CHECK(first != cid(other.path() / "worker.vmdk"));
  // Setting it again reads the same content (the ID's own digits masked) and gives the same ID.
  CHECK(kiln::set_vmdk_content_id(one.path() / "worker.vmdk") + "\n" == first);
}

TEST_CASE("a VMDK whose random CID qemu printed short gets the same ID and bytes") {
  // qemu-img prints its CID without leading zeros: 7 digits one time in 16.
  kiln::test::TempDir dir;
  fs::path vmdk = dir.path() / "worker.vmdk";
  kiln::write_vmdk(write_raw(dir.path(), "short cid "), vmdk);
  std::string made = kiln::sha256_file(vmdk);
  std::string descriptor = descriptor_of(vmdk);
  std::size_t at = descriptor.find("\nCID=") + 5;
  std::string shorter = descriptor;
  shorter.replace(at, 8, "abc");
  kiln::write_at(vmdk, shorter + std::string(descriptor.size() - shorter.size(), '\0'), 512);
  REQUIRE(kiln::sha256_file(vmdk) != made);
  CHECK(kiln::set_vmdk_content_id(vmdk) == descriptor.substr(at, 8));
  CHECK(kiln::sha256_file(vmdk) == made);
}

TEST_CASE("setting a VMDK content ID refuses a file that is not a sparse VMDK") {
  kiln::test::TempDir dir;
  kiln::write_file_atomic(dir.path() / "plain.vmdk", std::string(4096, 'x'));
  CHECK_THROWS_WITH(
      kiln::set_vmdk_content_id(dir.path() / "plain.vmdk"),
      (dir.path() / "plain.vmdk").string() + " is not a sparse VMDK (no KDMV header)");

  // A header whose descriptor would lie beyond the end of the file.
  std::string header(4096, '\0');
  header.replace(0, 4, "KDMV");
  header[28] = 100;  // descriptor at sector 100 of an 8-sector file
  header[36] = 1;
  kiln::write_file_atomic(dir.path() / "short.vmdk", header);
  CHECK_THROWS_WITH(kiln::set_vmdk_content_id(dir.path() / "short.vmdk"),
                    Catch::Contains("has no embedded descriptor (offset 100 and size 1 sectors in "
                                    "a file of 8 sectors)"));
}
