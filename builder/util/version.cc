#include "builder/util/version.h"

#include <string_view>

#include "builder/util/scan.h"

namespace kiln {

std::string Version::text() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

namespace {

/// One part: "0", or 1-4 digits not starting with 0.
std::optional<int> version_part(std::string_view part) {
  if (part.size() > 4 || (part.size() > 1 && part[0] == '0')) return std::nullopt;
  return scan::parse_unsigned<int>(part);
}

}  // namespace

std::optional<Version> parse_version(const std::string& text) {
  std::string_view rest = text;
  if (!rest.empty() && rest[0] == 'v') rest.remove_prefix(1);
  int parts[3];
  for (int i = 0; i < 3; ++i) {
    size_t dot = i < 2 ? rest.find('.') : rest.size();
    if (dot == std::string_view::npos) return std::nullopt;
    auto value = version_part(rest.substr(0, dot));
    if (!value) return std::nullopt;
    parts[i] = *value;
    rest.remove_prefix(i < 2 ? dot + 1 : dot);
  }
  return Version{parts[0], parts[1], parts[2]};
}

}  // namespace kiln
