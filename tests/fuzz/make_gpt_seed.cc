// Writes the GPT reader's seed (tests/fuzz/corpus/gpt/kiln-layout.img) with kiln's own
// write_gpt: a 75-sector disk with an ESP, a root and a kiln-config partition, small enough
// for the fuzzer to mutate every byte. Run from the sanitized build tree:
//   build/sanitized/tests/fuzz/make_gpt_seed tests/fuzz/corpus/gpt/kiln-layout.img

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "builder/disk/gpt.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
    return 2;
  }
  using kiln::kSectorSize;
  kiln::GptDisk disk;
  disk.size = 75 * kSectorSize;  // 34 sectors of primary GPT, 8 of data, 33 of backup GPT
  disk.guid = kiln::Guid::derived("kiln fuzz seed disk");
  disk.partitions = {
      {"esp", kiln::partition_type::esp, kiln::Guid::derived("esp"), 34 * kSectorSize,
       2 * kSectorSize, 0},
      {"root", kiln::partition_type::root_x86_64, kiln::Guid::derived("root"), 36 * kSectorSize,
       4 * kSectorSize, kiln::gpt_attribute::read_only},
      {"kiln-config", kiln::partition_type::linux_data, kiln::Guid::derived("kiln-config"),
       40 * kSectorSize, 2 * kSectorSize, kiln::gpt_attribute::no_auto},
  };
  int fd = ::open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::ftruncate(fd, off_t(disk.size)) != 0) {
    std::perror(argv[1]);
    return 1;
  }
  ::close(fd);
  kiln::write_gpt(argv[1], disk);
  return 0;
}
