#pragma once

#include <optional>
#include <string>

namespace kiln {

/// "2026-11-25T15:00:00Z" (RFC 3339, UTC) for a Unix time, and back.
std::string format_utc(long long epoch);
std::optional<long long> parse_utc(const std::string& text);

/// Seconds since the Unix epoch, now.
long long unix_now();

}  // namespace kiln
