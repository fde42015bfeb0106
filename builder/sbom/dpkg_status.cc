#include "builder/sbom/dpkg_status.h"

namespace kiln {

std::vector<DpkgPackage> parse_dpkg_status(std::string_view status) {
  std::vector<DpkgPackage> installed;
  DpkgPackage current;
  bool is_installed = false;
  auto finish = [&] {
    if (is_installed && !current.name.empty()) installed.push_back(current);
    current = {};
    is_installed = false;
  };
  while (!status.empty()) {
    auto newline = status.find('\n');
    std::string_view line = status.substr(0, newline);
    status.remove_prefix(newline == std::string_view::npos ? status.size() : newline + 1);
    if (line.empty()) {
      finish();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') continue;  // a continuation line
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (key == "Package")
      current.name = value;
    else if (key == "Version")
      current.version = value;
    else if (key == "Architecture")
      current.architecture = value;
    else if (key == "Maintainer")
      current.maintainer = value;
    else if (key == "Source")
      current.source = value.substr(0, value.find(' '));
    else if (key == "Status")
      is_installed = value == "install ok installed";
  }
  finish();
  return installed;
}

}  // namespace kiln
