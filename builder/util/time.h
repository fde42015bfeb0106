#pragma once

#include <optional>
#include <string>

namespace kiln {

/// "2026-11-25T15:00:00Z" (RFC 3339, UTC) for a Unix time, and back.
std::string format_utc(long long epoch);

/// How long until `expires`, or how long ago it passed, as of `now`: "in 42 min",
/// "EXPIRED 3 min ago".
std::string expiry_text(long long expires, long long now);
std::optional<long long> parse_utc(const std::string& text);

/// RFC 9110 IMF-fixdate ("Wed, 02 Dec 2026 21:35:14 GMT"), the same in every locale.
std::string http_date(long long epoch);

/// Seconds since the Unix epoch, now.
long long unix_now();

}  // namespace kiln
