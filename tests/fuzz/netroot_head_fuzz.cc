// libFuzzer harness: kiln-netroot's HTTP response head parser (parse_response_head), which
// reads status, Content-Length and Content-Range from the server that hands out the root
// image. A refusal is std::runtime_error (the download retries it); nothing else may escape.

#include <cstdint>
#include <stdexcept>

#include "firstboot/netroot/http_download.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    (void)kiln::firstboot::parse_response_head(kiln::fuzz::as_text(data, size));
  } catch (const std::runtime_error&) {
  }
  return 0;
}
