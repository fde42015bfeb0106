// The per-node static network config (`kiln stamp --network`): what it accepts, what it
// refuses and where it says the problem is, and the systemd-networkd files a node renders.
#include "builder/join/network_config.h"

#include <catch2/catch.hpp>
#include <map>

#include "builder/join/networkd_files.h"
#include "builder/util/parse_errors.h"

namespace {

constexpr const char* kRackNode = R"(# node-17: no DHCP in rack 4
network:
  version: 2
  ethernets:
    uplink:
      match: {macaddress: "52:54:00:AB:CD:17"}
      addresses: [192.168.77.10/24, "2001:db8::17/64"]
      routes:
        - {to: default, via: 192.168.77.1}
        - {to: 10.99.0.0/16, via: 192.168.77.254, metric: 50}
      nameservers: {addresses: [192.168.77.1], search: [rack4.example]}
    eno2:
    eno3: {match: {name: "enp3s*"}}
  bonds:
    bond0:
      interfaces: [eno2, eno3]
      parameters: {mode: 802.3ad, mii-monitor-interval: 100, lacp-rate: fast}
  vlans:
    storage:
      id: 42
      link: bond0
      addresses: [10.42.0.17/24]
      mtu: 9000
)";

std::map<std::string, std::string> files_of(const kiln::NetworkConfig& config) {
  std::map<std::string, std::string> files;
  for (const auto& [name, content] : kiln::networkd_files(config)) files[name] = content;
  return files;
}

/// Every error message for `text`, each prefixed by its file:line:col.
std::string errors_of(const std::string& text) {
  try {
    kiln::parse_network_config(text, "node.yaml");
  } catch (const kiln::ParseErrors& e) {
    std::string out;
    for (const auto& error : e.errors())
      out += "node.yaml:" + std::to_string(error.mark().line) + ":" +
             std::to_string(error.mark().column) + ": " + error.what() + "\n";
    return out;
  }
  return "accepted";
}

}  // namespace

TEST_CASE("a rack node's static network renders to networkd files matched by MAC and name",
          "[network]") {
  auto config = kiln::parse_network_config(kRackNode, "node-17.yaml");
  auto files = files_of(config);
  REQUIRE(files.size() == 7);  // 4 .network for links with settings, bond + vlan .netdev + .network
  const std::string& uplink = files.at("10-kiln-uplink.network");
  CHECK_THAT(uplink, Catch::Contains("[Match]\nMACAddress=52:54:00:ab:cd:17\nKind=!*\n"));
  CHECK_THAT(uplink, Catch::Contains("DHCP=no\n"));
  CHECK_THAT(uplink, Catch::Contains("Address=192.168.77.10/24\nAddress=2001:db8::17/64\n"));
  CHECK_THAT(uplink, Catch::Contains("DNS=192.168.77.1\nDomains=rack4.example\n"));
  CHECK_THAT(uplink, Catch::Contains("[Route]\nGateway=192.168.77.1\n"));
  CHECK_THAT(uplink, Catch::Contains(
                         "[Route]\nDestination=10.99.0.0/16\nGateway=192.168.77.254\nMetric=50\n"));
  // A link without match is the interface of that name; a glob matches physical links only.
  CHECK_THAT(files.at("10-kiln-eno2.network"), Catch::Contains("Name=eno2\nKind=!*\n"));
  CHECK_THAT(files.at("10-kiln-eno2.network"), Catch::Contains("Bond=bond0\n"));
  CHECK_THAT(files.at("10-kiln-eno3.network"), Catch::Contains("Name=enp3s*\nKind=!*\n"));
  CHECK_THAT(files.at("10-kiln-bond0.netdev"),
             Catch::Contains("Name=bond0\nKind=bond\n\n[Bond]\nMode=802.3ad\nMIIMonitorSec=100ms\n"
                             "LACPTransmitRate=fast\n"));
  CHECK_THAT(files.at("10-kiln-bond0.network"), Catch::Contains("VLAN=storage\n"));
  CHECK_THAT(files.at("10-kiln-storage.netdev"), Catch::Contains("Kind=vlan\n\n[VLAN]\nId=42\n"));
  CHECK_THAT(files.at("10-kiln-storage.network"), Catch::Contains("[Link]\nMTUBytes=9000\n"));
  CHECK_THAT(files.at("10-kiln-storage.network"), Catch::Contains("Address=10.42.0.17/24\n"));

  auto lines = kiln::describe_network(config);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] ==
        "uplink (mac 52:54:00:ab:cd:17): 192.168.77.10/24, 2001:db8::17/64; via 192.168.77.1; "
        "10.99.0.0/16 via 192.168.77.254; dns 192.168.77.1");
  CHECK(lines[3] == "bond0 (bond 802.3ad of eno2, eno3): no addresses");
  CHECK(lines[4] == "storage (vlan 42 on bond0): 10.42.0.17/24; mtu 9000");
}

TEST_CASE("a link can ask DHCP instead of static addresses", "[network]") {
  auto config = kiln::parse_network_config(
      "network: {version: 2, ethernets: {eth0: {dhcp4: true, dhcp6: yes}}}", "n.yaml");
  CHECK_THAT(files_of(config).at("10-kiln-eth0.network"), Catch::Contains("DHCP=yes\n"));
}

TEST_CASE("a malformed network config is refused with file:line:col for every problem",
          "[network]") {
  std::string errors = errors_of(R"(network:
  version: 2
  ethernets:
    uplink:
      match: {macaddres: "52:54:00:ab:cd:17"}
      addresses: [192.168.77.300/24, 10.0.0.1]
      gateway4: 192.168.77.1
      routes: [{to: default, via: "2001:db8::1", metric: -1}]
      nameservers: {addresses: [dns.example], search: [bad_domain]}
      mtu: 12
    "this-name-is-far-too-long": {}
  bonds:
    bond0: {interfaces: [uplink, eno9], parameters: {mode: fast-please, lacp-rate: fast}}
  vlans:
    v1: {id: 5000, link: nothere}
)");
  INFO(errors);
  CHECK_THAT(errors, Catch::Contains("node.yaml:5:15: unknown key 'macaddres' in 'uplink.match' "
                                     "(did you mean 'macaddress'?)"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:6:19: address '192.168.77.300/24' of uplink must "
                                     "be ADDRESS/PREFIX"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:6:38: address '10.0.0.1' of uplink"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:7:17: gateway4 is deprecated in netplan"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:8:58: a route's metric must be a whole number"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:9:33: name server 'dns.example' of uplink must "
                                     "be an IP address"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:9:56: search domain 'bad_domain'"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:10:12: uplink.mtu must be a whole number from 68 "
                                     "to 65535"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:11:5: link name 'this-name-is-far-too-long' must "
                                     "be 1 to 15"));
  CHECK_THAT(errors, Catch::Contains("unknown bond mode 'fast-please'"));
  CHECK_THAT(errors, Catch::Contains("lacp-rate applies to mode 802.3ad only"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:13:5: bond bond0 names interface 'eno9', which "
                                     "is not under 'ethernets'"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:4:5: uplink is a bond member: its addresses"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:15:14: v1.id must be a whole number from 1 to "
                                     "4094"));
  CHECK_THAT(errors, Catch::Contains("node.yaml:15:5: vlan v1 sits on 'nothere'"));
}

TEST_CASE("a network config must be netplan version 2 with at least one ethernet", "[network]") {
  CHECK_THAT(errors_of("ethernets: {}\n"), Catch::Contains("node.yaml:1:1: a network config is a "
                                                           "map with one key, 'network'"));
  CHECK_THAT(errors_of("network: {version: 1, ethernets: {eth0: {dhcp4: true}}}\n"),
             Catch::Contains("network.version must be 2"));
  CHECK_THAT(errors_of("network: {version: 2}\n"),
             Catch::Contains("needs at least one entry under 'ethernets'"));
  CHECK_THAT(errors_of("network: {version: 2, renderer: NetworkManager, ethernets: {e: {}}}\n"),
             Catch::Contains("renderer must be networkd"));
  CHECK_THAT(errors_of("network: [\n"), Catch::Contains("invalid YAML"));
  CHECK_THAT(errors_of(std::string(kiln::kMaxNetworkConfigBytes + 1, '#')),
             Catch::Contains("a network config is at most 65536 bytes"));
}
