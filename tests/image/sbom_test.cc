// The default image's SPDX SBOM, as a security team would check it: the SPDX project's own
// validator accepts it, it lists every package manifest.json lists with the same version and
// the kubelet with the recipe's version and Go modules, and SHA256SUMS covers it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "support/run_command.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";

}  // namespace

TEST_CASE("the default image's SBOM passes the SPDX validator and lists every package", "[image]") {
  const fs::path sbom = kImage / "worker.spdx.json";
  REQUIRE(fs::exists(sbom));
  auto validated = kiln::test::run_command(std::string(KILN_SPDX_TOOLS) +
                                           "/bin/pyspdxtools --infile " + sbom.string());
  INFO(validated.output);
  CHECK(validated.exit_code == 0);

  json doc = json::parse(kiln::read_file(sbom));
  json manifest = json::parse(kiln::read_file(kImage / "manifest.json"));
  std::map<std::string, const json*> by_name;
  for (const auto& p : doc["packages"]) by_name[p["name"].get<std::string>()] = &p;
  for (const auto& p : manifest["packages"]) {
    std::string name = p["name"];
    INFO("package " << name);
    REQUIRE(by_name.count(name));
    CHECK((*by_name[name])["versionInfo"] == p["version"]);
    CHECK_THAT((*by_name[name])["externalRefs"][0]["referenceLocator"].get<std::string>(),
               Catch::StartsWith("pkg:deb/debian/" + name + "@"));
  }
  // Most of Debian's packages have a machine-readable copyright file with a licence for all
  // their files.
  std::size_t asserted = 0;
  for (const auto& p : manifest["packages"])
    if ((*by_name[p["name"].get<std::string>()])["licenseDeclared"] != "NOASSERTION") ++asserted;
  CHECK(asserted * 2 > manifest["packages"].size());

  REQUIRE(by_name.count("kubelet"));
  const json& kubelet = *by_name["kubelet"];
  CHECK(kubelet["versionInfo"] == manifest["kubernetes"]["version"]);
  for (const auto& a : manifest["artifacts"])
    if (a["name"] == "kubelet") CHECK(kubelet["checksums"][0]["checksumValue"] == a["sha256"]);
  int modules = 0;
  bool toolchain = false;
  for (const auto& r : doc["relationships"]) {
    if (r["spdxElementId"] == kubelet["SPDXID"] && r["relationshipType"] == "DEPENDS_ON") ++modules;
    if (r["relatedSpdxElement"] == kubelet["SPDXID"] && r["relationshipType"] == "BUILD_TOOL_OF")
      toolchain = true;
  }
  CHECK(modules > 50);
  CHECK(toolchain);
  CHECK(by_name.count("kiln-update"));
  CHECK(by_name.count("kiln-firstboot"));

  std::string sums = kiln::read_file(kImage / "SHA256SUMS");
  CHECK_THAT(sums, Catch::Contains(kiln::sha256_file(sbom) + "  worker.spdx.json\n"));
}
