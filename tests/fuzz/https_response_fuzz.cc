// libFuzzer harness: the first-boot agent's HTTP response parser (parse_http_response), on
// whatever bytes a hostile server sends: status line, headers, Content-Length or chunked
// bodies. A refusal is kiln::Error; the body never exceeds the cap the caller gives.

#include <cstdint>

#include "builder/util/error.h"
#include "firstboot/https_client.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

namespace {
// Small enough that the fuzzer reaches the cap with inputs of a few KiB.
constexpr std::size_t kMaxBody = 4096;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    kiln::http::Response response =
        kiln::firstboot::parse_http_response(kiln::fuzz::as_text(data, size), kMaxBody);
    KILN_FUZZ_CHECK(response.body.size() <= kMaxBody);
  } catch (const kiln::Error&) {
  }
  return 0;
}
