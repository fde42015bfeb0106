#include "builder/join/join_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <string_view>

#include "builder/join/ca_pin.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"
#include "builder/util/time.h"
#include "builder/util/yaml_reader.h"

namespace kiln {

namespace {

constexpr size_t kMaxUrlLength = 2048;
using scan::is_alnum;
using scan::is_lower_alnum;

/// A host as an API server URL may name it: DNS name or IPv4 address, or [IPv6].
bool valid_host(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']') return false;
    for (char c : host.substr(1, host.size() - 2)) {
      bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return false;
    }
    return true;
  }
  if (host.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c == '.') {
      if (label == 0 || host[i - 1] == '-') return false;
      label = 0;
    } else if (is_alnum(c) || c == '-') {
      if (label == 0 && c == '-') return false;
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0 && host.back() != '-';
}

/// A DNS-1123 subdomain, as Kubernetes requires of a label key's prefix.
bool valid_dns_subdomain(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool edge = i == 0 || i + 1 == name.size() || name[i - 1] == '.' || name[i + 1] == '.';
    if (c == '.') {
      if (i == 0 || i + 1 == name.size() || name[i - 1] == '.') return false;
    } else if (!is_lower_alnum(c) && !(c == '-' && !edge)) {
      return false;
    }
  }
  return true;
}

/// A label name or value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends.
std::string qualified_name_problem(std::string_view name, const char* what) {
  if (name.empty()) return fmt::format("{} must not be empty", what);
  if (name.size() > 63) return fmt::format("{} is {} characters; at most 63", what, name.size());
  for (char c : name) {
    if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
      return fmt::format("{} may hold only letters, digits, '-', '_' and '.'", what);
  }
  if (!is_alnum(name.front()) || !is_alnum(name.back()))
    return fmt::format("{} must start and end with a letter or digit", what);
  return "";
}

/// What a join config's source line shows in an error: the value of any `token` key hidden,
/// whatever its shape, and anything shaped like a token anywhere (Error masks those too).
std::string mask_join_config_line(std::string line) {
  return mask_bootstrap_tokens(mask_key_value(std::move(line), "token"));
}

}  // namespace

bool is_api_server_url(const std::string& url) {
  constexpr std::string_view scheme = "https://";
  if (url.size() > kMaxUrlLength || url.compare(0, scheme.size(), scheme) != 0) return false;
  std::string_view rest(url);
  rest.remove_prefix(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t host_end = rest.find(':');
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]: the port follows the bracket
    size_t close = rest.find(']');
    host_end = close == std::string_view::npos ? rest.size() : close + 1;
  }
  std::string_view host = rest.substr(0, host_end);
  if (!valid_host(host)) return false;
  if (host_end >= rest.size()) return true;
  if (rest[host_end] != ':') return false;
  std::string_view port = rest.substr(host_end + 1);
  auto value = scan::parse_unsigned<unsigned>(port);
  return port.size() <= 5 && value && *value >= 1 && *value <= 65535;
}

std::string label_key_problem(const std::string& key) {
  std::string_view name = key;
  size_t slash = name.find('/');
  if (slash != std::string_view::npos) {
    std::string_view prefix = name.substr(0, slash);
    if (!valid_dns_subdomain(prefix))
      return "the key's prefix must be a DNS subdomain (lower case, at most 253 characters)";
    name.remove_prefix(slash + 1);
  }
  return qualified_name_problem(name, "the key's name");
}

std::string label_value_problem(const std::string& value) {
  return value.empty() ? "" : qualified_name_problem(value, "the value");
}

JoinConfig parse_join_config(const std::string& text, const std::string& source_name) {
  YamlReader r(source_name, text.size() > kMaxJoinConfigBytes ? std::string() : text,
               mask_join_config_line);
  if (text.size() > kMaxJoinConfigBytes) {
    r.error(YAML::Mark(), fmt::format("a join config is at most {} bytes; this one is {}",
                                      kMaxJoinConfigBytes, text.size()));
    r.throw_if_errors();
  }
  std::optional<YAML::Node> loaded = r.load(text);
  r.throw_if_errors();
  const YAML::Node& root = *loaded;
  if (!root.IsMap()) {
    r.error(YAML::Mark(), "a join config must be a YAML map");
    r.throw_if_errors();
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
      r.error(v, fmt::format("unsupported apiVersion {} (this kiln reads {})", quote_value(*s),
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
      if (cp["name"]) {
        auto name = r.scalar(cp["name"], "controlPlane.name").value_or("");
        // It names the control plane in messages and on the login banner: keep it a name.
        if (name.size() > 253 || !valid_dns_subdomain(name)) {
          r.error(cp["name"],
                  "controlPlane.name must be a Kubernetes name (lower case letters, digits, "
                  "'-' and '.', at most 253 characters)");
        } else {
          config.control_plane_name = name;
        }
      }
      if (auto v = required(cp, "endpoint", " in 'controlPlane'"); v) {
        auto s = r.scalar(v, "controlPlane.endpoint");
        if (s && !is_api_server_url(*s)) {
          r.error(v, fmt::format("endpoint {} must be an https:// URL of the API server",
                                 quote_value(*s)));
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
      r.error(v, fmt::format("expires {} must be a UTC time like 2026-11-25T15:00:00Z",
                             quote_value(*s)));
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
          r.error(policy, fmt::format("unknown namePolicy {}; expected one of: hostname, mac, dmi, "
                                      "cloud",
                                      quote_value(*s)));
        }
      }
      // Labels reach the kubelet as one --node-labels=k=v,k=v argument: a ',' or '=' in a
      // value would smuggle in other labels, so they are held to Kubernetes' own rules.
      config.labels = r.string_map(
          node["labels"], "node.labels", [&](const YAML::Node& k, const YAML::Node& v) {
            if (auto problem = label_key_problem(k.Scalar()); !problem.empty())
              r.error(k, fmt::format("label {}: {}", quote_value(k.Scalar()), problem));
            if (auto problem = label_value_problem(v.Scalar()); !problem.empty())
              r.error(v, fmt::format("label {}: {}", quote_value(k.Scalar()), problem));
          });
      config.kubelet_extra_args = r.string_map(node["kubeletExtraArgs"], "node.kubeletExtraArgs");
      if (YAML::Node taints = node["taints"]; taints) {
        if (!taints.IsSequence()) r.error(taints, "node.taints must be a list");
        for (const auto& item : taints.IsSequence() ? taints : YAML::Node()) {
          if (!item.IsMap()) {
            r.error(item, "a taint must be a map with key, value and effect");
            continue;
          }
          r.check_keys(item, {"key", "value", "effect"}, "taint");
          auto fields = r.string_map(item, "taint");
          Taint taint{fields["key"], fields["value"], fields["effect"]};
          if (taint.key.empty()) {
            r.error(item, "a taint needs a 'key'");
          } else if (auto problem = label_key_problem(taint.key); !problem.empty()) {
            r.error(item["key"], fmt::format("taint key {}: {}", quote_value(taint.key), problem));
          }
          if (auto problem = label_value_problem(taint.value); !problem.empty())
            r.error(item["value"], fmt::format("taint {}: {}", quote_value(taint.key), problem));
          if (taint.effect != "NoSchedule" && taint.effect != "PreferNoSchedule" &&
              taint.effect != "NoExecute") {
            r.error(item, "a taint's effect must be NoSchedule, PreferNoSchedule or NoExecute");
          }
          config.taints.push_back(taint);
        }
      }
    }
  }
  r.throw_if_errors();
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
  bool has_node = config.node_name || !config.labels.empty() || !config.taints.empty() ||
                  !config.kubelet_extra_args.empty();
  if (has_node) {
    out << YAML::Key << "node" << YAML::Value << YAML::BeginMap;
    if (config.node_name)
      out << YAML::Key << "namePolicy" << YAML::Value << to_string(*config.node_name);
    if (!config.labels.empty()) out << YAML::Key << "labels" << YAML::Value << config.labels;
    if (!config.taints.empty()) {
      out << YAML::Key << "taints" << YAML::Value << YAML::BeginSeq;
      for (const auto& taint : config.taints) out << taint;
      out << YAML::EndSeq;
    }
    if (!config.kubelet_extra_args.empty()) {
      out << YAML::Key << "kubeletExtraArgs" << YAML::Value << config.kubelet_extra_args;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void write_join_config(const std::filesystem::path& file, const JoinConfig& config) {
  write_file_atomic(file, render_join_config(config), 0600);
}

}  // namespace kiln
