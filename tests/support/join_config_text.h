#pragma once

#include <string>

namespace kiln::test {

/// A well-formed join config for a control plane at 10.0.2.2:6443 that tests never start,
/// its token expiring at `expires` (UTC, e.g. 2099-01-01T00:00:00Z).
inline std::string join_config_text(const std::string& expires) {
  return R"(apiVersion: kiln.dev/v1alpha1
kind: JoinConfig
controlPlane:
  name: tcp-netboot
  endpoint: https://10.0.2.2:6443
  caCertHash: sha256:c2dc616d061b7a08d6c11e554b7a404ccf673c3d87abe07a56495030c90bda48
token: abcdef.0123456789abcdef
expires: )" +
         expires + "\n";
}

}  // namespace kiln::test
