#include "firstboot/node_name.h"

#include <algorithm>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln::firstboot {
namespace fs = std::filesystem;

namespace {

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

/// Lower case; anything but [a-z0-9.-] becomes '-'; no leading or trailing '-' or '.'.
std::string dns_name(std::string text) {
  for (auto& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '-';
  }
  auto edge = [](char c) { return c == '-' || c == '.'; };
  while (!text.empty() && edge(text.back())) text.pop_back();
  text.erase(text.begin(), std::find_if_not(text.begin(), text.end(), edge));
  return text.substr(0, 253);
}

std::string mac_name(const NodeFacts& facts) {
  std::vector<std::string> interfaces;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(facts.sys_class_net, ec)) {
    std::string name = entry.path().filename();
    if (name != "lo") interfaces.push_back(name);
  }
  std::sort(interfaces.begin(), interfaces.end());
  for (const auto& name : interfaces) {
    fs::path address = facts.sys_class_net / name / "address";
    if (!fs::exists(address)) continue;
    std::string mac = trim(read_file(address));
    if (mac.empty() || mac == "00:00:00:00:00:00") continue;
    mac.erase(std::remove(mac.begin(), mac.end(), ':'), mac.end());
    return "node-" + dns_name(mac);
  }
  throw Error("node_name: mac: no network interface with a MAC address");
}

}  // namespace

std::string node_name(NodeNamePolicy policy, const NodeFacts& facts) {
  switch (policy) {
    case NodeNamePolicy::mac:
      return mac_name(facts);
    case NodeNamePolicy::dmi: {
      if (!fs::exists(facts.dmi_product_uuid))
        throw Error("node_name: dmi: this machine has no SMBIOS product UUID");
      std::string uuid = dns_name(trim(read_file(facts.dmi_product_uuid)));
      if (uuid.empty()) throw Error("node_name: dmi: the SMBIOS product UUID is empty");
      return uuid;
    }
    case NodeNamePolicy::cloud:
      if (!facts.cloud_hostname.empty()) return dns_name(facts.cloud_hostname);
      [[fallthrough]];
    case NodeNamePolicy::hostname: {
      std::string name = dns_name(facts.hostname);
      if (name.empty() || name == "localhost" || name == "localhost.localdomain")
        return mac_name(facts);
      return name;
    }
  }
  return mac_name(facts);
}

NodeNamePolicy image_node_name_policy(const fs::path& file) {
  std::error_code ec;
  // A few bytes at most; a larger file is not one kiln wrote.
  if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) > 64)
    return NodeNamePolicy::hostname;
  return parse_node_name_policy(trim(read_file(file))).value_or(NodeNamePolicy::hostname);
}

NodeNamePolicy effective_node_name_policy(const std::optional<NodeNamePolicy>& from_join_config,
                                          const fs::path& image_file) {
  return from_join_config ? *from_join_config : image_node_name_policy(image_file);
}

}  // namespace kiln::firstboot
