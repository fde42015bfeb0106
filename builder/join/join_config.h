#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "builder/join/bootstrap_token.h"
#include "builder/recipe/recipe.h"
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
  NodeNamePolicy node_name = NodeNamePolicy::hostname;
  std::map<std::string, std::string> labels;
  std::vector<Taint> taints;
  std::map<std::string, std::string> kubelet_extra_args;
};

/// Parses and validates a join config; errors carry file:line:column. Throws RecipeErrors.
JoinConfig parse_join_config(const std::string& text, const std::string& source_name);
JoinConfig load_join_config(const std::filesystem::path& file);

/// The YAML form (token included: handle as a secret).
std::string render_join_config(const JoinConfig& config);

/// Writes the config atomically with mode 0600; it never exists with wider permissions.
void write_join_config(const std::filesystem::path& file, const JoinConfig& config);

}  // namespace kiln
