#include "firstboot/kernel_cmdline.h"

#include <fstream>
#include <sstream>

#include "builder/util/scan.h"

namespace kiln::firstboot {

std::optional<std::string> kernel_argument(const std::string& cmdline, const std::string& name) {
  std::optional<std::string> value;
  std::istringstream words(cmdline);
  const std::string prefix = name + "=";
  for (std::string word; words >> word;) {
    if (word.compare(0, prefix.size(), prefix) == 0) value = word.substr(prefix.size());
  }
  return value;
}

std::optional<std::string> sha256_argument(const std::string& cmdline, const std::string& name) {
  auto value = kernel_argument(cmdline, name);
  if (!value || value->size() != 64 || !scan::all_of(*value, scan::is_hex_digit))
    return std::nullopt;
  for (char& c : *value) c = scan::to_lower(c);
  return value;
}

std::string read_kernel_cmdline() {
  std::ifstream in("/proc/cmdline");
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace kiln::firstboot
