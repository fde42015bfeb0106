#include "builder/join/network_config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <string_view>

#include "builder/util/files.h"
#include "builder/util/scan.h"
#include "builder/util/yaml_reader.h"

namespace kiln {

namespace {

// Far above a real node (a few NICs, a bond, some VLANs), small enough to bound the files
// the node writes.
constexpr std::size_t kMaxLinks = 64;
constexpr std::size_t kMaxPerList = 32;

const std::vector<std::string> kBondModes = {"balance-rr", "active-backup", "balance-xor",
                                             "broadcast",  "802.3ad",       "balance-tlb",
                                             "balance-alb"};

/// The keys of a link of some kind: its own, then those every link shares (addressing()).
std::vector<std::string> link_keys(std::vector<std::string> own) {
  own.insert(own.end(), {"addresses", "routes", "nameservers", "dhcp4", "dhcp6", "mtu", "gateway4",
                         "gateway6"});
  return own;
}

enum class Family { none, v4, v6 };

/// The address family of a literal IP address (no prefix), checked by the C library's parser
/// on a bounded copy.
Family ip_family(std::string_view text) {
  if (text.empty() || text.size() > 45) return Family::none;
  std::string copy(text);
  unsigned char buffer[16];
  if (::inet_pton(AF_INET, copy.c_str(), buffer) == 1) return Family::v4;
  if (::inet_pton(AF_INET6, copy.c_str(), buffer) == 1) return Family::v6;
  return Family::none;
}

/// ADDRESS/PREFIX with the prefix in range for the address's family.
Family cidr_family(std::string_view text) {
  std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return Family::none;
  Family family = ip_family(text.substr(0, slash));
  auto prefix = scan::parse_unsigned<unsigned>(text.substr(slash + 1));
  if (family == Family::none || !prefix || text.size() - slash > 4) return Family::none;
  return *prefix <= (family == Family::v4 ? 32u : 128u) ? family : Family::none;
}

/// aa:bb:cc:dd:ee:ff in either case.
bool is_mac(std::string_view text) {
  if (text.size() != 17) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool ok = i % 3 == 2 ? text[i] == ':' : scan::is_hex_digit(text[i]);
    if (!ok) return false;
  }
  return true;
}

/// A Linux interface name (at most 15 bytes), optionally with networkd's glob characters.
bool is_interface_name(std::string_view name, bool glob) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return scan::all_of(name, [glob](char c) {
    return scan::is_alnum(c) || c == '-' || c == '_' || c == '.' ||
           (glob && (c == '*' || c == '?'));
  });
}

/// A DNS search domain: dot-separated labels of letters, digits and '-'.
bool is_domain(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (scan::is_alnum(c) || (c == '-' && label > 0)) {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0 && name.back() != '-';
}

class NetworkReader {
 public:
  NetworkReader(const std::string& source, const std::string& text) : r_(source, text) {}

  NetworkConfig read(const std::string& text) {
    if (text.size() > kMaxNetworkConfigBytes) {
      r_.error(YAML::Mark(), fmt::format("a network config is at most {} bytes; this one is {}",
                                         kMaxNetworkConfigBytes, text.size()));
      r_.throw_if_errors();
    }
    std::optional<YAML::Node> loaded = r_.load(text);
    r_.throw_if_errors();
    const YAML::Node& root = *loaded;
    if (!root.IsMap() || !root["network"]) {
      r_.error(root.IsMap() ? root.Mark() : YAML::Mark(),
               "a network config is a map with one key, 'network' (netplan's version 2 format)");
      r_.throw_if_errors();
    }
    r_.check_keys(root, {"network"}, "");
    const YAML::Node network = root["network"];
    if (!network.IsMap()) {
      r_.error(network, "'network' must be a map");
      r_.throw_if_errors();
    }
    r_.check_keys(network, {"version", "renderer", "ethernets", "bonds", "vlans"}, "network");
    if (YAML::Node version = network["version"]; !version) {
      r_.error(network, "missing 'version' in 'network' (write version: 2)");
    } else if (r_.scalar(version, "network.version").value_or("2") != "2") {
      r_.error(version, "network.version must be 2 (netplan's version 2 format)");
    }
    if (YAML::Node renderer = network["renderer"]) {
      if (r_.scalar(renderer, "network.renderer").value_or("networkd") != "networkd")
        r_.error(renderer, "kiln nodes run systemd-networkd: renderer must be networkd");
    }
    links(network["ethernets"], "ethernets",
          [&](const YAML::Node& id, const YAML::Node& body) { ethernet(id, body); });
    links(network["bonds"], "bonds",
          [&](const YAML::Node& id, const YAML::Node& body) { bond(id, body); });
    links(network["vlans"], "vlans",
          [&](const YAML::Node& id, const YAML::Node& body) { vlan(id, body); });
    if (config_.ethernets.empty() && r_.ok())
      r_.error(network, "a network config needs at least one entry under 'ethernets'");
    check_references();
    r_.throw_if_errors();
    return config_;
  }

 private:
  template <typename Read>
  void links(const YAML::Node& section, const std::string& name, Read read) {
    if (!section) return;
    if (!section.IsMap()) {
      r_.error(section, fmt::format("network.{} must be a map of link names to settings", name));
      return;
    }
    for (auto it = section.begin(); it != section.end(); ++it) {
      YAML::Node id = it->first, body = it->second;
      auto text = r_.scalar(id, "a link name");
      if (!text) continue;
      if (!is_interface_name(*text, false)) {
        r_.error(id, fmt::format("link name {} must be 1 to 15 letters, digits, '-', '_' or '.' "
                                 "(it names the interface and its files)",
                                 quote_value(*text)));
        continue;
      }
      if (!ids_.insert(*text).second) {
        r_.error(id, fmt::format("link name {} is used twice", quote_value(*text)));
        continue;
      }
      if (ids_.size() > kMaxLinks) {
        r_.error(id, fmt::format("at most {} links", kMaxLinks));
        return;
      }
      marks_[*text] = id.Mark();
      // `eno2:` with nothing after it, as netplan files often write it, is `eno2: {}`.
      const YAML::Node settings = body.IsNull() ? YAML::Node(YAML::NodeType::Map) : body;
      if (!settings.IsMap()) {
        r_.error(body, fmt::format("{} must be a map of settings", *text));
        continue;
      }
      read(id, settings);
    }
  }

  /// Each string of a list, with where it is for errors.
  std::vector<std::pair<std::string, YAML::Mark>> string_list(const YAML::Node& node,
                                                              const std::string& what) {
    std::vector<std::pair<std::string, YAML::Mark>> out;
    if (!node) return out;
    if (!node.IsSequence()) {
      r_.error(node, fmt::format("{} must be a list", what));
      return out;
    }
    if (node.size() > kMaxPerList) {
      r_.error(node, fmt::format("{} has {} entries; at most {}", what, node.size(), kMaxPerList));
      return out;
    }
    for (const auto& item : node) {
      if (auto text = r_.scalar(item, what)) out.emplace_back(*text, item.Mark());
    }
    return out;
  }

  std::optional<unsigned> number(const YAML::Node& node, const std::string& what, unsigned low,
                                 unsigned high) {
    auto text = r_.scalar(node, what);
    if (!text) return std::nullopt;
    auto value = scan::parse_unsigned<unsigned>(*text);
    if (!value || *value < low || *value > high) {
      r_.error(node, fmt::format("{} must be a whole number from {} to {}", what, low, high));
      return std::nullopt;
    }
    return value;
  }

  bool boolean(const YAML::Node& node, const std::string& what) {
    auto text = r_.scalar(node, what).value_or("false");
    if (text == "true" || text == "yes") return true;
    if (text != "false" && text != "no")
      r_.error(node, fmt::format("{} must be true or false", what));
    return false;
  }

  /// The settings every kind of link shares.
  LinkAddressing addressing(const YAML::Node& body, const std::string& id) {
    LinkAddressing out;
    for (const char* old : {"gateway4", "gateway6"}) {
      if (body[old]) {
        r_.error(body[old], fmt::format("{} is deprecated in netplan and not read by kiln; write "
                                        "routes: [{{to: default, via: ADDRESS}}]",
                                        old));
      }
    }
    for (const auto& [address, at] : string_list(body["addresses"], id + ".addresses")) {
      if (cidr_family(address) == Family::none) {
        r_.error(at, fmt::format("address {} of {} must be ADDRESS/PREFIX, like 192.168.7.10/24 or "
                                 "2001:db8::10/64",
                                 quote_value(address), id));
      } else {
        out.addresses.push_back(address);
      }
    }
    if (YAML::Node routes = body["routes"]) {
      if (!routes.IsSequence() || routes.size() > kMaxPerList) {
        r_.error(routes,
                 fmt::format("{}.routes must be a list of at most {} routes", id, kMaxPerList));
      } else {
        for (const auto& item : routes) route(item, id, out);
      }
    }
    if (YAML::Node dns = body["nameservers"]) {
      if (!dns.IsMap()) {
        r_.error(dns, fmt::format("{}.nameservers must be a map with addresses and search", id));
      } else {
        r_.check_keys(dns, {"addresses", "search"}, id + ".nameservers");
        for (const auto& [server, at] :
             string_list(dns["addresses"], id + ".nameservers.addresses")) {
          if (ip_family(server) == Family::none)
            r_.error(at, fmt::format("name server {} of {} must be an IP address",
                                     quote_value(server), id));
          else
            out.nameservers.push_back(server);
        }
        for (const auto& [domain, at] : string_list(dns["search"], id + ".nameservers.search")) {
          if (!is_domain(domain))
            r_.error(at, fmt::format("search domain {} of {} is not a domain name",
                                     quote_value(domain), id));
          else
            out.search.push_back(domain);
        }
      }
    }
    if (body["dhcp4"]) out.dhcp4 = boolean(body["dhcp4"], id + ".dhcp4");
    if (body["dhcp6"]) out.dhcp6 = boolean(body["dhcp6"], id + ".dhcp6");
    if (body["mtu"]) out.mtu = number(body["mtu"], id + ".mtu", 68, 65535);
    return out;
  }

  void route(const YAML::Node& item, const std::string& id, LinkAddressing& out) {
    if (!item.IsMap()) {
      r_.error(item, "a route is a map: {to: default, via: ADDRESS}");
      return;
    }
    r_.check_keys(item, {"to", "via", "metric"}, id + ".routes");
    if (!item["to"] || !item["via"]) {
      r_.error(item, "a route needs 'to' (a CIDR or default) and 'via' (the gateway)");
      return;
    }
    NetworkRoute route;
    route.to = r_.scalar(item["to"], "a route's to").value_or("");
    route.via = r_.scalar(item["via"], "a route's via").value_or("");
    Family via = ip_family(route.via);
    if (via == Family::none) {
      r_.error(item["via"], fmt::format("via {} must be an IP address", quote_value(route.via)));
      return;
    }
    if (route.to != "default" && cidr_family(route.to) != via) {
      r_.error(item["to"], fmt::format("to {} must be 'default' or a CIDR of the same family as "
                                       "via {}",
                                       quote_value(route.to), route.via));
      return;
    }
    if (item["metric"]) route.metric = number(item["metric"], "a route's metric", 0, 4294967295u);
    out.routes.push_back(route);
  }

  void ethernet(const YAML::Node& id_node, const YAML::Node& body) {
    EthernetLink link;
    link.id = id_node.Scalar();
    r_.check_keys(body, link_keys({"match"}), link.id);
    if (YAML::Node match = body["match"]) {
      if (!match.IsMap()) {
        r_.error(match, "match must be a map with macaddress or name");
      } else {
        r_.check_keys(match, {"macaddress", "name"}, link.id + ".match");
        if (match["macaddress"]) {
          link.match_mac = r_.scalar(match["macaddress"], "macaddress").value_or("");
          if (!is_mac(link.match_mac))
            r_.error(match["macaddress"],
                     fmt::format("macaddress {} must be six hex pairs like 52:54:00:12:34:56",
                                 quote_value(link.match_mac)));
          std::transform(link.match_mac.begin(), link.match_mac.end(), link.match_mac.begin(),
                         scan::to_lower);
        }
        if (match["name"]) {
          link.match_name = r_.scalar(match["name"], "match.name").value_or("");
          if (!is_interface_name(link.match_name, true))
            r_.error(match["name"], fmt::format("match name {} must be an interface name (at "
                                                "most 15 characters; '*' and '?' match any)",
                                                quote_value(link.match_name)));
        }
        if (!match["macaddress"] && !match["name"])
          r_.error(match, "match needs macaddress or name");
      }
    }
    link.addressing = addressing(body, link.id);
    config_.ethernets.push_back(link);
  }

  void bond(const YAML::Node& id_node, const YAML::Node& body) {
    BondLink link;
    link.id = id_node.Scalar();
    r_.check_keys(body, link_keys({"interfaces", "parameters"}), link.id);
    for (const auto& [member, at] : string_list(body["interfaces"], link.id + ".interfaces"))
      link.interfaces.push_back(member);
    if (link.interfaces.empty())
      r_.error(id_node, fmt::format("bond {} needs interfaces", link.id));
    if (YAML::Node parameters = body["parameters"]) {
      if (!parameters.IsMap()) {
        r_.error(parameters, "parameters must be a map");
      } else {
        r_.check_keys(parameters, {"mode", "mii-monitor-interval", "lacp-rate"},
                      link.id + ".parameters");
        if (parameters["mode"]) {
          link.mode = r_.scalar(parameters["mode"], "mode").value_or(link.mode);
          if (std::find(kBondModes.begin(), kBondModes.end(), link.mode) == kBondModes.end())
            r_.error(parameters["mode"],
                     fmt::format("unknown bond mode {}; expected one of: {}",
                                 quote_value(link.mode), fmt::join(kBondModes, ", ")));
        }
        if (parameters["mii-monitor-interval"]) {
          link.mii_monitor_ms =
              number(parameters["mii-monitor-interval"], "mii-monitor-interval (ms)", 0, 3600000);
        }
        if (parameters["lacp-rate"]) {
          link.lacp_rate = r_.scalar(parameters["lacp-rate"], "lacp-rate").value_or("");
          if (link.lacp_rate != "slow" && link.lacp_rate != "fast")
            r_.error(parameters["lacp-rate"], "lacp-rate must be slow or fast");
          else if (link.mode != "802.3ad")
            r_.error(parameters["lacp-rate"], "lacp-rate applies to mode 802.3ad only");
        }
      }
    }
    link.addressing = addressing(body, link.id);
    config_.bonds.push_back(link);
  }

  void vlan(const YAML::Node& id_node, const YAML::Node& body) {
    VlanLink link;
    link.id = id_node.Scalar();
    r_.check_keys(body, link_keys({"id", "link"}), link.id);
    if (!body["id"] || !body["link"]) {
      r_.error(id_node, fmt::format("vlan {} needs 'id' (1-4094) and 'link'", link.id));
    } else {
      link.vlan_id = number(body["id"], link.id + ".id", 1, 4094).value_or(0);
      link.link = r_.scalar(body["link"], link.id + ".link").value_or("");
    }
    link.addressing = addressing(body, link.id);
    config_.vlans.push_back(link);
  }

  /// Bonds name ethernets, each at most once and without addresses of its own; VLANs sit on an
  /// ethernet or a bond.
  void check_references() {
    std::set<std::string> ethernet_ids, bond_ids, enslaved;
    for (const auto& link : config_.ethernets) ethernet_ids.insert(link.id);
    for (const auto& link : config_.bonds) bond_ids.insert(link.id);
    for (const auto& bond : config_.bonds) {
      for (const auto& member : bond.interfaces) {
        if (!ethernet_ids.count(member)) {
          r_.error(marks_[bond.id], fmt::format("bond {} names interface {}, which is not under "
                                                "'ethernets'",
                                                bond.id, quote_value(member)));
        } else if (!enslaved.insert(member).second) {
          r_.error(marks_[bond.id], fmt::format("{} is in more than one bond", member));
        }
      }
    }
    for (const auto& link : config_.ethernets) {
      const LinkAddressing& a = link.addressing;
      if (enslaved.count(link.id) && (!a.addresses.empty() || !a.routes.empty() || a.dhcp4 ||
                                      a.dhcp6 || !a.nameservers.empty())) {
        r_.error(marks_[link.id], fmt::format("{} is a bond member: its addresses, routes and "
                                              "DHCP belong on the bond",
                                              link.id));
      }
    }
    for (const auto& vlan : config_.vlans) {
      if (!vlan.link.empty() && !ethernet_ids.count(vlan.link) && !bond_ids.count(vlan.link))
        r_.error(marks_[vlan.id], fmt::format("vlan {} sits on {}, which is not an ethernet or "
                                              "bond here",
                                              vlan.id, quote_value(vlan.link)));
      if (enslaved.count(vlan.link))
        r_.error(marks_[vlan.id], fmt::format("vlan {} sits on {}, a bond member; put it on "
                                              "the bond",
                                              vlan.id, vlan.link));
    }
  }

  YamlReader r_;
  NetworkConfig config_;
  std::set<std::string> ids_;
  std::map<std::string, YAML::Mark> marks_;
};

}  // namespace

NetworkConfig parse_network_config(const std::string& text, const std::string& source_name) {
  const bool too_big = text.size() > kMaxNetworkConfigBytes;
  NetworkReader reader(source_name, too_big ? std::string() : text);
  return reader.read(text);
}

std::string read_network_config_file(const std::filesystem::path& file) {
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (!ec && size > kMaxNetworkConfigBytes) {
    throw Error(fmt::format("{}: a network config is at most {} bytes; this one is {}",
                            file.string(), kMaxNetworkConfigBytes, size));
  }
  return read_file(file);
}

}  // namespace kiln
