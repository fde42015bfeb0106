// libFuzzer harness: base64 (kubeconfig *-data) and base64url (JWS) decoding. Decoding never
// throws and undoes encoding; base64url decoding is strict (RFC 7515: no padding, no line
// breaks, zero trailing bits), so each byte string has exactly one accepted spelling and a
// signature cannot be re-spelled.

#include <cstdint>

#include "builder/util/base64.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = kiln::fuzz::as_text(data, size);

  KILN_FUZZ_CHECK(kiln::base64_decode(kiln::base64_encode(input)) == input);
  KILN_FUZZ_CHECK(kiln::base64url_decode(kiln::base64url_encode(input)) == input);

  (void)kiln::base64_decode(input);
  if (auto decoded = kiln::base64url_decode(input))
    KILN_FUZZ_CHECK(kiln::base64url_encode(*decoded) == input);
  return 0;
}
