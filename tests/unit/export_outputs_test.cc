#include <catch2/catch.hpp>

#include "builder/export/exports.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

kiln::BuildPlan plan_with_outputs(std::vector<std::string> outputs) {
  kiln::BuildPlan plan;
  plan.recipe.name = "w";
  plan.recipe.outputs = std::move(outputs);
  return plan;
}

}  // namespace

TEST_CASE("the export step writes the rootfs, manifest.json, the SBOM and SHA256SUMS over them") {
  kiln::test::TempDir temp;
  kiln::write_file_atomic(temp.path() / "rootfs.tar", "a tarball");
  kiln::write_file_atomic(temp.path() / "manifest.json", "{}\n");
  kiln::write_file_atomic(temp.path() / "sbom.spdx.json", "{\"spdxVersion\": \"SPDX-2.3\"}\n");
  kiln::RootfsArtifact rootfs{temp.path() / "rootfs.tar", temp.path() / "manifest.json",
                              kiln::sha256_hex("a tarball"), temp.path() / "sbom.spdx.json"};
  fs::path out = temp.path() / "out";
  fs::create_directories(out);
  kiln::BuildPlan plan = plan_with_outputs({"rootfs"});
  plan.recipe.name = "edge";
  auto files = kiln::export_outputs(plan, rootfs, std::nullopt, std::nullopt, out);
  REQUIRE(files.size() == 3);
  CHECK(files[0].name == "rootfs.tar");
  CHECK(files[1].name == "manifest.json");
  CHECK(files[2].name == "edge.spdx.json");
  CHECK(kiln::read_file(out / "rootfs.tar") == "a tarball");
  CHECK(kiln::read_file(out / "edge.spdx.json") == "{\"spdxVersion\": \"SPDX-2.3\"}\n");
  CHECK(kiln::read_file(out / "SHA256SUMS") ==
        kiln::sha256_hex("a tarball") + "  rootfs.tar\n" + kiln::sha256_hex("{}\n") +
            "  manifest.json\n" + kiln::sha256_hex("{\"spdxVersion\": \"SPDX-2.3\"}\n") +
            "  edge.spdx.json\n");
  CHECK(std::distance(fs::directory_iterator(out), fs::directory_iterator()) == 4);
}

TEST_CASE("the export step refuses a disk format when the build made no disk") {
  kiln::test::TempDir temp;
  kiln::RootfsArtifact rootfs{temp.path() / "rootfs.tar", temp.path() / "manifest.json", ""};
  CHECK_THROWS_WITH(kiln::export_outputs(plan_with_outputs({"qcow2"}), rootfs, std::nullopt,
                                         std::nullopt, temp.path()),
                    "the qcow2 output needs the disk stage's image");
}
