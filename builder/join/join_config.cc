#include "builder/join/join_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <sstream>

#include "builder/join/ca_pin.h"
#include "builder/recipe/recipe_parser.h"
#include "builder/recipe/suggest.h"
#include "builder/util/files.h"
#include "builder/util/time.h"

namespace kiln {

namespace {

struct Reader {
  std::string source;
  std::vector<std::string> lines;
  std::vector<Error> errors;

  void error(const YAML::Node& node, std::string message) {
    const YAML::Mark& m = node.Mark();
    std::string line = m.line >= 0 && size_t(m.line) < lines.size() ? lines[m.line] : "";
    errors.emplace_back(SourceMark{source, m.line + 1, m.column + 1}, std::move(message), line);
  }

  std::optional<std::string> scalar(const YAML::Node& node, const char* what) {
    if (node.IsScalar()) return node.Scalar();
    error(node, fmt::format("{} must be a string", what));
    return std::nullopt;
  }

  /// Reports keys of `node` not in `known`, with a suggestion.
  void check_keys(const YAML::Node& node, const std::vector<std::string>& known,
                  const std::string& section) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.Scalar();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string hint = closest_match(key, known);
      error(it->first,
            fmt::format("unknown key '{}'{}{}", key, section.empty() ? "" : " in '" + section + "'",
                        hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
  }

  std::map<std::string, std::string> string_map(const YAML::Node& node, const char* what) {
    std::map<std::string, std::string> out;
    if (!node) return out;
    if (!node.IsMap()) {
      error(node, fmt::format("{} must be a map of strings", what));
      return out;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      auto key = scalar(it->first, what);
      auto value = scalar(it->second, what);
      if (key && value) out[*key] = *value;
    }
    return out;
  }
};

}  // namespace

JoinConfig parse_join_config(const std::string& text, const std::string& source_name) {
  Reader r{source_name, {}, {}};
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) r.lines.push_back(line);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    r.errors.emplace_back(SourceMark{source_name, e.mark.line + 1, e.mark.column + 1},
                          "invalid YAML: " + e.msg);
    throw RecipeErrors(std::move(r.errors));
  }
  if (!root.IsMap()) {
    r.errors.emplace_back(SourceMark{source_name, 1, 1}, "a join config must be a YAML map");
    throw RecipeErrors(std::move(r.errors));
  }
  r.check_keys(root, {"apiVersion", "kind", "controlPlane", "token", "expires", "node"}, "");
  JoinConfig config;
  auto required = [&](const YAML::Node& parent, const char* key, const char* where) -> YAML::Node {
    YAML::Node node = parent[key];
    if (!node) r.error(parent, fmt::format("missing '{}'{}", key, where));
    return node;
  };
  if (auto v = required(root, "apiVersion", ""); v) {
    if (auto s = r.scalar(v, "apiVersion"); s && *s != JoinConfig::kApiVersion) {
      r.error(v, fmt::format("unsupported apiVersion '{}' (this kiln reads {})", *s,
                             JoinConfig::kApiVersion));
    }
  }
  if (auto v = required(root, "kind", ""); v) {
    if (auto s = r.scalar(v, "kind"); s && *s != JoinConfig::kKind)
      r.error(v, "kind must be JoinConfig");
  }
  if (YAML::Node cp = required(root, "controlPlane", ""); cp) {
    if (!cp.IsMap()) {
      r.error(cp, "controlPlane must be a map");
    } else {
      r.check_keys(cp, {"name", "endpoint", "caCertHash"}, "controlPlane");
      if (cp["name"])
        config.control_plane_name = r.scalar(cp["name"], "controlPlane.name").value_or("");
      if (auto v = required(cp, "endpoint", " in 'controlPlane'"); v) {
        static const std::regex url(R"(^https://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?/?$)");
        auto s = r.scalar(v, "controlPlane.endpoint");
        if (s && !std::regex_match(*s, url)) {
          r.error(v, fmt::format("endpoint '{}' must be an https:// URL of the API server", *s));
        } else if (s) {
          config.endpoint = *s;
        }
      }
      if (auto v = required(cp, "caCertHash", " in 'controlPlane'"); v) {
        auto s = r.scalar(v, "controlPlane.caCertHash");
        if (s && !is_valid_ca_pin(*s)) {
          r.error(v,
                  "caCertHash must be 'sha256:' followed by 64 hex digits, as kubeadm prints it");
        } else if (s) {
          config.ca_cert_hash = *s;
        }
      }
    }
  }
  if (auto v = required(root, "token", ""); v) {
    auto s = r.scalar(v, "token");
    auto token = s ? parse_bootstrap_token(*s) : std::nullopt;
    // Never echo the value: it is a secret.
    if (s && !token)
      r.error(v, "token must be a bootstrap token of the form [a-z0-9]{6}.[a-z0-9]{16}");
    if (token) config.token = *token;
  }
  if (auto v = required(root, "expires", ""); v) {
    auto s = r.scalar(v, "expires");
    auto when = s ? parse_utc(*s) : std::nullopt;
    if (s && !when)
      r.error(v, fmt::format("expires '{}' must be a UTC time like 2026-11-25T15:00:00Z", *s));
    if (when) config.expires = *when;
  }
  if (YAML::Node node = root["node"]; node) {
    if (!node.IsMap()) {
      r.error(node, "node must be a map");
    } else {
      r.check_keys(node, {"namePolicy", "labels", "taints", "kubeletExtraArgs"}, "node");
      if (YAML::Node policy = node["namePolicy"]; policy) {
        auto s = r.scalar(policy, "node.namePolicy");
        auto parsed = s ? parse_node_name_policy(*s) : std::nullopt;
        if (parsed) {
          config.node_name = *parsed;
        } else if (s) {
          r.error(policy,
                  fmt::format("unknown namePolicy '{}'; expected one of: hostname, mac, dmi, cloud",
                              *s));
        }
      }
      config.labels = r.string_map(node["labels"], "node.labels");
      config.kubelet_extra_args = r.string_map(node["kubeletExtraArgs"], "node.kubeletExtraArgs");
      if (YAML::Node taints = node["taints"]; taints) {
        if (!taints.IsSequence()) r.error(taints, "node.taints must be a list");
        for (const auto& item : taints) {
          auto fields = r.string_map(item, "taint");
          Taint taint{fields["key"], fields["value"], fields["effect"]};
          if (taint.key.empty()) r.error(item, "a taint needs a 'key'");
          if (taint.effect != "NoSchedule" && taint.effect != "PreferNoSchedule" &&
              taint.effect != "NoExecute") {
            r.error(item, "a taint's effect must be NoSchedule, PreferNoSchedule or NoExecute");
          }
          config.taints.push_back(taint);
        }
      }
    }
  }
  if (!r.errors.empty()) throw RecipeErrors(std::move(r.errors));
  return config;
}

YAML::Emitter& operator<<(YAML::Emitter& out, const Taint& taint) {
  out << YAML::BeginMap << YAML::Key << "key" << YAML::Value << taint.key;
  if (!taint.value.empty()) out << YAML::Key << "value" << YAML::Value << taint.value;
  return out << YAML::Key << "effect" << YAML::Value << taint.effect << YAML::EndMap;
}

JoinConfig load_join_config(const std::filesystem::path& file) {
  return parse_join_config(read_file(file), file.string());
}

std::string render_join_config(const JoinConfig& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << JoinConfig::kApiVersion;
  out << YAML::Key << "kind" << YAML::Value << JoinConfig::kKind;
  out << YAML::Key << "controlPlane" << YAML::Value << YAML::BeginMap;
  if (!config.control_plane_name.empty())
    out << YAML::Key << "name" << YAML::Value << config.control_plane_name;
  out << YAML::Key << "endpoint" << YAML::Value << config.endpoint;
  out << YAML::Key << "caCertHash" << YAML::Value << config.ca_cert_hash;
  out << YAML::EndMap;
  out << YAML::Key << "token" << YAML::Value << config.token.text();
  out << YAML::Key << "expires" << YAML::Value << format_utc(config.expires);
  out << YAML::Key << "node" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "namePolicy" << YAML::Value << to_string(config.node_name);
  if (!config.labels.empty()) out << YAML::Key << "labels" << YAML::Value << config.labels;
  if (!config.taints.empty()) {
    out << YAML::Key << "taints" << YAML::Value << YAML::BeginSeq;
    for (const auto& taint : config.taints) out << taint;
    out << YAML::EndSeq;
  }
  if (!config.kubelet_extra_args.empty()) {
    out << YAML::Key << "kubeletExtraArgs" << YAML::Value << config.kubelet_extra_args;
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void write_join_config(const std::filesystem::path& file, const JoinConfig& config) {
  write_file_atomic(file, render_join_config(config), 0600);
}

}  // namespace kiln
