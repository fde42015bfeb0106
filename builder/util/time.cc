#include "builder/util/time.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

#include "builder/util/scan.h"

namespace kiln {

std::string format_utc(long long epoch) {
  std::time_t time = epoch;
  std::tm tm{};
  gmtime_r(&time, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string expiry_text(long long expires, long long now) {
  return now < expires ? fmt::format("in {} min", (expires - now) / 60)
                       : fmt::format("EXPIRED {} min ago", (now - expires) / 60);
}

std::optional<long long> parse_utc(const std::string& text) {
  // Exactly "YYYY-MM-DDTHH:MM:SSZ": digits where the pattern has digits, these separators.
  constexpr std::string_view shape = "dddd-dd-ddTdd:dd:ddZ";
  if (text.size() != shape.size()) return std::nullopt;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 'd' ? !scan::is_digit(text[i]) : text[i] != shape[i]) return std::nullopt;
  }
  auto field = [&](std::size_t at, std::size_t length) {
    return *scan::parse_unsigned<int>(std::string_view(text).substr(at, length));
  };
  std::tm tm{};
  tm.tm_year = field(0, 4) - 1900;
  tm.tm_mon = field(5, 2) - 1;
  tm.tm_mday = field(8, 2);
  tm.tm_hour = field(11, 2);
  tm.tm_min = field(14, 2);
  tm.tm_sec = field(17, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  return static_cast<long long>(timegm(&tm));
}

/// RFC 9110 IMF-fixdate, spelled out rather than strftime'd so no locale can change it.
std::string http_date(long long epoch) {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm utc{};
  std::time_t when = epoch;
  ::gmtime_r(&when, &utc);
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} GMT", kDays[utc.tm_wday], utc.tm_mday,
                     kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace kiln
