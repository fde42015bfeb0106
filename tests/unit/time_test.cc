// RFC 3339 timestamps in join configs ("expires") come from users and are read strictly.
#include "builder/util/time.h"

#include <catch2/catch.hpp>
#include <string>

TEST_CASE("UTC timestamps are read in exactly one shape, with every field in range") {
  CHECK(kiln::parse_utc("2026-11-25T15:00:00Z") == 1795618800);
  CHECK(kiln::format_utc(*kiln::parse_utc("2000-02-29T23:59:59Z")) == "2000-02-29T23:59:59Z");
  CHECK_FALSE(kiln::parse_utc("2026-00-25T15:00:00Z"));  // month 0 once meant last December
  CHECK_FALSE(kiln::parse_utc("2026-11-00T15:00:00Z"));
  CHECK_FALSE(kiln::parse_utc("2026-11-25T24:00:00Z"));
  CHECK_FALSE(kiln::parse_utc("2026-11-25 15:00:00Z"));
  CHECK_FALSE(kiln::parse_utc("2026-11-25T15:00:00+01:00"));
  CHECK_FALSE(kiln::parse_utc("+026-11-25T15:00:00Z"));
  CHECK_FALSE(kiln::parse_utc("2026-11-25T15:00:00Z" + std::string(60000, ' ')));
}
