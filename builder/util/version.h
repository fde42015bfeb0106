#pragma once

#include <optional>
#include <string>

namespace kiln {

/// A release version as Kubernetes and containerd number them.
struct Version {
  int major = 0, minor = 0, patch = 0;
  std::string text() const;  ///< "1.34.4", no leading v
  auto operator<=>(const Version&) const = default;
};

/// Parses "v1.34.4" or "1.34.4" (each part 0 or up to four digits without a leading zero);
/// nullopt when malformed.
std::optional<Version> parse_version(const std::string& text);

}  // namespace kiln
