#pragma once

#include <string>

namespace kiln::test {

/// A network without DHCP between one guest and this host, for nodes with a static network:
/// a tap link whose host end is kGateway (on kSubnet) and which also answers as 10.0.2.2, the
/// control plane's advertised address; a socat relay forwards `relay_port` there to the API
/// server on loopback. Nothing on the link hands out addresses. Needs root (CAP_NET_ADMIN) and
/// /dev/net/tun, as `make test` has; taken down when the object goes away.
class TapNetwork {
 public:
  static constexpr const char* kSubnet = "192.168.77.0/24";
  static constexpr const char* kGateway = "192.168.77.1";

  explicit TapNetwork(int relay_port);
  ~TapNetwork();
  TapNetwork(const TapNetwork&) = delete;
  TapNetwork& operator=(const TapNetwork&) = delete;

  /// The tap device, for qemu's `-netdev tap,ifname=`.
  const std::string& device() const { return device_; }

 private:
  void take_down();

  std::string device_;
  int relay_pid_ = -1;
};

}  // namespace kiln::test
