// libFuzzer harness: what kiln upload aws reads that it did not write itself: AWS's answers
// (error documents in XML or JSON, the x-amzn-ErrorType header, ids in XML), the shared config
// and credentials files, and an upload journal a crash may have cut anywhere. None throws;
// each value stays within the input.

#include <cstdint>

#include "builder/upload/aws_client.h"
#include "builder/upload/aws_settings.h"
#include "builder/upload/ebs_snapshot.h"
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
  auto journal = kiln::aws::parse_journal(body);
  KILN_FUZZ_CHECK(journal.blocks.size() <= body.size() / 8 + 1);
  return 0;
}
