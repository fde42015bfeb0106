// Reproducibility across builds that the stage cache would otherwise hide: exports made again
// from the same disk, and a root composed afresh beside the one the fixture's build cached.
// The fixture's outputs serve as the first build of each pair.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "builder/fetch/cache.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

const fs::path kImage = fs::path(KILN_TEST_IMAGES) / "worker";
const fs::path kSource = KILN_SOURCE_DIR;
const std::string kRecipe = (kSource / "recipes/worker.yaml").string();

kiln::test::CommandResult kiln_build(const std::string& args) {
  return kiln::test::run_command(std::string(KILN_BINARY) + " build " + args);
}

std::string capture(const std::vector<std::string>& argv) {
  return kiln::run(argv, {.capture_stdout = true}).stdout_text;
}

/// The stage directory a build reported as cached: "    base: cached (base-0123...)".
std::string cached_stage(const std::string& output, const std::string& stage) {
  std::string marker = "    " + stage + ": cached (";
  std::size_t at = output.find(marker);
  if (at == std::string::npos) return {};
  at += marker.size();
  return output.substr(at, output.find(')', at) - at);
}

}  // namespace

TEST_CASE("exporting the same disk again gives a byte-identical VMDK and OVA", "[image]") {
  kiln::test::TempDir out;
  kiln::test::CommandResult run =
      kiln_build(kRecipe + " --outputs vmdk,ova -o " + out.path().string());
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  // The fixture's disk, so any difference is the export's own.
  CHECK_THAT(run.output, Catch::Contains("    disk: cached"));
  CHECK(kiln::sha256_file(out.path() / "worker.vmdk") == kiln::sha256_file(kImage / "worker.vmdk"));
  CHECK(kiln::sha256_file(out.path() / "worker.ova") == kiln::sha256_file(kImage / "worker.ova"));

  // The descriptor names the file it is in, not a temporary, and qemu-img still reads it.
  std::string descriptor = capture({"dd", "if=" + (out.path() / "worker.vmdk").string(), "bs=512",
                                    "skip=1", "count=2", "status=none"});
  CHECK_THAT(descriptor, Catch::Contains(" SPARSE \"worker.vmdk\"\n"));
  CHECK_THAT(descriptor, Catch::Contains("\nparentCID=ffffffff\n"));
  kiln::run({"qemu-img", "check", "-q", (out.path() / "worker.vmdk").string()});
}

TEST_CASE("a cached root and one composed afresh are identical whatever outputs filled the cache",
          "[image]") {
  kiln::test::TempDir work;
  // The shared cache's rootfs stage was filled by a build that asked for disk formats (the
  // fixture's, or `make image`'s recipe outputs); this build asks for the root alone.
  kiln::test::CommandResult cached =
      kiln_build(kRecipe + " --outputs rootfs -o " + (work.path() / "cached").string());
  INFO(cached.output);
  REQUIRE(cached.exit_code == 0);
  REQUIRE_THAT(cached.output, Catch::Contains("    rootfs: cached"));
  std::string base = cached_stage(cached.output, "base");
  std::string kubernetes = cached_stage(cached.output, "kubernetes");
  REQUIRE(!base.empty());
  REQUIRE(!kubernetes.empty());

  // --rebuild would compose the root again, but would also re-run the Debian bootstrap and
  // the Kubernetes builds, which the two-full-builds test already covers: a cache holding
  // only those two stages (hard links into the shared one) makes the rootfs stage run anew.
  fs::path cache = work.path() / "cache";
  fs::create_directories(cache / "stages");
  fs::path shared = kiln::default_cache_dir();
  for (const std::string& stage : {base, kubernetes}) {
    std::error_code linked;
    fs::copy(shared / "stages" / stage, cache / "stages" / stage,
             fs::copy_options::recursive | fs::copy_options::create_hard_links, linked);
    if (linked) {  // another file system: copy instead
      fs::remove_all(cache / "stages" / stage);
      fs::copy(shared / "stages" / stage, cache / "stages" / stage, fs::copy_options::recursive);
    }
  }
  kiln::test::CommandResult fresh =
      kiln_build(kRecipe + " --outputs rootfs --cache " + cache.string() + " -o " +
                 (work.path() / "fresh").string());
  INFO(fresh.output);
  REQUIRE(fresh.exit_code == 0);
  CHECK_THAT(fresh.output, Catch::Contains("    base: cached"));
  CHECK_THAT(fresh.output, Catch::Contains("    kubernetes: cached"));
  CHECK_THAT(fresh.output, !Catch::Contains("    rootfs: cached"));

  CHECK(kiln::sha256_file(work.path() / "fresh/rootfs.tar") ==
        kiln::sha256_file(work.path() / "cached/rootfs.tar"));
  CHECK(kiln::sha256_file(work.path() / "cached/rootfs.tar") ==
        kiln::sha256_file(kImage / "rootfs.tar"));
  CHECK(kiln::sha256_file(work.path() / "fresh/worker.spdx.json") ==
        kiln::sha256_file(work.path() / "cached/worker.spdx.json"));
  std::string manifest = capture(
      {"tar", "-xOf", (work.path() / "fresh/rootfs.tar").string(), "./usr/lib/kiln/manifest.json"});
  CHECK_THAT(manifest, !Catch::Contains("\"outputs\""));
}
