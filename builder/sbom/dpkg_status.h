#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// One installed package, as dpkg's status database records it.
struct DpkgPackage {
  std::string name, version, architecture, maintainer, source;
};

/// The packages /var/lib/dpkg/status lists as installed ("install ok installed"), in file
/// order. Continuation lines and other fields are skipped.
std::vector<DpkgPackage> parse_dpkg_status(std::string_view status);

}  // namespace kiln
