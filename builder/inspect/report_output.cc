// `kiln inspect`'s two renderings of one ImageReport: lines for people, JSON for pipelines.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "builder/inspect/inspect.h"
#include "builder/util/time.h"

namespace kiln {

std::string render_report(const ImageReport& report, long long now) {
  std::string out;
  auto line = [&](const char* key, const std::string& value) {
    out += fmt::format("{:<15}{}\n", key, value);
  };
  line("image", report.path + " (" + report.format + ")");
  if (const auto& m = report.manifest) {
    line("name",
         fmt::format("{} {} ({})", m->name, m->version.empty() ? "?" : m->version, m->arch));
    line("built",
         fmt::format("{} (SOURCE_DATE_EPOCH {}) by kiln {}", format_utc(m->source_date_epoch),
                     m->source_date_epoch, m->kiln_version));
    line("kubernetes", m->kubernetes_version);
  } else if (!report.update_name.empty()) {
    line("name",
         fmt::format("{} ({}), update folder, index {}", report.update_name, report.update_arch,
                     report.update_signed ? "signed (index.json.sig)" : "NOT signed"));
  }
  for (const auto& root : report.roots) {
    line("root", fmt::format("{} {} {}", root.slot.empty() ? "?" : root.slot, root.root_hash,
                             root.matches ? "matches (dm-verity tree and data verified)"
                                          : "DOES NOT MATCH: " + root.problem));
  }
  for (const auto& release : report.releases) {
    if (!release.frames) continue;
    line("frames", fmt::format("{} {}", release.frames->file,
                               release.frames->matches
                                   ? "decode to the root of " + release.version
                                   : "DO NOT DECODE TO THE ROOT: " + release.frames->problem));
  }
  for (const auto& entry : report.loader_entries) {
    line("boot", fmt::format("{} '{}': {}", entry.loader, entry.title, entry.cmdline));
  }
  if (const auto& m = report.manifest) {
    line("manifest", fmt::format("sha256:{} ({} packages)", m->sha256, m->packages.size()));
    for (const auto& artifact : m->artifacts)
      line("artifact",
           fmt::format("{} {} sha256:{}", artifact.name, artifact.origin, artifact.sha256));
  }
  if (!report.sbom_sha256.empty()) line("sbom", "sha256:" + report.sbom_sha256);
  if (const auto& stamp = report.stamp) {
    if (!stamp->stamped) {
      line("stamp", "nothing stamped");
    } else {
      if (!stamp->control_plane.empty()) line("control plane", stamp->control_plane);
      line("endpoint", stamp->endpoint);
      line("CA pin", stamp->ca_cert_hash);
      line("token", stamp->token_masked);
      line("expires", format_utc(stamp->expires) + " (" + expiry_text(stamp->expires, now) + ")");
      line("node name", stamp->node_name);
    }
    if (stamp->update_url) line("update source", *stamp->update_url);
  }
  if (const auto& m = report.manifest) {
    for (const auto& [name, version] : m->packages) line("package", name + " " + version);
  }
  return out;
}

std::string report_json(const ImageReport& report, long long now) {
  using nlohmann::json;
  json doc = {{"schemaVersion", 1},
              {"path", report.path},
              {"format", report.format},
              {"verified", report.verified()}};
  json roots = json::array();
  for (const auto& root : report.roots) {
    json item = {{"slot", root.slot}, {"rootHash", root.root_hash}, {"matches", root.matches}};
    if (!root.matches) item["problem"] = root.problem;
    roots.push_back(std::move(item));
  }
  doc["roots"] = std::move(roots);
  doc["rootHash"] = report.roots.empty() ? json(nullptr) : json(report.roots.front().root_hash);
  json entries = json::array();
  for (const auto& entry : report.loader_entries) {
    entries.push_back({{"loader", entry.loader},
                       {"title", entry.title},
                       {"version", entry.version},
                       {"cmdline", entry.cmdline}});
  }
  doc["loaderEntries"] = std::move(entries);
  if (const auto& m = report.manifest) {
    doc["name"] = m->name;
    doc["version"] = m->version;
    doc["arch"] = m->arch;
    doc["buildEpoch"] = m->source_date_epoch;
    doc["kilnVersion"] = m->kiln_version;
    doc["kubernetesVersion"] = m->kubernetes_version;
    json packages = json::array(), artifacts = json::array();
    for (const auto& [name, version] : m->packages)
      packages.push_back({{"name", name}, {"version", version}});
    for (const auto& a : m->artifacts)
      artifacts.push_back({{"name", a.name}, {"origin", a.origin}, {"sha256", a.sha256}});
    doc["manifest"] = {{"sha256", m->sha256}, {"packages", packages}, {"artifacts", artifacts}};
  } else {
    doc["manifest"] = nullptr;
  }
  doc["sbomSha256"] = report.sbom_sha256.empty() ? json(nullptr) : json(report.sbom_sha256);
  if (const auto& stamp = report.stamp) {
    json s = {{"stamped", stamp->stamped}};
    if (stamp->stamped) {
      s["controlPlane"] = stamp->control_plane;
      s["endpoint"] = stamp->endpoint;
      s["caCertHash"] = stamp->ca_cert_hash;
      s["token"] = stamp->token_masked;
      s["expires"] = format_utc(stamp->expires);
      s["expired"] = now >= stamp->expires;
      s["nodeName"] = stamp->node_name;
    }
    s["updateUrl"] = stamp->update_url ? json(*stamp->update_url) : json(nullptr);
    doc["stamp"] = std::move(s);
  } else {
    doc["stamp"] = nullptr;
  }
  if (report.format == "update") {
    json releases = json::array();
    for (const auto& r : report.releases) {
      json release = {{"version", r.version},
                      {"cmdline", r.cmdline},
                      {"rootHash", r.root.root_hash},
                      {"matches", r.root.matches},
                      {"framesMatch", r.frames ? json(r.frames->matches) : json(nullptr)}};
      if (r.frames && !r.frames->matches) release["framesProblem"] = r.frames->problem;
      releases.push_back(std::move(release));
    }
    doc["update"] = {{"name", report.update_name},
                     {"arch", report.update_arch},
                     {"signed", report.update_signed},
                     {"releases", std::move(releases)}};
  }
  return doc.dump(2) + "\n";
}

}  // namespace kiln
