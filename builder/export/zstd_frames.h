#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace kiln {

/// Root bytes per frame of an update's compressed root. A node resumes a broken download at
/// a frame boundary, so at most this much is fetched twice. Larger frames compress hardly
/// better (the default worker's root: 0.4% smaller in 64 MiB frames than in 16 MiB ones).
inline constexpr std::uint64_t kUpdateFrameSize = 16 << 20;

/// Writes `in` to the new file `out` as independent zstd frames, one per `frame_size` bytes
/// (the last one of what is left), each with its content size and checksum, and returns each
/// frame's compressed size. The frames are compressed in parallel but written in order at a
/// fixed level, so the same input gives the same bytes.
std::vector<std::uint64_t> write_zstd_frames(const std::filesystem::path& in,
                                             const std::filesystem::path& out,
                                             std::uint64_t frame_size);

}  // namespace kiln
