#include "builder/update/zstd_frame_reader.h"

#include <fmt/format.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <string>

#include "builder/update/update_index.h"
#include "builder/util/error.h"

namespace kiln {

struct ZstdFrameReader::Decoder {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> context{ZSTD_createDCtx(), ZSTD_freeDCtx};
  std::string buffer = std::string(1 << 20, '\0');
};

ZstdFrameReader::ZstdFrameReader(std::uint64_t frame_size, std::uint64_t root_size,
                                 std::uint64_t first_frame, Output output, FrameEnd frame_end)
    : frame_size_(frame_size),
      root_size_(root_size),
      output_(std::move(output)),
      on_frame_end_(std::move(frame_end)),
      decoder_(std::make_unique<Decoder>()) {
  if (!is_zstd_frame_size(frame_size))
    throw Error(fmt::format("a zstd frame size of {} bytes is not a power of two from 1 to 64 MiB",
                            frame_size));
  if (first_frame > root_size / frame_size)
    throw Error(
        fmt::format("frame {} is past the end of a root of {} bytes", first_frame + 1, root_size));
  if (!decoder_->context) throw Error("out of memory for a zstd decoder");
  offset_ = first_frame * frame_size;
  frame_end_ = std::min(offset_ + frame_size_, root_size_);
  // A frame never needs a window larger than its content: a header asking for more is refused
  // rather than allocated.
  ZSTD_DCtx_setParameter(decoder_->context.get(), ZSTD_d_windowLogMax,
                         std::bit_width(frame_size) - 1);
}

ZstdFrameReader::~ZstdFrameReader() = default;

void ZstdFrameReader::feed(std::string_view compressed) {
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  while (in.pos < in.size) {
    const std::uint64_t frame = offset_ / frame_size_ + 1;
    if (offset_ == root_size_ && !in_frame_)
      throw ZstdFrameError(
          fmt::format("the compressed root goes on after its last frame ({})", frame - 1));
    in_frame_ = true;
    // Room for one byte past the frame's end, so that a frame longer than it should be shows.
    std::size_t room = std::min<std::uint64_t>(decoder_->buffer.size(), frame_end_ - offset_ + 1);
    ZSTD_outBuffer out{decoder_->buffer.data(), room, 0};
    const std::size_t consumed_before = in.pos;
    std::size_t status = ZSTD_decompressStream(decoder_->context.get(), &out, &in);
    if (ZSTD_isError(status)) {
      throw ZstdFrameError(fmt::format("frame {} of the compressed root is damaged: {}", frame,
                                       ZSTD_getErrorName(status)));
    }
    if (offset_ + out.pos > frame_end_) {
      throw ZstdFrameError(
          fmt::format("frame {} of the compressed root holds more than its {} bytes", frame,
                      frame_end_ - (frame - 1) * frame_size_));
    }
    if (out.pos > 0) {
      output_(offset_, std::string_view(decoder_->buffer.data(), out.pos));
      offset_ += out.pos;
    }
    if (status == 0) {  // the frame ended, and was flushed whole
      if (offset_ != frame_end_) {
        throw ZstdFrameError(fmt::format("frame {} of the compressed root holds {} bytes, not {}",
                                         frame, offset_ - (frame - 1) * frame_size_,
                                         frame_end_ - (frame - 1) * frame_size_));
      }
      in_frame_ = false;
      on_frame_end_(offset_);
      frame_end_ = std::min(offset_ + frame_size_, root_size_);
    } else if (out.pos == 0 && in.pos == consumed_before) {
      throw ZstdFrameError(fmt::format("frame {} of the compressed root cannot be decoded", frame));
    }
  }
}

}  // namespace kiln
