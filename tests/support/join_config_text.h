#pragma once

#include <stdexcept>
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

/// A well-formed join config for tcp-edge at 10.0.2.2:6443 (never started), with a label and
/// a taint, its token valid until 2099.
inline const std::string kLabelledJoinConfig = R"(apiVersion: kiln.dev/v1alpha1
kind: JoinConfig
controlPlane:
  name: tcp-edge
  endpoint: https://10.0.2.2:6443
  caCertHash: sha256:c2dc616d061b7a08d6c11e554b7a404ccf673c3d87abe07a56495030c90bda48
token: abcdef.0123456789abcdef
expires: 2099-11-25T15:00:00Z
node:
  labels:
    pool: edge
  taints:
    - key: dedicated
      value: edge
      effect: NoSchedule
)";

/// `text` with the first `from` replaced by `to`; throws when `from` is absent, so a test
/// never passes by checking the unchanged text.
inline std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  if (at == std::string::npos) throw std::logic_error("'" + from + "' is not in the text");
  return text.replace(at, from.size(), to);
}

}  // namespace kiln::test
