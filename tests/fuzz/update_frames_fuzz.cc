// libFuzzer harness: a compressed update root as kiln-update decodes it from the network.
// Input: one byte choosing the frame size (1 or 2 MiB), two giving how far the root's end
// falls short of its last frame, one for the frame to start at, one for the size of the
// pieces the bytes arrive in, then the zstd frames. Whatever they hold, the reader throws
// kiln::Error or hands on bytes in order, inside the root, from the first frame's start on,
// and says a frame ended only where one should end.

#include <cstdint>

#include "builder/update/zstd_frame_reader.h"
#include "builder/util/error.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const std::uint64_t frame_size = std::uint64_t(1) << (20 + (data[0] & 1));
  const std::uint64_t short_by = (std::uint64_t(data[1]) << 8 | data[2]) % frame_size;
  const std::uint64_t root_size = 2 * frame_size - short_by;
  const std::uint64_t first_frame = data[3] % 3;  // 2 is past the end unless nothing is short
  const std::size_t piece = 1 + std::size_t(data[4]) * 257;
  std::string_view stream = kiln::fuzz::as_text(data + 5, size - 5);
  try {
    std::uint64_t next = first_frame * frame_size;
    kiln::ZstdFrameReader reader(
        frame_size, root_size, first_frame,
        [&](std::uint64_t offset, std::string_view bytes) {
          KILN_FUZZ_CHECK(offset == next && !bytes.empty() && offset + bytes.size() <= root_size);
          next += bytes.size();
        },
        [&](std::uint64_t end) {
          KILN_FUZZ_CHECK(end == next && (end % frame_size == 0 || end == root_size));
        });
    for (std::size_t at = 0; at < stream.size(); at += piece) reader.feed(stream.substr(at, piece));
    KILN_FUZZ_CHECK(reader.offset() == next);
    KILN_FUZZ_CHECK(!reader.finished() || next == root_size);
  } catch (const kiln::Error&) {
  }
  return 0;
}
