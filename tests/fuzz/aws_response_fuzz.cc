// libFuzzer harness: what kiln upload aws reads that it did not write itself: AWS's answers
// (error documents in XML or JSON, the x-amzn-ErrorType header, ids in XML, temporary keys
// from STS and the instance metadata service), the shared config
// and credentials files, and an upload journal a crash may have cut anywhere. None throws;
// each value stays within the input.

#include <cstdint>

#include "builder/upload/aws_client.h"
#include "builder/upload/aws_credentials.h"
#include "builder/upload/aws_settings.h"
#include "builder/upload/ebs_snapshot.h"
#include "builder/util/error.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto [body, header] = kiln::fuzz::split_at_nul(kiln::fuzz::as_text(data, size));
  auto [code, message] = kiln::aws::parse_error(body, header);
  KILN_FUZZ_CHECK(code.size() <= 100 + 3 && message.size() <= 300 + 3);
  for (const char* tag : {"imageId", "status", "Code"})
    KILN_FUZZ_CHECK(kiln::aws::xml_value(body, tag).size() <= body.size());
  for (const auto& [section, values] : kiln::aws::parse_shared_file(body)) {
    KILN_FUZZ_CHECK(section.size() <= body.size());
    for (const auto& [key, value] : values)
      KILN_FUZZ_CHECK(key.size() + value.size() <= body.size());
  }
  // Temporary keys from STS (XML) or the instance metadata service (JSON): refused with an
  // Error, or each within the input; a session token never holds a control character.
  for (auto parse : {kiln::aws::parse_sts_credentials, kiln::aws::parse_instance_credentials}) {
    try {
      auto keys = parse(body);
      KILN_FUZZ_CHECK(keys.session_token.size() <= body.size());
      for (char c : keys.session_token) KILN_FUZZ_CHECK(c > 0x20 && c < 0x7f);
    } catch (const kiln::Error&) {
    }
  }
  auto journal = kiln::aws::parse_journal(body);
  KILN_FUZZ_CHECK(journal.blocks.size() <= body.size() / 8 + 1);
  return 0;
}
