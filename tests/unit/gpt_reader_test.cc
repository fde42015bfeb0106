// The GPT reader on damaged or hostile images: every size and extent is bounded by the file, so
// a 1 MiB file can neither make kiln allocate gigabytes nor point `kiln stamp` past its end.
#include <sys/resource.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <functional>

#include "builder/disk/gpt.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "support/join_config_text.h"
#include "support/run_command.h"
#include "support/small_gpt_image.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

using kiln::test::kSmallConfigSector;
using kiln::test::small_gpt_image;
constexpr std::uint64_t kImageSize = kiln::test::kSmallImageSize;
constexpr std::uint64_t kConfigSector = kSmallConfigSector;

void put_le(std::string& at, std::size_t offset, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[offset + i] = static_cast<char>(value >> (8 * i));
}

std::uint64_t get_le(const std::string& at, std::size_t offset, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | std::uint8_t(at[offset + i]);
  return value;
}

/// Edits the primary GPT header (and, through `entries`, the first entry), then makes both
/// checksums right again, so only the bounds checks stand between the values and the reader.
void tamper(const fs::path& image, const std::function<void(std::string&)>& header,
            const std::function<void(std::string&)>& entries = {}) {
  std::string h = kiln::read_at(image, 512, 512);
  std::string array = kiln::read_at(image, 1024, 128 * 128);
  if (entries) {
    entries(array);
    kiln::write_at(image, array, 1024);
    put_le(h, 88, kiln::crc32(array.data(), array.size()), 4);
  }
  header(h);
  put_le(h, 16, 0, 4);
  put_le(h, 16, kiln::crc32(h.data(), get_le(h, 12, 4)), 4);
  kiln::write_at(image, h, 512);
}

long peak_rss_kib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

/// read_gpt's error, asserting it came quickly in memory terms: peak RSS grows < 64 MiB.
std::string read_gpt_error(const fs::path& image) {
  long before = peak_rss_kib();
  std::string message;
  try {
    kiln::read_gpt(image);
  } catch (const kiln::Error& e) {
    message = e.what();
  }
  CHECK(peak_rss_kib() - before < 64 * 1024);
  return message;
}

}  // namespace

TEST_CASE("the GPT reader reads back the table it wrote") {
  kiln::test::TempDir dir;
  auto disk = kiln::read_gpt(small_gpt_image(dir.path()));
  REQUIRE(disk.partitions.size() == 1);
  CHECK(disk.partitions[0].name == "kiln-config");
  CHECK(disk.partitions[0].offset == kConfigSector * 512);
  CHECK(disk.partitions[0].size == 512 << 10);
}

TEST_CASE("a GPT written for 4096-byte sectors is found where a 4Kn disk keeps it and read back") {
  kiln::test::TempDir dir;
  fs::path image = dir.path() / "4k.raw";
  kiln::write_file_atomic(image, std::string(4 << 20, '\0'));
  kiln::GptDisk disk;
  disk.size = 4 << 20;
  disk.sector_size = 4096;
  disk.guid = kiln::Guid::derived("4k disk");
  disk.partitions.push_back(
      {"esp", kiln::Guid::derived("type"), kiln::Guid::derived("esp"), 1 << 20, 2 << 20, 0});
  kiln::write_gpt(image, disk);
  std::string bytes = kiln::read_file(image);
  // Header in LBA 1 (byte 4096), entries from LBA 2, in 4096-byte units; the backup header in
  // the last sector, its entries in the four before it.
  CHECK(bytes.substr(4096, 8) == "EFI PART");
  CHECK(bytes.substr(512, 8) != "EFI PART");
  CHECK(get_le(bytes, 4096 + 72, 8) == 2);
  CHECK(get_le(bytes, 4096 + 40, 8) == 6);                     // first usable LBA
  CHECK(get_le(bytes, 4096 + 32, 8) == (4 << 20) / 4096 - 1);  // backup header LBA
  CHECK(bytes.substr((4 << 20) - 4096, 8) == "EFI PART");
  CHECK(get_le(bytes, 8192 + 32, 8) == 256);  // the partition's first LBA: 1 MiB / 4096
  auto read = kiln::read_gpt(image);
  CHECK(read.sector_size == 4096);
  REQUIRE(read.partitions.size() == 1);
  CHECK(read.partitions[0].offset == 1 << 20);
  CHECK(read.partitions[0].size == 2 << 20);
}

TEST_CASE("the GPT reader refuses a 1 GiB partition entry without allocating it") {
  kiln::test::TempDir dir;
  fs::path image = small_gpt_image(dir.path());
  tamper(image, [](std::string& h) {
    put_le(h, 80, 1, 4);         // one entry ...
    put_le(h, 84, 1u << 30, 4);  // ... of 1 GiB
  });
  CHECK(read_gpt_error(image) ==
        image.string() +
            ": malformed GPT: partition entry size 1073741824 is not 128, 256, ... 4096 bytes");
}

TEST_CASE("the GPT reader refuses an entry size that is not 128 times a power of two") {
  kiln::test::TempDir dir;
  fs::path image = small_gpt_image(dir.path());
  tamper(image, [](std::string& h) { put_le(h, 84, 200, 4); });
  CHECK_THAT(read_gpt_error(image), Catch::Contains("partition entry size 200 is not"));
}

TEST_CASE("the GPT reader refuses a huge partition entry count") {
  kiln::test::TempDir dir;
  fs::path image = small_gpt_image(dir.path());
  tamper(image, [](std::string& h) { put_le(h, 80, 0xffffffffu, 4); });
  CHECK(read_gpt_error(image) == image.string() +
                                     ": malformed GPT: 4294967295 partition entries of 128 "
                                     "bytes (at most 1024 KiB)");
}

TEST_CASE("the GPT reader refuses an entry array that lies beyond the end of the file") {
  kiln::test::TempDir dir;
  fs::path image = small_gpt_image(dir.path());
  tamper(image, [](std::string& h) { put_le(h, 72, 2040, 8); });
  CHECK(read_gpt_error(image) == image.string() +
                                     ": malformed GPT: the partition entry array (sector 2040, "
                                     "32 sectors) lies outside the 1048576-byte file");
}

TEST_CASE("the GPT reader refuses a partition that ends before it starts") {
  kiln::test::TempDir dir;
  fs::path image = small_gpt_image(dir.path());
  tamper(
      image, [](std::string&) {}, [](std::string& e) { put_le(e, 40, kConfigSector - 1, 8); });
  CHECK(read_gpt_error(image) == image.string() +
                                     ": malformed GPT: partition 1 ('kiln-config') ends (sector "
                                     "255) before it starts (sector 256)");
}

TEST_CASE("the GPT reader refuses a partition that reaches past the end of the file") {
  kiln::test::TempDir dir;
  fs::path image = small_gpt_image(dir.path());
  // 4 GiB from sector 256: what would make `kiln stamp` grow the file to 4 GiB.
  tamper(
      image, [](std::string&) {},
      [](std::string& e) { put_le(e, 40, kConfigSector + (4ull << 30) / 512 - 1, 8); });
  CHECK(read_gpt_error(image) == image.string() +
                                     ": malformed GPT: partition 1 ('kiln-config') (sectors "
                                     "256-8388863) lies outside the 1048576-byte file (2048 "
                                     "sectors)");
}

TEST_CASE("kiln stamp refuses an image whose config partition reaches past its end") {
  kiln::test::TempDir dir;
  fs::path image = small_gpt_image(dir.path());
  tamper(
      image, [](std::string&) {},
      [](std::string& e) { put_le(e, 40, kConfigSector + (64ull << 20) / 512 - 1, 8); });
  fs::path config = dir.path() / "join.yaml";
  kiln::write_file_atomic(config, kiln::test::join_config_text("2099-01-01T00:00:00Z"), 0600);
  const std::string expected = "lies outside the 1048576-byte file";

  auto show = kiln::test::run_command(std::string(KILN_BINARY) + " stamp --show " + image.string());
  CHECK(show.exit_code != 0);
  CHECK_THAT(show.output, Catch::Contains(expected));

  auto stamp = kiln::test::run_command(std::string(KILN_BINARY) + " stamp " + image.string() +
                                       " --join " + config.string());
  CHECK(stamp.exit_code != 0);
  CHECK_THAT(stamp.output, Catch::Contains(expected));
  CHECK(fs::file_size(image) == kImageSize);
}

TEST_CASE("kiln stamp refuses an oversized config partition") {
  kiln::test::TempDir dir;
  fs::path image = dir.path() / "big.raw";
  kiln::write_file_atomic(image, "");
  fs::resize_file(image, 128ull << 20);  // sparse
  kiln::GptDisk disk;
  disk.size = 128ull << 20;
  disk.guid = kiln::Guid::derived("big disk");
  disk.partitions.push_back({"kiln-config", kiln::Guid::derived("type"),
                             kiln::Guid::derived("kiln-config"), 1 << 20, 100ull << 20, 0});
  kiln::write_gpt(image, disk);
  auto show = kiln::test::run_command(std::string(KILN_BINARY) + " stamp --show " + image.string());
  CHECK(show.exit_code != 0);
  CHECK_THAT(show.output, Catch::Contains("the kiln-config partition is 104857600 bytes; kiln "
                                          "makes it 8 MiB and accepts 64 KiB to 64 MiB"));
}
