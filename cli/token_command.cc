// kiln token create: a short-lived bootstrap token on a Tenant Control Plane, as a join config.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "builder/join/token_create.h"
#include "cli/commands.h"
#include "cli/options.h"

namespace kiln::cli {
namespace {

constexpr long long kMaxTtlSeconds = 24 * 3600;

const std::vector<Flag> kTokenFlags = {
    {"--kubeconfig", "FILE",
     "admin kubeconfig of the control plane (Kamaji: secret <tcp>-admin-kubeconfig)"},
    {"-o, --output", "FILE", "join config to write (mode 0600)"},
    {"--json", "", "print the result (token masked) as one JSON document"},
    {"--ttl", "DURATION", "token lifetime, e.g. 30m, 2h (default 2h, at most 24h)"},
    {"--allow-long-ttl", "", "allow --ttl beyond 24h"},
    {"--description", "TEXT", "description stored with the token"},
    {"--groups", "LIST",
     "comma-separated extra groups (default system:bootstrappers:kubeadm:default-node-token)"},
    {"--endpoint", "URL", "API server URL as nodes reach it (default: the kubeconfig's server)"},
    {"--name", "NAME", "control plane name shown on nodes (default: the kubeconfig's cluster)"},
    {"--labels", "LIST", "node labels, key=value,..."},
    {"--taints", "LIST", "node taints, key=value:Effect,..."},
    {"--node-name", "POLICY",
     "hostname, mac, dmi or cloud (default: the image's, from its recipe)"},
    {"--kubelet-args", "LIST", "extra kubelet arguments, name=value,..."},
};

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    size_t end = text.find(separator, start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::map<std::string, std::string> parse_pairs(const std::string& text, const char* flag) {
  std::map<std::string, std::string> out;
  for (const auto& item : split(text, ',')) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError(fmt::format("{} '{}': expected key=value", flag, item));
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

TokenRequest request_from(const ParsedArgs& parsed) {
  TokenRequest request;
  request.ttl_seconds = parse_duration("--ttl", parsed.get("ttl", "2h"));
  if (request.ttl_seconds < 60) throw UsageError("--ttl must be at least 1m");
  if (request.ttl_seconds > kMaxTtlSeconds && !parsed.has("allow-long-ttl")) {
    throw UsageError("--ttl " + parsed.get("ttl") +
                     " is longer than 24h; a join token should expire soon after nodes join "
                     "(pass --allow-long-ttl to override)");
  }
  if (parsed.has("description")) request.description = parsed.get("description");
  if (parsed.has("groups")) {
    request.groups = {kDefaultNodeTokenGroup};
    for (const auto& group : split(parsed.get("groups"), ',')) {
      if (group.rfind("system:bootstrappers:", 0) != 0) {
        throw UsageError("--groups '" + group +
                         "': bootstrap token groups must start with system:bootstrappers:");
      }
      request.groups.push_back(group);
    }
  }
  request.endpoint = parsed.get("endpoint");
  request.control_plane_name = parsed.get("name");
  if (parsed.has("labels")) request.node.labels = parse_pairs(parsed.get("labels"), "--labels");
  if (parsed.has("kubelet-args"))
    request.node.kubelet_extra_args = parse_pairs(parsed.get("kubelet-args"), "--kubelet-args");
  if (parsed.has("taints")) {
    static const std::regex taint("^([^=:]+)(=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$");
    for (const auto& item : split(parsed.get("taints"), ',')) {
      std::smatch match;
      if (!std::regex_match(item, match, taint)) {
        throw UsageError("--taints '" + item +
                         "': expected key=value:NoSchedule|PreferNoSchedule|NoExecute");
      }
      request.node.taints.push_back({match[1], match[3], match[4]});
    }
  }
  // Without --node-name the config names no policy, so the image's own default (the
  // recipe's node_name) applies.
  if (parsed.has("node-name")) {
    std::string policy = parsed.get("node-name");
    auto node_name = parse_node_name_policy(policy);
    if (!node_name)
      throw UsageError("--node-name '" + policy + "': expected hostname, mac, dmi or cloud");
    request.node.node_name = *node_name;
  }
  return request;
}

}  // namespace

ExitCode run_token(const std::vector<std::string>& args) {
  std::vector<std::string> rest = args;
  bool help = rest.empty() || rest[0] == "-h" || rest[0] == "--help";
  if (!help && rest[0] != "create")
    throw UsageError("unknown token command '" + rest[0] + "' (expected: create)");
  if (!rest.empty() && rest[0] == "create") rest.erase(rest.begin());
  ParsedArgs parsed = parse_args(rest, kTokenFlags);
  if (help || parsed.help) {
    std::fputs(
        render_help(
            "kiln token create --kubeconfig FILE -o FILE [options]",
            "Creates a short-lived bootstrap token on the control plane and writes a join config\n"
            "for it: API endpoint, token, the CA pin kubeadm checks, expiry, and node settings.\n"
            "Embed it with `kiln build --join` or `kiln stamp`.",
            kTokenFlags)
            .c_str(),
        stdout);
    return ExitCode::ok;
  }
  if (!parsed.positional.empty())
    throw UsageError("unexpected argument '" + parsed.positional[0] + "'");
  if (!parsed.has("kubeconfig")) throw UsageError("--kubeconfig is required");
  if (!parsed.has("output")) throw UsageError("-o FILE is required");
  TokenRequest request = request_from(parsed);
  Kubeconfig kubeconfig = load_kubeconfig(parsed.get("kubeconfig"));
  // Check the output can be written before a token exists on the control plane, so a bad
  // path never leaves a live token that nobody holds.
  std::filesystem::path output = parsed.get("output");
  std::filesystem::path parent = output.parent_path().empty() ? "." : output.parent_path();
  if (!std::filesystem::is_directory(parent) || ::access(parent.c_str(), W_OK) != 0) {
    throw Error("cannot write the join config: " + parent.string() +
                " is not a writable directory");
  }
  JoinConfig config = create_bootstrap_token(kubeconfig, request, unix_now());
  write_join_config(parsed.get("output"), config);
  if (parsed.has("json")) {
    nlohmann::json doc = {{"schemaVersion", 1},
                          {"output", parsed.get("output")},
                          {"token", config.token.masked()},
                          {"tokenId", config.token.id},
                          {"controlPlane", config.control_plane_name},
                          {"endpoint", config.endpoint},
                          {"caCertHash", config.ca_cert_hash},
                          {"expires", format_utc(config.expires)}};
    std::fputs((doc.dump(2) + "\n").c_str(), stdout);
    return ExitCode::ok;
  }
  std::printf("%s: token %s for %s, expires %s, CA %s\n", parsed.get("output").c_str(),
              config.token.masked().c_str(), config.endpoint.c_str(),
              format_utc(config.expires).c_str(), config.ca_cert_hash.c_str());
  return ExitCode::ok;
}

}  // namespace kiln::cli
