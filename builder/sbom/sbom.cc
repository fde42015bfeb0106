#include "builder/sbom/sbom.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "builder/sbom/debian_licenses.h"
#include "builder/sbom/dpkg_status.h"
#include "builder/sbom/go_buildinfo.h"
#include "builder/util/sha256.h"
#include "builder/util/time.h"

namespace kiln {

using nlohmann::json;

namespace {

/// SPDX element ids: letters, digits, '.' and '-' only, so names are folded ("libstdc++6"
/// becomes "libstdc--6"); two names that fold alike get distinct ids.
class SpdxIds {
 public:
  std::string make(std::string_view kind, std::string_view name) {
    std::string id = "SPDXRef-" + std::string(kind) + "-" + spdx_id_text(name);
    std::string unique = id;
    for (int n = 2; !used_.insert(unique).second; ++n) unique = id + "-" + std::to_string(n);
    return unique;
  }

 private:
  std::set<std::string> used_;
};

/// Percent-encodes a purl version or qualifier value (purl spec: only unreserved characters
/// stay as they are).
std::string purl_encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '~')
      out += char(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

/// "Name <mail>" as an SPDX supplier: teams and lists as organisations, people as persons.
std::string supplier(std::string_view maintainer) {
  if (maintainer.empty()) return "NOASSERTION";
  std::string name(maintainer.substr(0, maintainer.find('<')));
  while (!name.empty() && name.back() == ' ') name.pop_back();
  std::string mail;
  if (auto lt = maintainer.find('<'), gt = maintainer.find('>');
      lt != std::string_view::npos && gt != std::string_view::npos && gt > lt)
    mail = maintainer.substr(lt + 1, gt - lt - 1);
  bool team = false;
  for (std::string_view word : {"Maintainers", "Team", "Group", "Project", "Debian"})
    team = team || name.find(word) != std::string::npos;
  return fmt::format("{}: {}{}", team ? "Organization" : "Person", name,
                     mail.empty() ? "" : " (" + mail + ")");
}

/// The copyright file of a package; its doc folder may be a symlink to another package's.
const std::string* copyright_file(const RootTree& tree, const std::string& package) {
  std::string dir = "usr/share/doc/" + package;
  for (int hops = 0; hops < 4; ++hops) {
    const TreeNode* node = tree.find(dir);
    if (!node) return nullptr;
    if (node->type != TreeNode::Type::symlink) break;
    if (node->target.find('/') != std::string::npos) return nullptr;
    dir = "usr/share/doc/" + node->target;
  }
  const TreeNode* file = tree.find(dir + "/copyright");
  return file && file->type == TreeNode::Type::file ? &file->data : nullptr;
}

json package_base(const std::string& id, const std::string& name, const std::string& version) {
  return {{"SPDXID", id},
          {"name", name},
          {"versionInfo", version},
          {"downloadLocation", "NOASSERTION"},
          {"filesAnalyzed", false},
          {"licenseConcluded", "NOASSERTION"},
          {"licenseDeclared", "NOASSERTION"},
          {"copyrightText", "NOASSERTION"}};
}

json purl_ref(const std::string& locator) {
  return json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                       {"referenceType", "purl"},
                       {"referenceLocator", locator}}});
}

json relationship(const std::string& from, const char* type, const std::string& to) {
  return {{"spdxElementId", from}, {"relationshipType", type}, {"relatedSpdxElement", to}};
}

/// Upstream binaries kiln installs, all from Apache-2.0 projects: Kubernetes, cri-tools
/// (a Kubernetes SIG's) and containerd.
bool is_upstream_binary(const std::string& name) {
  return name == "kubelet" || name == "kubeadm" || name == "crictl" || name == "containerd" ||
         name == "kube-apiserver" || name == "kube-controller-manager";
}

}  // namespace

std::string render_sbom(const BuildPlan& plan, const RootTree& tree,
                        const KubernetesArtifact& kubernetes) {
  const Recipe& r = plan.recipe;
  const std::string image_id = "SPDXRef-image";
  SpdxIds ids;
  json packages = json::array(), relationships = json::array();
  relationships.push_back(relationship("SPDXRef-DOCUMENT", "DESCRIBES", image_id));

  json image = package_base(image_id, r.name, r.version);
  image["primaryPackagePurpose"] = "OPERATING-SYSTEM";
  image["supplier"] = "NOASSERTION";
  image["comment"] = fmt::format("Debian {} {} image built by kiln {} from recipe {}", r.base.suite,
                                 to_string(r.base.arch), KILN_VERSION, plan.recipe_hash);
  packages.push_back(image);

  // Debian packages, as dpkg recorded them.
  std::set<std::string> license_refs;
  const TreeNode* status = tree.find("var/lib/dpkg/status");
  std::vector<DpkgPackage> debs =
      status ? parse_dpkg_status(status->data) : std::vector<DpkgPackage>{};
  std::sort(debs.begin(), debs.end(), [](const DpkgPackage& a, const DpkgPackage& b) {
    return std::tie(a.name, a.architecture) < std::tie(b.name, b.architecture);
  });
  for (const auto& deb : debs) {
    std::string id = ids.make("deb", deb.name + "-" + deb.architecture);
    json p = package_base(id, deb.name, deb.version);
    p["supplier"] = supplier(deb.maintainer);
    if (const std::string* copyright = copyright_file(tree, deb.name))
      p["licenseDeclared"] = declared_license(*copyright, license_refs);
    p["externalRefs"] = purl_ref(fmt::format("pkg:deb/debian/{}@{}?arch={}&distro=debian-{}",
                                             deb.name, purl_encode(deb.version),
                                             purl_encode(deb.architecture), r.base.suite));
    if (!deb.source.empty() && deb.source != deb.name) p["sourceInfo"] = "built from " + deb.source;
    packages.push_back(p);
    relationships.push_back(relationship(image_id, "CONTAINS", id));
  }

  // Upstream binaries: origin and digest from the Kubernetes stage, modules from the binary.
  std::map<std::string, json> modules;  // "path@version" -> package, shared by the binaries
  for (const auto& record : kubernetes.records) {
    std::string id = ids.make("bin", record.name);
    // The recipe's version; a Go binary's own build information refines it below.
    std::string version = "v" + r.kubernetes.version.text();
    if (record.name == "crictl") version = "v" + r.kubernetes.crictl_version.text();
    if (record.name == "containerd" && r.containerd.version)
      version = "v" + r.containerd.version->text();
    json p = package_base(id, record.name, version);
    p["supplier"] = record.name == "containerd" ? "Organization: The containerd Authors"
                                                : "Organization: The Kubernetes Authors";
    p["licenseDeclared"] = is_upstream_binary(record.name) ? "Apache-2.0" : "NOASSERTION";
    p["checksums"] = json::array({{{"algorithm", "SHA256"}, {"checksumValue", record.sha256}}});
    if (record.origin.rfind("https://", 0) == 0) p["downloadLocation"] = record.origin;
    p["sourceInfo"] = "from " + record.origin;
    const TreeNode* binary = tree.find(record.install_path);
    std::optional<GoBuildInfo> info;
    if (binary && binary->type == TreeNode::Type::file) info = read_go_buildinfo(binary->data);
    if (info) {
      std::vector<GoModule> all = info->deps;
      all.push_back(info->main);
      for (const auto& module : all) {
        if (module.version.empty() || module.version == "(devel)") continue;
        if (info->package == module.path || info->package.rfind(module.path + "/", 0) == 0) {
          p["versionInfo"] = module.version;
          p["externalRefs"] = purl_ref("pkg:golang/" + module.path + "@" + module.version);
        }
        const std::string key = module.path + "@" + module.version;
        if (!modules.count(key)) {
          json m = package_base(ids.make("gomod", key), module.path, module.version);
          m["supplier"] = "NOASSERTION";
          m["externalRefs"] = purl_ref("pkg:golang/" + key);
          if (!module.sum.empty()) m["comment"] = "go.sum " + module.sum;
          modules[key] = m;
        }
        relationships.push_back(relationship(id, "DEPENDS_ON", modules[key]["SPDXID"]));
      }
      // The toolchain, keyed apart from module paths (the leading space sorts it first).
      const std::string go_key = " go@" + info->go_version;
      if (!modules.count(go_key)) {
        json go = package_base(ids.make("go", info->go_version), "go", info->go_version);
        go["supplier"] = "Organization: The Go Authors";
        go["licenseDeclared"] = "BSD-3-Clause";
        go["externalRefs"] = purl_ref("pkg:golang/stdlib@" + info->go_version);
        modules[go_key] = go;
      }
      relationships.push_back(relationship(modules[go_key]["SPDXID"], "BUILD_TOOL_OF", id));
    }
    packages.push_back(p);
    relationships.push_back(relationship(image_id, "CONTAINS", id));
  }
  for (auto& [key, module] : modules) packages.push_back(module);

  // kiln's own programs on the node.
  for (const char* path : {"usr/lib/kiln/kiln-firstboot", "usr/bin/kiln-update"}) {
    const TreeNode* node = tree.find(path);
    if (!node || node->type != TreeNode::Type::file) continue;
    std::string name = std::string(path).substr(std::string(path).rfind('/') + 1);
    std::string id = ids.make("kiln", name);
    json p = package_base(id, name, KILN_VERSION);
    p["supplier"] = "Organization: kiln";
    p["checksums"] =
        json::array({{{"algorithm", "SHA256"}, {"checksumValue", sha256_hex(node->data)}}});
    packages.push_back(p);
    relationships.push_back(relationship(image_id, "CONTAINS", id));
  }

  json extracted = json::array();
  for (const auto& ref : license_refs) {
    extracted.push_back(
        {{"licenseId", ref},
         {"name", ref.substr(11)},
         {"extractedText", "The licence Debian's copyright files call '" + ref.substr(11) +
                               "'; see /usr/share/doc/PACKAGE/copyright."}});
  }

  json document = {
      {"spdxVersion", "SPDX-2.3"},
      {"dataLicense", "CC0-1.0"},
      {"SPDXID", "SPDXRef-DOCUMENT"},
      {"name", r.name + "-" + r.version},
      {"documentNamespace",
       fmt::format("https://spdx.org/spdxdocs/kiln-{}-{}-{}", r.name, r.version, plan.rootfs_key)},
      {"creationInfo",
       {{"created", format_utc(plan.source_date_epoch)},
        {"creators", json::array({std::string("Tool: kiln-") + KILN_VERSION})}}},
      {"documentDescribes", json::array({image_id})},
      {"packages", packages},
      {"relationships", relationships},
  };
  if (!extracted.empty()) document["hasExtractedLicensingInfos"] = extracted;
  return document.dump(1) + "\n";
}

}  // namespace kiln
