// libFuzzer harness: the GPT reader (read_gpt), as `kiln stamp` and `kiln stamp --show` use
// it on images they are handed. The input is a whole disk image. Unless the first byte of
// the protective MBR (boot code, which read_gpt ignores) is odd, the harness rewrites both
// CRC-32s first, so the fuzzer reaches past the checksums to the header fields and entries.
// A refusal is kiln::Error; every partition read lies inside the image.

#include <cstdint>
#include <string>

#include "builder/disk/gpt.h"
#include "builder/util/error.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

namespace {

std::uint64_t get_le(const std::string& bytes, std::size_t at, int width) {
  std::uint64_t value = 0;
  for (int i = width - 1; i >= 0; --i)
    value = value << 8 | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

void put_le32(std::string& bytes, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>(value >> (8 * i));
}

/// Makes the primary header's entry-array CRC and header CRC match what the image holds.
void fix_checksums(std::string& image) {
  constexpr std::size_t kHeader = kiln::kSectorSize;
  if (image.size() < kHeader + 92) return;
  std::uint64_t entries_at = get_le(image, kHeader + 72, 8) * kiln::kSectorSize;
  std::uint64_t entries_size = get_le(image, kHeader + 80, 4) * get_le(image, kHeader + 84, 4);
  if (entries_at <= image.size() && entries_size <= image.size() - entries_at)
    put_le32(image, kHeader + 88, kiln::crc32(image.data() + entries_at, entries_size));
  std::uint64_t header_size = get_le(image, kHeader + 12, 4);
  if (header_size < 92 || header_size > kiln::kSectorSize || kHeader + header_size > image.size())
    return;
  put_le32(image, kHeader + 16, 0);
  put_le32(image, kHeader + 16, kiln::crc32(image.data() + kHeader, header_size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static kiln::fuzz::MemoryFile file;
  std::string image(kiln::fuzz::as_text(data, size));
  if (image.empty() || (image[0] & 1) == 0) fix_checksums(image);
  file.hold(image);
  try {
    kiln::GptDisk disk = kiln::read_gpt(file.path());
    KILN_FUZZ_CHECK(disk.size == image.size());
    for (const auto& partition : disk.partitions) {
      KILN_FUZZ_CHECK(partition.offset <= disk.size);
      KILN_FUZZ_CHECK(partition.size <= disk.size - partition.offset);
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
