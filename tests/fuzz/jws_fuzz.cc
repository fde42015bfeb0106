// libFuzzer harness: verify_detached_jws, which checks bootstrapsigner's signature on an
// unauthenticated cluster-info. The input is "<jws>\0<content>". It answers a JwsCheck and
// never throws; only a signature made with the token is valid, and one made with the token
// over the fuzzed content always is.

#include <cstdint>

#include "builder/join/jws.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

namespace {
constexpr const char* kTokenId = "abcdef";
constexpr const char* kTokenSecret = "0123456789abcdef";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto [jws, content] = kiln::fuzz::split_at_nul(kiln::fuzz::as_text(data, size));
  kiln::JwsCheck check = kiln::verify_detached_jws(jws, content, kTokenId, kTokenSecret);
  (void)kiln::describe(check);
  std::string signed_here = kiln::compute_detached_jws(content, kTokenId, kTokenSecret);
  if (check == kiln::JwsCheck::valid) KILN_FUZZ_CHECK(jws == signed_here);
  KILN_FUZZ_CHECK(kiln::verify_detached_jws(signed_here, content, kTokenId, kTokenSecret) ==
                  kiln::JwsCheck::valid);
  KILN_FUZZ_CHECK(kiln::verify_detached_jws(signed_here, content, kTokenId, "fedcba9876543210") ==
                  kiln::JwsCheck::bad_signature);
  return 0;
}
