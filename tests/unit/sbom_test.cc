// The SPDX SBOM's parts: Go build information read from a binary, Debian copyright files
// mapped to SPDX licence expressions, dpkg's status database, and the document they make.
#include "builder/sbom/sbom.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "builder/sbom/debian_licenses.h"
#include "builder/sbom/dpkg_status.h"
#include "builder/sbom/go_buildinfo.h"
#include "builder/util/sha256.h"

namespace {

std::string uvarint(std::size_t n) {
  std::string out;
  do {
    unsigned char byte = n & 0x7f;
    n >>= 7;
    out += char(n ? byte | 0x80 : byte);
  } while (n);
  return out;
}

/// A binary as Go 1.18+ lays out its build information: the 32-byte header (magic, pointer
/// size, flags with "inline strings"), then the version and module text, each with its length.
std::string binary_with_buildinfo(const std::string& modinfo) {
  std::string data(48, 'x');  // code before it; the blob is 16-byte aligned
  data += std::string("\xff Go buildinf:", 14) + char(8) + char(2) + std::string(16, '\0');
  std::string sentinel(16, '\x30');
  std::string text = sentinel + modinfo + sentinel;
  data += uvarint(8) + "go1.24.4" + uvarint(text.size()) + text;
  return data + std::string(100, 'y');
}

}  // namespace

TEST_CASE("Go build information gives the toolchain the main package and replaced modules") {
  std::string modinfo =
      "path\tk8s.io/kubernetes/cmd/kubelet\n"
      "mod\tkiln.local/build\t(devel)\t\n"
      "dep\tgithub.com/spf13/cobra\tv1.9.1\th1:abc=\n"
      "dep\tk8s.io/api\tv0.0.0\t\n"
      "=>\tk8s.io/api\tv0.34.12\th1:def=\n"
      "dep\tk8s.io/kubernetes\tv1.34.12\th1:ghi=\n"
      "build\tCGO_ENABLED=0\n";
  auto info = kiln::read_go_buildinfo(binary_with_buildinfo(modinfo));
  REQUIRE(info);
  CHECK(info->go_version == "go1.24.4");
  CHECK(info->package == "k8s.io/kubernetes/cmd/kubelet");
  CHECK(info->main.version == "(devel)");
  REQUIRE(info->deps.size() == 3);
  CHECK(info->deps[1].path == "k8s.io/api");
  CHECK(info->deps[1].version == "v0.34.12");  // the replacement is what was compiled
  CHECK(info->deps[2].sum == "h1:ghi=");

  CHECK_FALSE(kiln::read_go_buildinfo("no build information here"));
  std::string cut = binary_with_buildinfo(modinfo);
  CHECK_FALSE(kiln::read_go_buildinfo(cut.substr(0, 48 + 32 + 5)));  // length beyond the data
}

TEST_CASE("a machine-readable copyright file gives the SPDX licence of all its files") {
  std::set<std::string> refs;
  const std::string header =
      "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
      "Upstream-Name: x\n\n";
  CHECK(kiln::declared_license(header + "Files: debian/*\nLicense: GPL-3+\n\nFiles: *\n"
                                        "Copyright: 2020 Someone\nLicense: LGPL-2.1+\n Text.\n",
                               refs) == "LGPL-2.1-or-later");
  CHECK(kiln::declared_license(header + "Files: *\nLicense: GPL-2+ or Artistic\n", refs) ==
        "(GPL-2.0-or-later OR Artistic-1.0-Perl)");
  CHECK(kiln::declared_license(header + "Files: *\nLicense: Expat and BSD-3-clause\n", refs) ==
        "(MIT AND BSD-3-Clause)");
  CHECK(refs.empty());
  CHECK(kiln::declared_license(header + "Files: *\nLicense: public-domain\n", refs) ==
        "LicenseRef-public-domain");
  CHECK(refs == std::set<std::string>{"LicenseRef-public-domain"});
  // Debian's precedence of mixed and/or is not SPDX's: no guess.
  CHECK(kiln::declared_license(header + "Files: *\nLicense: MIT or GPL-2 and ISC\n", refs) ==
        "NOASSERTION");
  CHECK(kiln::declared_license("This package was debianized by ...\nGPL\n", refs) == "NOASSERTION");
  CHECK(kiln::declared_license(header + "Files: src/*\nLicense: MIT\n", refs) == "NOASSERTION");
  CHECK(kiln::license_ref("GPL-2+ with OpenSSL exception") ==
        "LicenseRef-GPL-2--with-OpenSSL-exception");
}

TEST_CASE("dpkg's status database lists the installed packages only") {
  auto packages = kiln::parse_dpkg_status(
      "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.41-12\n"
      "Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nDescription: x\n"
      " continued: not a field\n\n"
      "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
      "Package: libstdc++6\nStatus: install ok installed\nSource: gcc-14 (14.2.0-19)\n"
      "Version: 14.2.0-19\nArchitecture: amd64\n");
  REQUIRE(packages.size() == 2);
  CHECK(packages[0].name == "libc6");
  CHECK(packages[0].maintainer == "GNU Libc Maintainers <debian-glibc@lists.debian.org>");
  CHECK(packages[1].name == "libstdc++6");
  CHECK(packages[1].source == "gcc-14");
}

TEST_CASE(
    "the SBOM lists every installed package with its purl and licence and is "
    "deterministic") {
  kiln::BuildPlan plan;
  plan.recipe.name = "edge";
  plan.recipe.version = "2.1.0";
  plan.source_date_epoch = 1764028800;
  plan.rootfs_key = "rootfs-0123";
  kiln::RootTree tree;
  tree.write_file("/var/lib/dpkg/status",
                  "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\n"
                  "Version: 1:2.0+dfsg-1\nMaintainer: Jane Doe <jane@example.org>\n\n");
  tree.write_file("/usr/share/doc/foo-common/copyright",
                  "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                  "Files: *\nLicense: Apache-2.0\n");
  tree.make_symlink("/usr/share/doc/libfoo1", "foo-common");
  tree.write_file("/usr/bin/kiln-update", "agent", 0755);
  kiln::KubernetesArtifact kubernetes;

  std::string text = kiln::render_sbom(plan, tree, kubernetes);
  CHECK(text == kiln::render_sbom(plan, tree, kubernetes));
  auto doc = nlohmann::json::parse(text);
  CHECK(doc["spdxVersion"] == "SPDX-2.3");
  CHECK(doc["creationInfo"]["created"] == "2025-11-25T00:00:00Z");
  CHECK(doc["documentNamespace"] == "https://spdx.org/spdxdocs/kiln-edge-2.1.0-rootfs-0123");
  CHECK(doc["documentDescribes"] == nlohmann::json::array({"SPDXRef-image"}));
  const auto& packages = doc["packages"];
  REQUIRE(packages.size() == 3);  // the image, the package, the agent
  const auto& foo = packages[1];
  CHECK(foo["name"] == "libfoo1");
  CHECK(foo["versionInfo"] == "1:2.0+dfsg-1");
  CHECK(foo["supplier"] == "Person: Jane Doe (jane@example.org)");
  CHECK(foo["licenseDeclared"] == "Apache-2.0");
  CHECK(foo["externalRefs"][0]["referenceLocator"] ==
        "pkg:deb/debian/libfoo1@1%3A2.0%2Bdfsg-1?arch=amd64&distro=debian-trixie");
  CHECK(packages[2]["checksums"][0]["checksumValue"] == kiln::sha256_hex("agent"));
  int contains = 0;
  for (const auto& r : doc["relationships"])
    if (r["relationshipType"] == "CONTAINS" && r["spdxElementId"] == "SPDXRef-image") ++contains;
  CHECK(contains == 2);
}
