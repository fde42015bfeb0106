// libFuzzer harness: what a node reads from an update folder before trusting it. The input is
// "<index.json>\0<index.json.sig>". The signature check must never accept what the trusted
// key did not sign (no private key is here, so nothing fuzzed may verify); the index parser
// either throws kiln::Error or returns an index that renders and parses back to itself; the
// dm-verity superblock parser reads the input's first 512 bytes the same way; the Node
// status reader (the health check's API answer) never throws and returns a short version.

#include <cstdint>

#include "builder/update/node_status.h"
#include "builder/update/release_signature.h"
#include "builder/update/update_index.h"
#include "builder/update/verity_check.h"
#include "builder/util/error.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

namespace {
// A public key whose private half was thrown away: no input can carry its signature.
const std::vector<std::string> kTrusted = {
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAD5PGtl+CVdt9jqAZpWdCAdYKX5D95t8PF7RSmihWFf8=\n"
    "-----END PUBLIC KEY-----\n"};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = kiln::fuzz::as_text(data, size);
  auto [index_text, signature] = kiln::fuzz::split_at_nul(input);
  KILN_FUZZ_CHECK(!kiln::verify_release(kTrusted, index_text, signature));
  try {
    kiln::UpdateIndex index = kiln::parse_update_index(index_text);
    std::string rendered = kiln::render_update_index(index);
    KILN_FUZZ_CHECK(kiln::render_update_index(kiln::parse_update_index(rendered)) == rendered);
    for (const auto& release : index.releases) {
      KILN_FUZZ_CHECK(kiln::is_update_file_name(release.root.name));
      KILN_FUZZ_CHECK(release.root.size > 0);
    }
  } catch (const kiln::Error&) {
  }
  if (auto version = kiln::reported_kubelet_version(input))
    KILN_FUZZ_CHECK(!version->empty() && version->size() <= 64);
  if (input.size() >= 512) {
    try {
      auto sb = kiln::parse_verity_superblock(input.substr(0, 512));
      KILN_FUZZ_CHECK(sb.salt.size() <= 256 && sb.data_block_size == 4096);
    } catch (const kiln::Error&) {
    }
  }
  return 0;
}
