// libFuzzer harness: what kiln upload azure and kiln upload gce read that they did not write
// themselves: Blob storage's XML errors, Resource Manager's and Entra ID's JSON answers,
// Cloud Storage's object resources, Compute Engine's images and operations, Google's errors,
// a credentials file, a connection string, and upload journals a crash may have cut anywhere.
// Only kiln::Error may be thrown, and every value read stays within the input.

#include <cstdint>

#include "builder/upload/azure_blob.h"
#include "builder/upload/azure_image.h"
#include "builder/upload/azure_settings.h"
#include "builder/upload/gce_image.h"
#include "builder/upload/gcs_object.h"
#include "builder/upload/google_credentials.h"
#include "builder/util/error.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(kiln::fuzz::as_text(data, size));
  constexpr std::size_t kPrintable = 300 + 3;  // upload::printable's cap and its ellipsis

  kiln::upload::RestReply reply{.status = 403, .body = body};
  auto [code, message] = kiln::azure::storage_error(reply);
  KILN_FUZZ_CHECK(code.size() <= 100 + 3 && message.size() <= kPrintable);
  auto [arm_code, arm_message] = kiln::azure::arm_error(body);
  KILN_FUZZ_CHECK(arm_code.size() <= 100 + 3 && arm_message.size() <= kPrintable);
  auto state = kiln::azure::parse_image_state(body);
  KILN_FUZZ_CHECK(state.id.size() <= body.size() && state.blob_url.size() <= body.size());
  auto blob_journal = kiln::azure::parse_page_blob_journal(body);
  KILN_FUZZ_CHECK(blob_journal.token.size() <= 256 && blob_journal.blocks.size() <= body.size());
  KILN_FUZZ_CHECK(kiln::azure::connection_string_field(body, "AccountKey").size() <= body.size());

  KILN_FUZZ_CHECK(kiln::google::error_text(body).size() <= kPrintable);
  auto object = kiln::google::parse_object_info(body);
  KILN_FUZZ_CHECK(object.name.size() <= body.size() && object.crc32c.size() <= body.size());
  auto image = kiln::google::parse_image_info(body);
  KILN_FUZZ_CHECK(image.source_url.size() <= body.size());
  auto operation = kiln::google::parse_operation(body);
  KILN_FUZZ_CHECK(operation.name.size() <= body.size() && operation.error.size() <= kPrintable);
  auto object_journal = kiln::google::parse_object_journal(body);
  KILN_FUZZ_CHECK(object_journal.parts.size() <= body.size());
  try {
    auto credentials = kiln::google::parse_credentials_file(body, "fuzz.json");
    KILN_FUZZ_CHECK(!credentials.kind.empty() && credentials.private_key.size() <= body.size());
  } catch (const kiln::Error&) {
  }
  return 0;
}
