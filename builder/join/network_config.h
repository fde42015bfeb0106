#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

/// A static route. `to` is a CIDR, or "default" for every destination of `via`'s family.
struct NetworkRoute {
  std::string to;
  std::string via;
  std::optional<unsigned> metric;
};

/// How one link is addressed: static addresses, routes and resolvers, or DHCP.
struct LinkAddressing {
  std::vector<std::string> addresses;  ///< CIDR, IPv4 or IPv6
  std::vector<NetworkRoute> routes;
  std::vector<std::string> nameservers;
  std::vector<std::string> search;
  bool dhcp4 = false;
  bool dhcp6 = false;
  std::optional<unsigned> mtu;
};

/// A physical interface, found by MAC address or by name (a glob); without `match`, `id` is
/// the interface's name.
struct EthernetLink {
  std::string id;
  std::string match_mac;   ///< lower case, aa:bb:cc:dd:ee:ff
  std::string match_name;  ///< an interface name, '*' and '?' allowed
  LinkAddressing addressing;
};

struct BondLink {
  std::string id;  ///< the bond's interface name
  std::vector<std::string> interfaces;
  std::string mode = "active-backup";
  std::optional<unsigned> mii_monitor_ms;
  std::string lacp_rate;  ///< 802.3ad only: slow or fast
  LinkAddressing addressing;
};

struct VlanLink {
  std::string id;  ///< the VLAN's interface name
  unsigned vlan_id = 0;
  std::string link;  ///< an ethernet or bond id
  LinkAddressing addressing;
};

/// A node's own network configuration, stamped with `kiln stamp --network` for sites without
/// DHCP. The file is a subset of netplan's version 2 format (`network:` with `ethernets`,
/// `bonds` and `vlans`), so existing node inventories carry over; the node renders it to
/// systemd-networkd files before its network starts.
struct NetworkConfig {
  std::vector<EthernetLink> ethernets;
  std::vector<BondLink> bonds;
  std::vector<VlanLink> vlans;
};

/// The largest network config read, in bytes: far above a real node's, small enough that a
/// hostile one costs nothing to refuse.
constexpr std::size_t kMaxNetworkConfigBytes = 64 * 1024;

/// Parses and validates a network config; every problem is reported with file:line:column
/// (ParseErrors). Addresses, names and references between links are all checked.
NetworkConfig parse_network_config(const std::string& text, const std::string& source_name);
/// The text of a network config file, refusing one larger than kMaxNetworkConfigBytes unread.
std::string read_network_config_file(const std::filesystem::path& file);

}  // namespace kiln
