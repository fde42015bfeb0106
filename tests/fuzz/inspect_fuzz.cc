// libFuzzer harness: what `kiln inspect` reads out of an image it is handed. The input is a
// FAT file system (an ESP or kiln-config partition) and, read again, an OVA's tar headers.
// FatVolume either throws kiln::Error or lists and reads files no larger than asked; what it
// reads goes through the same parsers inspect uses (loader entries, GRUB's menu, the
// manifest, a stamped join config); the tar index names a member that lies inside the input.

#include <cstdint>

#include "builder/inspect/fat_volume.h"
#include "builder/inspect/image_report.h"
#include "builder/inspect/tar_index.h"
#include "builder/util/error.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = kiln::fuzz::as_text(data, size);
  try {
    kiln::FatVolume volume(input, "fuzz");
    for (const char* directory : {"/", "/loader/entries", "/kiln"}) {
      if (auto names = volume.list(directory)) {
        for (const auto& name : *names) {
          auto text = volume.read(std::string(directory) + "/" + name, 4096);
          KILN_FUZZ_CHECK(!text || text->size() <= 4096);
          if (text) {
            kiln::parse_boot_entry(*text);
            kiln::parse_grub_entries(*text);
            kiln::parse_ipxe_script(*text);
            if (auto prefix = kiln::raspberry_pi_os_prefix(*text)) {
              KILN_FUZZ_CHECK(prefix->find("..") == std::string::npos);
              kiln::raspberry_pi_entry(*prefix, *text);
            }
            kiln::cmdline_value(*text, "roothash");
          }
        }
      }
    }
    if (auto manifest = volume.read("/kiln/manifest.json", 1 << 20))
      kiln::parse_manifest_summary(*manifest, "fuzz");
    auto join = volume.read("/join.yaml", 64 << 10);
    auto state = kiln::summarize_stamp(join, volume.read("/update-url", 4096), "fuzz");
    KILN_FUZZ_CHECK(!state.stamped || state.token_masked.find('*') != std::string::npos);
  } catch (const kiln::Error&) {
  }
  try {
    auto member = kiln::find_tar_member(
        [&](std::uint64_t at, std::size_t count) {
          return at >= input.size() ? std::string() : std::string(input.substr(at, count));
        },
        input.size(), ".vmdk", "fuzz");
    if (member) KILN_FUZZ_CHECK(member->offset <= size && member->size <= size - member->offset);
  } catch (const kiln::Error&) {
  }
  return 0;
}
