#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "builder/join/bootstrap_token.h"
#include "builder/util/node_name_policy.h"
#include "builder/util/parse_errors.h"
#include "builder/util/time.h"

namespace kiln {

struct Taint {
  std::string key;
  std::string value;
  std::string effect;  ///< NoSchedule, PreferNoSchedule or NoExecute
};

/// A taint as Kubernetes writes it: key, value (when set), effect.
YAML::Emitter& operator<<(YAML::Emitter& out, const Taint& taint);

/// What a node needs to join a Tenant Control Plane: kiln's own small, versioned format,
/// shared by `kiln token create` (writes it), `kiln stamp` (embeds it) and the first-boot
/// agent (reads it). Holds a secret: files are written 0600.
struct JoinConfig {
  static constexpr const char* kApiVersion = "kiln.dev/v1alpha1";
  static constexpr const char* kKind = "JoinConfig";

  std::string control_plane_name;  ///< for messages ("joined tcp-xyz as node-abc")
  std::string endpoint;            ///< https://host:port of the API server
  std::string ca_cert_hash;        ///< "sha256:<hex>", kubeadm's discovery pin
  BootstrapToken token;
  long long expires = 0;  ///< Unix time; the token is refused after it
  /// Set when the config names a policy (node.namePolicy); else the image's default applies.
  std::optional<NodeNamePolicy> node_name;
  std::map<std::string, std::string> labels;
  std::vector<Taint> taints;
  std::map<std::string, std::string> kubelet_extra_args;
};

/// The largest join config read, in bytes: far above any real one, small enough that a
/// hostile one costs nothing to refuse.
constexpr size_t kMaxJoinConfigBytes = 64 * 1024;

/// Parses and validates a join config; errors carry file:line:column and quote the source
/// line with the token masked. Labels and taints are checked as Kubernetes checks them.
/// Throws ParseErrors.
JoinConfig parse_join_config(const std::string& text, const std::string& source_name);
JoinConfig load_join_config(const std::filesystem::path& file);

/// True for https://HOST[:PORT][/]: HOST a DNS name, IPv4 address or [IPv6] address, PORT
/// 1-65535, at most 2048 characters. Checked in one pass.
bool is_api_server_url(const std::string& url);

/// Kubernetes' rules for label (and taint) keys: an optional DNS-subdomain prefix (at most 253
/// characters) and '/', then a name of at most 63 characters of [A-Za-z0-9._-] that starts and
/// ends alphanumeric. Returns what is wrong, or "" when the key is valid.
std::string label_key_problem(const std::string& key);
/// Label (and taint) values: empty, or a name as above. Returns what is wrong, or "".
std::string label_value_problem(const std::string& value);

/// The YAML form (token included: handle as a secret).
std::string render_join_config(const JoinConfig& config);

/// Writes the config atomically with mode 0600; it never exists with wider permissions.
void write_join_config(const std::filesystem::path& file, const JoinConfig& config);

}  // namespace kiln
