#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "builder/util/error.h"

namespace kiln {

/// Frames that are not the root they should be: damaged, too long or short, or too many.
struct ZstdFrameError : Error {
  using Error::Error;
};

/// Decodes a compressed update root as it arrives from the network: independent zstd frames,
/// each of which must decompress to exactly `frame_size` bytes of the root (the last one to
/// what is left of `root_size`). Any other length, a damaged frame, a frame whose window is
/// larger than `frame_size`, or bytes after the last frame throw ZstdFrameError before
/// anything past the frame's end is handed on; what the callbacks throw passes through. Memory: one
/// window of at most `frame_size` and a 1 MiB buffer.
class ZstdFrameReader {
 public:
  /// Bytes of the root at `offset`, in pieces of at most 1 MiB, in order.
  using Output = std::function<void(std::uint64_t offset, std::string_view data)>;
  /// A frame ended; `end` is the root offset after it (where a later download may resume).
  using FrameEnd = std::function<void(std::uint64_t end)>;

  /// Starts at frame `first_frame`: the caller fetches the compressed file from that frame's
  /// first byte on.
  ZstdFrameReader(std::uint64_t frame_size, std::uint64_t root_size, std::uint64_t first_frame,
                  Output output, FrameEnd frame_end);
  ~ZstdFrameReader();
  ZstdFrameReader(const ZstdFrameReader&) = delete;
  ZstdFrameReader& operator=(const ZstdFrameReader&) = delete;

  /// Decodes the next compressed bytes, whatever frames they start, end or cut through.
  void feed(std::string_view compressed);
  /// Every frame up to the end of the root was decoded.
  bool finished() const { return offset_ == root_size_ && !in_frame_; }
  /// The root offset decoded up to.
  std::uint64_t offset() const { return offset_; }

 private:
  struct Decoder;
  std::uint64_t frame_size_, root_size_, offset_, frame_end_;
  bool in_frame_ = false;  ///< a frame has begun and not yet ended (its checksum may be due)
  Output output_;
  FrameEnd on_frame_end_;
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace kiln
