#include "builder/rootfs/manifest.h"

#include <fmt/format.h>

namespace kiln {

std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += char(c);
    }
  }
  return out + "\"";
}

namespace {

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_quote(items[i]);
  return out + "]";
}

}  // namespace

std::string render_manifest(const BuildPlan& plan, const BaseArtifact& base,
                            const KubernetesArtifact& kubernetes) {
  const Recipe& r = plan.recipe;
  std::string out = "{\n";
  // Format 2: no "outputs". The manifest is part of the image, and which formats a build
  // exports is not part of the rootfs stage's key: recording it would make the same cached
  // root differ from a fresh one.
  out += "  \"format\": 2,\n";
  out += fmt::format("  \"name\": {},\n", json_quote(r.name));
  out += fmt::format("  \"version\": {},\n", json_quote(r.version));
  out += fmt::format("  \"kiln_version\": {},\n", json_quote(KILN_VERSION));
  out += fmt::format("  \"recipe_sha256\": {},\n", json_quote(plan.recipe_hash));
  out += fmt::format("  \"source_date_epoch\": {},\n", plan.source_date_epoch);
  out += fmt::format(
      "  \"base\": {{\"distribution\": {}, \"suite\": {}, \"arch\": {}, \"mirror\": {}}},\n",
      json_quote(r.base.distribution), json_quote(r.base.suite), json_quote(to_string(r.base.arch)),
      json_quote(r.base.mirror));
  out += fmt::format(
      "  \"kubernetes\": {{\"version\": {}, \"source\": {}, \"pause_image\": {}}},\n",
      json_quote("v" + r.kubernetes.version.text()), json_quote(to_string(plan.kubernetes_source)),
      json_quote(kubernetes.pause_image));
  out += fmt::format("  \"containerd\": {{\"source\": {}}},\n",
                     json_quote(to_string(r.containerd.from)));
  out += fmt::format("  \"node_name_policy\": {},\n", json_quote(to_string(r.node_name)));
  out += fmt::format("  \"kernel_cmdline\": {},\n", json_list(r.kernel.cmdline));
  out += "  \"stage_keys\": {";
  out += fmt::format("\"base\": {}, \"kubernetes\": {}, \"rootfs\": {}}},\n",
                     json_quote(plan.base_key), json_quote(plan.kubernetes_key),
                     json_quote(plan.rootfs_key));
  out += "  \"artifacts\": [\n";
  for (size_t i = 0; i < kubernetes.records.size(); ++i) {
    const auto& a = kubernetes.records[i];
    out += fmt::format("    {{\"name\": {}, \"origin\": {}, \"sha256\": {}, \"path\": {}}}{}\n",
                       json_quote(a.name), json_quote(a.origin), json_quote(a.sha256),
                       json_quote(a.install_path), i + 1 < kubernetes.records.size() ? "," : "");
  }
  out += "  ],\n  \"packages\": [\n";
  for (size_t i = 0; i < base.packages.size(); ++i) {
    out +=
        fmt::format("    {{\"name\": {}, \"version\": {}}}{}\n", json_quote(base.packages[i].first),
                    json_quote(base.packages[i].second), i + 1 < base.packages.size() ? "," : "");
  }
  out += "  ]\n}\n";
  return out;
}

}  // namespace kiln
