// libFuzzer harness: the kernel command line as the agent and kiln-netroot read it:
// kernel_argument for every kiln.* parameter, then the checks each value goes through
// (is_sha256_hex for the pins, parse_http_url for kiln.root_url). parse_http_url refuses with
// std::runtime_error; nothing else may escape. A value found is a suffix of one word.

#include <cstdint>
#include <stdexcept>
#include <string>

#include "builder/util/sha256.h"
#include "firstboot/kernel_cmdline.h"
#include "firstboot/netroot/http_download.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

namespace {

constexpr const char* kParameters[] = {
    "kiln.root_url",    "kiln.roothash",    "kiln.root_hash_offset", "kiln.join_url",
    "kiln.join_sha256", "kiln.install_url", "kiln.install_sha256"};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string cmdline(kiln::fuzz::as_text(data, size));
  for (const char* name : kParameters) {
    auto value = kiln::firstboot::kernel_argument(cmdline, name);
    if (!value) continue;
    KILN_FUZZ_CHECK(value->size() < cmdline.size());
    KILN_FUZZ_CHECK(cmdline.find(std::string(name) + "=" + *value) != std::string::npos);
    for (char c : *value) KILN_FUZZ_CHECK(!is_space(c));
    if (kiln::is_sha256_hex(*value)) KILN_FUZZ_CHECK(value->size() == 64);
    if (std::string(name) == "kiln.root_url") {
      try {
        kiln::firstboot::HttpUrl url = kiln::firstboot::parse_http_url(*value);
        KILN_FUZZ_CHECK(!url.host.empty() && !url.port.empty() && !url.path.empty());
        KILN_FUZZ_CHECK(url.path.front() == '/');
      } catch (const std::runtime_error&) {
      }
    }
  }
  return 0;
}
