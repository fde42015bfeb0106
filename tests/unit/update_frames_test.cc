// An update's root as zstd frames: how the builder writes them, how the index lists them, and
// how a node decodes them as they arrive, resumes at a frame and refuses what is not the root.
#include <catch2/catch.hpp>
#include <random>

#include "builder/export/zstd_frames.h"
#include "builder/update/update_index.h"
#include "builder/update/zstd_frame_reader.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "support/temp_dir.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kFrame = 1 << 20;

/// 2.5 MiB that compresses, but not to nothing: text with random bytes between.
std::string sample_root() {
  std::mt19937 random(7);
  std::string root;
  while (root.size() < 5 * kFrame / 2) {
    root += "kubelet containerd erofs dm-verity ";
    root += char(random() & 0xff);
  }
  root.resize(5 * kFrame / 2);
  return root;
}

struct Frames {
  test::TempDir dir;
  std::string root = sample_root();
  std::string packed;
  std::vector<std::uint64_t> sizes;
  Frames() {
    write_file_atomic(dir.path() / "root.img", root);
    sizes = write_zstd_frames(dir.path() / "root.img", dir.path() / "root.img.zst", kFrame);
    packed = read_file(dir.path() / "root.img.zst");
  }
};

/// Feeds `packed` to a reader in pieces of `piece` bytes; returns what it wrote where, and
/// the frame ends it reported.
struct Decoded {
  std::string root;
  std::vector<std::uint64_t> ends;
};
Decoded decode(std::string_view packed, std::uint64_t root_size, std::uint64_t first_frame,
               std::size_t piece) {
  Decoded got;
  got.root.assign(root_size, '\0');
  ZstdFrameReader reader(
      kFrame, root_size, first_frame,
      [&](std::uint64_t offset, std::string_view data) {
        REQUIRE(offset + data.size() <= root_size);
        got.root.replace(offset, data.size(), data);
      },
      [&](std::uint64_t end) { got.ends.push_back(end); });
  for (std::size_t at = 0; at < packed.size(); at += piece) reader.feed(packed.substr(at, piece));
  REQUIRE(reader.finished());
  return got;
}

UpdateRelease release_with_frames(const std::vector<std::uint64_t>& frames,
                                  std::uint64_t root_size) {
  auto file = [](const std::string& name, std::uint64_t size) {
    return UpdateFile{name, size, std::string(64, 'a')};
  };
  UpdateRelease r{"1.0.0",
                  std::string(64, 'b'),
                  "roothash=x ro",
                  file("worker_1.0.0.root.img", root_size),
                  file("worker_1.0.0.verity.img", 4096),
                  file("worker_1.0.0.vmlinuz", 4096),
                  file("worker_1.0.0.initrd.img", 4096)};
  std::uint64_t total = 0;
  for (auto f : frames) total += f;
  r.root_zstd = ZstdFrames{file("worker_1.0.0.root.img.zst", total), kFrame, frames};
  return r;
}

}  // namespace

TEST_CASE("a root becomes one zstd frame per frame size, the same bytes every time", "[update]") {
  Frames frames;
  REQUIRE(frames.sizes.size() == 3);  // 1 MiB, 1 MiB, 0.5 MiB
  std::uint64_t total = 0;
  for (auto size : frames.sizes) total += size;
  CHECK(total == frames.packed.size());
  CHECK(frames.packed.size() < frames.root.size() / 2);
  auto again =
      write_zstd_frames(frames.dir.path() / "root.img", frames.dir.path() / "again.zst", kFrame);
  CHECK(again == frames.sizes);
  CHECK(read_file(frames.dir.path() / "again.zst") == frames.packed);
}

TEST_CASE("a node decodes the frames in any pieces and learns where each one ends", "[update]") {
  Frames frames;
  for (std::size_t piece : {std::size_t(1), std::size_t(4093), std::size_t(1) << 20}) {
    if (piece == 1 && frames.packed.size() > 200000) continue;  // slow, and proves nothing new
    Decoded got = decode(frames.packed, frames.root.size(), 0, piece);
    CHECK(got.root == frames.root);
    CHECK(got.ends == std::vector<std::uint64_t>{kFrame, 2 * kFrame, frames.root.size()});
  }
}

TEST_CASE("a download that broke off resumes at a frame with the rest of the file", "[update]") {
  Frames frames;
  std::string rest = frames.packed.substr(frames.sizes[0]);
  Decoded got = decode(rest, frames.root.size(), 1, 65536);
  CHECK(got.root.substr(kFrame) == frames.root.substr(kFrame));
  CHECK(got.root.substr(0, kFrame) == std::string(kFrame, '\0'));  // nothing before the frame
  CHECK(got.ends == std::vector<std::uint64_t>{2 * kFrame, frames.root.size()});
  CHECK_THROWS_WITH(decode("", frames.root.size(), 3, 1), Catch::Contains("past the end"));
}

TEST_CASE(
    "frames that are not the root they claim are refused before anything past them is "
    "written",
    "[update]") {
  Frames frames;
  const std::uint64_t size = frames.root.size();
  auto refused = [&](std::string_view packed, std::uint64_t root_size, const std::string& words) {
    CHECK_THROWS_WITH(decode(packed, root_size, 0, 65536), Catch::Contains(words));
  };
  std::string damaged = frames.packed;
  damaged[frames.sizes[0] + frames.sizes[1] / 2] ^= 0x20;
  refused(damaged, size, "frame 2 of the compressed root is damaged");
  // The same frames, said to be a root whose last frame is a byte shorter or longer.
  refused(frames.packed, size - 1, "frame 3 of the compressed root holds more than its");
  refused(frames.packed, size + 1, "frame 3 of the compressed root holds 524288 bytes, not 524289");
  refused(frames.packed + frames.packed.substr(0, 100), size, "goes on after its last frame");
  // A frame of another size: the first frame of a root cut in 2 MiB frames.
  test::TempDir dir;
  write_file_atomic(dir.path() / "root.img", frames.root);
  write_zstd_frames(dir.path() / "root.img", dir.path() / "big.zst", 2 * kFrame);
  refused(read_file(dir.path() / "big.zst"), size, "frame 1 of the compressed root is damaged");
  // A skippable frame decodes to nothing: not the root's first megabyte.
  std::string skippable("\x50\x2a\x4d\x18\x04\x00\x00\x00kiln", 12);
  refused(skippable + frames.packed, size, "frame 1 of the compressed root holds 0 bytes");
  CHECK_THROWS_WITH(ZstdFrameReader(3 << 19, size, 0, {}, {}),
                    Catch::Contains("not a power of two"));
}

TEST_CASE("an index lists a release's frames, and older indexes without them still parse",
          "[update]") {
  Frames frames;
  UpdateRelease with = release_with_frames(frames.sizes, frames.root.size());
  std::string text = render_update_index({"worker", "amd64", {with}});
  CHECK_THAT(text, Catch::Contains("\"rootZstd\"") && Catch::Contains("\"frameSize\": 1048576"));
  UpdateIndex parsed = parse_update_index(text);
  REQUIRE(parsed.releases.at(0).root_zstd);
  CHECK(parsed.releases[0].root_zstd->frames == frames.sizes);
  CHECK(render_update_index(parsed) == text);
  REQUIRE(release_files(parsed.releases[0]).size() == 5);
  CHECK(release_files(parsed.releases[0]).back()->name == "worker_1.0.0.root.img.zst");

  UpdateRelease without = with;
  without.root_zstd.reset();
  UpdateIndex old = parse_update_index(render_update_index({"worker", "amd64", {without}}));
  CHECK_FALSE(old.releases.at(0).root_zstd);
  CHECK(release_files(old.releases[0]).size() == 4);

  auto refused = [&](UpdateRelease r, const std::string& words) {
    CHECK_THROWS_WITH(parse_update_index(render_update_index({"worker", "amd64", {r}})),
                      Catch::Contains(words));
  };
  UpdateRelease r = with;
  r.root_zstd->frames.pop_back();
  r.root_zstd->file.size -= frames.sizes.back();
  refused(r, "lists 2 frames; a root of 2621440 bytes has 3");
  r = with;
  r.root_zstd->file.size += 1;
  refused(r, "frames add up to");
  r = with;
  r.root_zstd->frame_size = 512 << 10;
  refused(r, "frameSize 524288 is not a power of two from 1 to 64 MiB");
  r = with;
  r.root_zstd->frames[0] = 0;
  refused(r, "has a frame of 0 bytes, out of range");
  r = with;
  r.root_zstd->frames[0] = 4 << 20;
  refused(r, "has a frame of 4194304 bytes, out of range");
}
