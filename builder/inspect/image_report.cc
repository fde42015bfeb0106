#include "builder/inspect/image_report.h"

#include <nlohmann/json.hpp>

#include "builder/join/join_config.h"
#include "builder/util/error.h"
#include "builder/util/scan.h"
#include "builder/util/sha256.h"

namespace kiln {

bool ImageReport::roots_match() const {
  if (roots.empty()) return false;
  for (const auto& root : roots)
    if (!root.matches) return false;
  return true;
}

bool ImageReport::verified() const {
  if (!roots_match()) return false;
  for (const auto& release : releases)
    if (release.frames && !release.frames->matches) return false;
  return true;
}

ManifestSummary parse_manifest_summary(std::string_view json, const std::string& what) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw Error(what + " is not a JSON object");
  auto text = [&](const nlohmann::json& object, const char* key) -> std::string {
    auto found = object.find(key);
    return found != object.end() && found->is_string() ? found->get<std::string>() : "";
  };
  ManifestSummary manifest;
  manifest.sha256 = sha256_hex(json);
  manifest.name = text(doc, "name");
  manifest.version = text(doc, "version");
  manifest.kiln_version = text(doc, "kiln_version");
  if (auto epoch = doc.find("source_date_epoch"); epoch != doc.end() && epoch->is_number_integer())
    manifest.source_date_epoch = epoch->get<long long>();
  if (auto base = doc.find("base"); base != doc.end() && base->is_object())
    manifest.arch = text(*base, "arch");
  if (auto k8s = doc.find("kubernetes"); k8s != doc.end() && k8s->is_object())
    manifest.kubernetes_version = text(*k8s, "version");
  if (manifest.name.empty() || manifest.kubernetes_version.empty())
    throw Error(what + " is not a kiln manifest (no name or Kubernetes version)");
  if (auto packages = doc.find("packages"); packages != doc.end() && packages->is_array()) {
    for (const auto& package : *packages)
      if (package.is_object())
        manifest.packages.emplace_back(text(package, "name"), text(package, "version"));
  }
  if (auto artifacts = doc.find("artifacts"); artifacts != doc.end() && artifacts->is_array()) {
    for (const auto& artifact : *artifacts)
      if (artifact.is_object())
        manifest.artifacts.push_back(
            {text(artifact, "name"), text(artifact, "origin"), text(artifact, "sha256")});
  }
  return manifest;
}

StampState summarize_stamp(const std::optional<std::string>& join_yaml,
                           const std::optional<std::string>& update_url, const std::string& what) {
  StampState state;
  if (update_url) state.update_url = std::string(scan::trim(*update_url));
  if (state.update_url) {
    while (!state.update_url->empty() &&
           (state.update_url->back() == '\n' || state.update_url->back() == '\r'))
      state.update_url->pop_back();
  }
  if (!join_yaml) return state;
  JoinConfig config = parse_join_config(*join_yaml, what);
  state.stamped = true;
  state.control_plane = config.control_plane_name;
  state.endpoint = config.endpoint;
  state.ca_cert_hash = config.ca_cert_hash;
  state.token_masked = config.token.masked();
  state.expires = config.expires;
  state.node_name = to_string(config.node_name);
  return state;
}

namespace {

/// Splits "key value" (any run of spaces or tabs between).
std::pair<std::string_view, std::string_view> key_value(std::string_view line) {
  line = scan::trim(line);
  std::size_t space = line.find_first_of(" \t");
  if (space == std::string_view::npos) return {line, {}};
  return {line.substr(0, space), scan::trim(line.substr(space))};
}

template <typename Visit>
void for_each_line(std::string_view text, Visit visit) {
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    visit(line);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
}

}  // namespace

LoaderEntry parse_boot_entry(std::string_view text) {
  LoaderEntry entry{"systemd-boot", "", "", ""};
  for_each_line(text, [&](std::string_view line) {
    auto [key, value] = key_value(line);
    if (key == "title") entry.title = value;
    if (key == "version") entry.version = value;
    if (key == "options") entry.cmdline += (entry.cmdline.empty() ? "" : " ") + std::string(value);
  });
  return entry;
}

std::vector<LoaderEntry> parse_grub_entries(std::string_view text) {
  std::vector<LoaderEntry> entries;
  for_each_line(text, [&](std::string_view line) {
    auto [key, value] = key_value(line);
    if (key == "menuentry") {
      LoaderEntry entry{"grub", "", "", ""};
      if (!value.empty() && (value[0] == '\'' || value[0] == '"')) {
        std::size_t close = value.find(value[0], 1);
        if (close != std::string_view::npos) entry.title = value.substr(1, close - 1);
      }
      entries.push_back(std::move(entry));
    } else if (key == "linux" && !entries.empty() && entries.back().cmdline.empty()) {
      auto [kernel, arguments] = key_value(value);
      (void)kernel;
      entries.back().cmdline = arguments;
    }
  });
  return entries;
}

std::optional<std::string> raspberry_pi_os_prefix(std::string_view config_txt) {
  std::optional<std::string_view> prefix;
  for_each_line(config_txt, [&](std::string_view line) {
    line = scan::trim(line);
    if (!prefix && line.substr(0, 10) == "os_prefix=") prefix = scan::trim(line.substr(10));
  });
  if (!prefix) return std::string();
  if (prefix->empty() || prefix->front() == '/' || prefix->find("..") != std::string_view::npos)
    return std::nullopt;
  return std::string(*prefix);
}

LoaderEntry raspberry_pi_entry(std::string_view os_prefix, std::string_view cmdline_txt) {
  std::string_view first = cmdline_txt.substr(0, cmdline_txt.find('\n'));
  return {"raspberry-pi", "config.txt os_prefix=" + std::string(os_prefix), "",
          std::string(scan::trim(first))};
}

std::optional<LoaderEntry> parse_ipxe_script(std::string_view text) {
  std::optional<LoaderEntry> entry;
  for_each_line(text, [&](std::string_view line) {
    auto [key, value] = key_value(line);
    if (entry || key != "kernel") return;
    auto [kernel, arguments] = key_value(value);
    (void)kernel;
    entry = LoaderEntry{"ipxe", "boot.ipxe", "", std::string(arguments)};
  });
  return entry;
}

std::string cmdline_value(std::string_view cmdline, std::string_view key) {
  while (!cmdline.empty()) {
    std::size_t end = cmdline.find(' ');
    std::string_view argument = cmdline.substr(0, end);
    if (argument.size() > key.size() && argument.substr(0, key.size()) == key &&
        argument[key.size()] == '=')
      return std::string(argument.substr(key.size() + 1));
    cmdline = end == std::string_view::npos ? std::string_view() : cmdline.substr(end + 1);
  }
  return {};
}

}  // namespace kiln
