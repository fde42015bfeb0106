#include "firstboot/update/node_paths.h"

#include <algorithm>
#include <sstream>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"
#include "firstboot/kernel_cmdline.h"

namespace kiln::update {
namespace fs = std::filesystem;

UpdateSettings read_settings(const NodePaths& paths, const std::string& stamped_url) {
  UpdateSettings settings;
  std::istringstream in(read_file(paths.config));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto equals = line.find('=');
    if (equals == std::string::npos) throw Error(paths.config.string() + ": malformed line");
    std::string key = line.substr(0, equals), value = line.substr(equals + 1);
    if (key == "name") settings.name = value;
    if (key == "arch") settings.arch = value;
    if (key == "version") settings.version = value;
    if (key == "url") settings.url = value;
    if (key == "reboot") settings.reboot = value;
    if (key == "tries") settings.tries = scan::parse_unsigned<unsigned>(value).value_or(3);
    if (key == "health_timeout")
      settings.health_timeout = scan::parse_unsigned<unsigned>(value).value_or(900);
  }
  if (!stamped_url.empty()) settings.url = stamped_url;
  std::vector<fs::path> keys;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(paths.trusted_keys, ec))
    if (entry.path().extension() == ".pem") keys.push_back(entry.path());
  std::sort(keys.begin(), keys.end());
  for (const auto& key : keys) settings.trusted_keys.push_back(read_file(key));
  return settings;
}

std::string running_slot(const NodePaths& paths) {
  std::error_code ec;
  std::string cmdline = fs::exists(paths.cmdline, ec) ? read_file(paths.cmdline) : "";
  auto slot = firstboot::kernel_argument(cmdline, "kiln.slot");
  return slot && *slot == "b" ? "b" : "a";
}

std::pair<std::string, std::string> slot_partitions(const std::string& slot) {
  if (slot == "b") return {"root-b", "root-b-verity"};
  return {"root", "root-verity"};
}

}  // namespace kiln::update
