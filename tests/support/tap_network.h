#pragma once

#include <string>
#include <vector>

namespace kiln::test {

/// A network without DHCP between one guest and this host, for nodes with a static network:
/// a tap link on 192.168.SUBNET.0/24 whose host end is the gateway (.1) and which also
/// answers as 10.0.2.2, the address the control plane and served folders have from a guest;
/// a socat relay forwards each of `relay_ports` there to loopback. Nothing on the link hands
/// out addresses. Tests that run at the same time use different subnets. Needs root
/// (CAP_NET_ADMIN) and /dev/net/tun, as `make test` has; taken down when the object goes away.
class TapNetwork {
 public:
  TapNetwork(int subnet, const std::vector<int>& relay_ports);
  ~TapNetwork();
  TapNetwork(const TapNetwork&) = delete;
  TapNetwork& operator=(const TapNetwork&) = delete;

  /// The tap device, for qemu's `-netdev tap,ifname=`.
  const std::string& device() const { return device_; }
  /// 192.168.SUBNET.HOST
  std::string address(int host) const;
  std::string gateway() const { return address(1); }
  /// A node's network config (`kiln stamp --network`): the NIC with `mac` at address(host)/24,
  /// its default route through the gateway.
  std::string node_config(const std::string& mac, int host) const;

 private:
  void take_down();

  int subnet_;
  std::string device_;
  std::vector<int> relay_pids_;
};

}  // namespace kiln::test
