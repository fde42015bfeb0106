#include "builder/join/networkd_files.h"

#include <fmt/format.h>

#include <map>

namespace kiln {

namespace {

void render_addressing(std::string& out, const LinkAddressing& a) {
  for (const auto& address : a.addresses) out += "Address=" + address + "\n";
  for (const auto& server : a.nameservers) out += "DNS=" + server + "\n";
  if (!a.search.empty()) out += fmt::format("Domains={}\n", fmt::join(a.search, " "));
  for (const auto& route : a.routes) {
    out += "\n[Route]\n";
    if (route.to != "default") out += "Destination=" + route.to + "\n";
    out += "Gateway=" + route.via + "\n";
    if (route.metric) out += fmt::format("Metric={}\n", *route.metric);
  }
}

const char* dhcp_value(const LinkAddressing& a) {
  if (a.dhcp4 && a.dhcp6) return "yes";
  if (a.dhcp4) return "ipv4";
  if (a.dhcp6) return "ipv6";
  return "no";
}

std::string network_file(const std::string& id, const std::string& match, const LinkAddressing& a,
                         const std::vector<std::string>& network_lines) {
  std::string out = "# kiln: link " + id + " of the network config stamped into this node\n";
  out += "[Match]\n" + match;
  if (a.mtu) out += fmt::format("\n[Link]\nMTUBytes={}\n", *a.mtu);
  out += fmt::format("\n[Network]\nDHCP={}\n", dhcp_value(a));
  for (const auto& line : network_lines) out += line + "\n";
  render_addressing(out, a);
  return out;
}

std::string addressing_summary(const LinkAddressing& a) {
  std::vector<std::string> parts;
  if (!a.addresses.empty()) parts.push_back(fmt::format("{}", fmt::join(a.addresses, ", ")));
  for (const auto& route : a.routes)
    parts.push_back(route.to == "default" ? "via " + route.via : route.to + " via " + route.via);
  if (!a.nameservers.empty()) parts.push_back(fmt::format("dns {}", fmt::join(a.nameservers, " ")));
  if (a.dhcp4 || a.dhcp6) parts.push_back(fmt::format("dhcp {}", dhcp_value(a)));
  if (a.mtu) parts.push_back(fmt::format("mtu {}", *a.mtu));
  return parts.empty() ? "no addresses" : fmt::format("{}", fmt::join(parts, "; "));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> networkd_files(const NetworkConfig& config) {
  std::vector<std::pair<std::string, std::string>> files;
  std::map<std::string, std::vector<std::string>> extra;  // link id -> [Network] lines
  for (const auto& bond : config.bonds) {
    for (const auto& member : bond.interfaces) extra[member].push_back("Bond=" + bond.id);
    std::string netdev = "# kiln: bond " + bond.id + " of the stamped network config\n";
    netdev += "[NetDev]\nName=" + bond.id + "\nKind=bond\n\n[Bond]\nMode=" + bond.mode + "\n";
    if (bond.mii_monitor_ms) netdev += fmt::format("MIIMonitorSec={}ms\n", *bond.mii_monitor_ms);
    if (!bond.lacp_rate.empty()) netdev += "LACPTransmitRate=" + bond.lacp_rate + "\n";
    files.emplace_back("10-kiln-" + bond.id + ".netdev", netdev);
  }
  for (const auto& vlan : config.vlans) {
    extra[vlan.link].push_back("VLAN=" + vlan.id);
    files.emplace_back("10-kiln-" + vlan.id + ".netdev",
                       fmt::format("# kiln: vlan {} of the stamped network config\n[NetDev]\n"
                                   "Name={}\nKind=vlan\n\n[VLAN]\nId={}\n",
                                   vlan.id, vlan.id, vlan.vlan_id));
  }
  for (const auto& link : config.ethernets) {
    std::string match;
    if (!link.match_mac.empty()) match += "MACAddress=" + link.match_mac + "\n";
    if (!link.match_name.empty()) match += "Name=" + link.match_name + "\n";
    if (link.match_mac.empty() && link.match_name.empty()) match += "Name=" + link.id + "\n";
    // A physical interface only: a name glob must not match the bonds and VLANs defined here.
    match += "Kind=!*\n";
    files.emplace_back("10-kiln-" + link.id + ".network",
                       network_file(link.id, match, link.addressing, extra[link.id]));
  }
  for (const auto& bond : config.bonds) {
    files.emplace_back(
        "10-kiln-" + bond.id + ".network",
        network_file(bond.id, "Name=" + bond.id + "\n", bond.addressing, extra[bond.id]));
  }
  for (const auto& vlan : config.vlans) {
    files.emplace_back("10-kiln-" + vlan.id + ".network",
                       network_file(vlan.id, "Name=" + vlan.id + "\n", vlan.addressing, {}));
  }
  return files;
}

std::vector<std::string> describe_network(const NetworkConfig& config) {
  std::vector<std::string> lines;
  for (const auto& link : config.ethernets) {
    std::string match = !link.match_mac.empty()    ? "mac " + link.match_mac
                        : !link.match_name.empty() ? "name " + link.match_name
                                                   : "name " + link.id;
    lines.push_back(
        fmt::format("{} ({}): {}", link.id, match, addressing_summary(link.addressing)));
  }
  for (const auto& bond : config.bonds) {
    lines.push_back(fmt::format("{} (bond {} of {}): {}", bond.id, bond.mode,
                                fmt::join(bond.interfaces, ", "),
                                addressing_summary(bond.addressing)));
  }
  for (const auto& vlan : config.vlans) {
    lines.push_back(fmt::format("{} (vlan {} on {}): {}", vlan.id, vlan.vlan_id, vlan.link,
                                addressing_summary(vlan.addressing)));
  }
  return lines;
}

}  // namespace kiln
