// pxe.install's disk writer: the image lands byte for byte over whatever the disk held, with its
// zero runs sent as zero-range requests instead of written data.
#include "firstboot/image_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::firstboot::write_image;
using kiln::firstboot::write_zstd_image;

namespace {

constexpr std::size_t kMiB = 1 << 20;

/// 10 MiB + 100 bytes: data, a zero run across the writer's 4 MiB buffer boundary, one
/// non-zero byte, another zero run and a short zero tail.
std::string sample_image() {
  std::string image(10 * kMiB + 100, '\0');
  for (std::size_t i = 0; i < kMiB; ++i) image[i] = static_cast<char>('a' + i % 26);
  image[5 * kMiB + 100] = 'x';
  return image;
}

void prefill(const fs::path& target, std::size_t size) {
  kiln::write_file_atomic(target, std::string(size, '\xAA'));
}

}  // namespace

TEST_CASE("a written image replaces old data byte for byte and leaves what lies beyond alone") {
  kiln::test::TempDir dir;
  std::string image = sample_image();
  kiln::write_file_atomic(dir.path() / "image.raw", image);
  prefill(dir.path() / "disk", 12 * kMiB);

  int in = ::open((dir.path() / "image.raw").c_str(), O_RDONLY);
  int target = ::open((dir.path() / "disk").c_str(), O_WRONLY);
  auto written = write_image(in, target);
  ::close(in);
  ::close(target);

  CHECK(written.size == image.size());
  // [1, 5) MiB and [5 MiB + 64 KiB, 10 MiB) are whole zero blocks; the tail is too short.
  CHECK(written.zeroed == 9 * kMiB - (64 << 10));
  std::string disk = kiln::read_file(dir.path() / "disk");
  REQUIRE(disk.size() == 12 * kMiB);
  CHECK(disk.substr(0, image.size()) == image);
  CHECK(disk.substr(image.size()) == std::string(12 * kMiB - image.size(), '\xAA'));
}

TEST_CASE("a zstd image is decompressed straight onto the target") {
  kiln::test::TempDir dir;
  std::string image = sample_image();
  kiln::write_file_atomic(dir.path() / "image.raw", image);
  kiln::run({"zstd", "--quiet", (dir.path() / "image.raw").string(), "-o",
             (dir.path() / "image.raw.zst").string()});
  prefill(dir.path() / "disk", image.size());

  auto written = write_zstd_image(dir.path() / "image.raw.zst", dir.path() / "disk");
  CHECK(written.size == image.size());
  CHECK(kiln::read_file(dir.path() / "disk") == image);
}

TEST_CASE("a corrupt zstd image fails with zstd's exit status named") {
  kiln::test::TempDir dir;
  kiln::write_file_atomic(dir.path() / "image.raw", sample_image());
  kiln::run({"zstd", "--quiet", (dir.path() / "image.raw").string(), "-o",
             (dir.path() / "image.raw.zst").string()});
  std::string zst = kiln::read_file(dir.path() / "image.raw.zst");
  kiln::write_file_atomic(dir.path() / "image.raw.zst", zst.substr(0, zst.size() / 2));
  prefill(dir.path() / "disk", 12 * kMiB);

  CHECK_THROWS_WITH(write_zstd_image(dir.path() / "image.raw.zst", dir.path() / "disk"),
                    Catch::StartsWith("command failed with exit status 1: zstd --decompress"));
}

TEST_CASE("an image larger than the disk is refused before anything is written") {
  kiln::test::TempDir dir;
  std::string image = sample_image();
  kiln::write_file_atomic(dir.path() / "image.raw", image);
  kiln::run({"zstd", "--quiet", "-T0", "-12", (dir.path() / "image.raw").string(), "-o",
             (dir.path() / "image.raw.zst").string()});
  // The raw.zst output's own zstd command line states the size in the frame header.
  CHECK(kiln::firstboot::zstd_content_size(dir.path() / "image.raw.zst") == image.size());
  prefill(dir.path() / "disk", 4 * kMiB);

  CHECK_THROWS_WITH(write_zstd_image(dir.path() / "image.raw.zst", dir.path() / "disk"),
                    (dir.path() / "disk").string() +
                        " holds 4.0 MiB, less than the disk image's 10.0 MiB; nothing was "
                        "written to it");
  CHECK(kiln::read_file(dir.path() / "disk") == std::string(4 * kMiB, '\xAA'));
}

TEST_CASE("a zstd stream without a stated size has no content size") {
  kiln::test::TempDir dir;
  // Compressed from a pipe, zstd cannot know the size in advance.
  kiln::write_file_atomic(dir.path() / "data", sample_image());
  kiln::run({"sh", "-c",
             "cat " + (dir.path() / "data").string() + " | zstd --quiet > " +
                 (dir.path() / "piped.zst").string()});
  CHECK_FALSE(kiln::firstboot::zstd_content_size(dir.path() / "piped.zst"));
  kiln::write_file_atomic(dir.path() / "not.zst", "plain text");
  CHECK_FALSE(kiln::firstboot::zstd_content_size(dir.path() / "not.zst"));
}
