// libFuzzer harness: what kiln upload openstack reads that it did not write itself: Keystone's
// token document (the catalog), Glance's image documents and lists, both services' error
// answers, and an upload journal a crash may have cut anywhere. Only kiln::Error may be
// thrown, and every value read stays within the input.

#include <cstdint>

#include "builder/upload/glance.h"
#include "builder/upload/keystone.h"
#include "builder/util/error.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(kiln::fuzz::as_text(data, size));
  try {
    std::string url = kiln::openstack::image_endpoint_from_catalog(body, "public", "RegionOne");
    KILN_FUZZ_CHECK(url.size() <= body.size());
  } catch (const kiln::Error&) {
  }
  KILN_FUZZ_CHECK(kiln::openstack::error_text(body).size() <= 300 + 3);
  if (auto image = kiln::openstack::parse_image(body)) {
    KILN_FUZZ_CHECK(!image->id.empty() && image->id.size() <= 64);
    KILN_FUZZ_CHECK(image->hash_value.size() <= 128 && image->checksum.size() <= 32);
  }
  for (const auto& image : kiln::openstack::parse_image_list(body))
    KILN_FUZZ_CHECK(image.id.size() <= 64);
  auto journal = kiln::openstack::parse_journal(body);
  KILN_FUZZ_CHECK(journal.image_id.size() <= 64);
  return 0;
}
