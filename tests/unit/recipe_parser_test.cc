#include "builder/recipe/recipe_parser.h"

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>

#include "builder/rootfs/foreign_arch.h"
#include "builder/util/files.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace {

const fs::path kRecipes = fs::path(KILN_TEST_DATA) / "recipes";

kiln::test::CommandResult run_kiln(const std::string& args) {
  return kiln::test::run_command(std::string(KILN_BINARY) + " " + args);
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

/// Every error a recipe file or text raises, rendered as `kiln validate` prints them.
template <typename Parse>
std::string recipe_errors(Parse parse) {
  try {
    parse();
  } catch (const kiln::RecipeErrors& e) {
    std::string out;
    for (const auto& error : e.errors()) out += error.render() + "\n";
    return out;
  }
  return "";
}

std::string file_errors(const fs::path& file) {
  return recipe_errors([&] { kiln::load_recipe(file); });
}

std::string text_errors(const std::string& text) {
  return recipe_errors([&] { kiln::parse_recipe(text, "inline.yaml"); });
}

}  // namespace

TEST_CASE("each broken recipe is reported at its exact line and column") {
  struct Case {
    const char* file;
    const char* expected;  // the first line kiln prints, after "<dir>/bad/"
  };
  const std::string dir = (kRecipes / "bad").string() + "/";
  auto [file, expected] = GENERATE(values<Case>({
      {"typo_key.yaml",
       "typo_key.yaml:2:1: error: unknown key 'pakages' (did you mean 'packages'?)"},
      {"wrong_type.yaml",
       "wrong_type.yaml:2:11: error: expected a list of package names, got a string"},
      {"bad_version.yaml",
       "bad_version.yaml:3:12: error: bad version '1.34': expected MAJOR.MINOR.PATCH like v1.34.4"},
      {"unsupported_version.yaml",
       "unsupported_version.yaml:3:12: error: unsupported Kubernetes version v1.20.0: kiln "
       "supports v1.30 and newer"},
      {"missing_overlay.yaml",
       "missing_overlay.yaml:3:5: error: overlay directory '{data}/does-not-exist' does not exist"},
      {"cycle_a.yaml",
       "cycle_b.yaml:2:10: error: include cycle: cycle_a.yaml -> cycle_b.yaml -> cycle_a.yaml"},
      {"unknown_arch.yaml",
       "unknown_arch.yaml:3:9: error: unknown architecture 'amd46' (did you mean 'amd64'?); "
       "expected one of: amd64, arm64"},
      {"unknown_suite.yaml",
       "unknown_suite.yaml:3:10: error: unknown suite 'trixy' (did you mean 'trixie'?); expected "
       "one of: trixie, bookworm"},
      {"nested_typo.yaml",
       "nested_typo.yaml:3:3: error: unknown key 'verison' in 'kubernetes' (did you mean "
       "'version'?)"},
      {"bad_mode.yaml", "bad_mode.yaml:5:11: error: expected an octal mode like 0644, got '0999'"},
      {"relative_file.yaml",
       "relative_file.yaml:3:11: error: file path 'etc/motd' must be absolute and must not contain "
       "'..'"},
      {"unknown_output.yaml",
       "unknown_output.yaml:2:16: error: unknown output format 'qcow3' (did you mean 'qcow2'?); "
       "expected one of: "
       "rootfs, raw, raw.zst, qcow2, vhd, vmdk, ova, gce, ami, pxe, update"},
      {"bad_yaml.yaml", "bad_yaml.yaml:3:1: error: invalid YAML: end of sequence flow not found"},
      {"missing_include.yaml",
       "missing_include.yaml:2:10: error: included recipe '{dir}nowhere.yaml' does not exist"},
      {"old_containerd.yaml",
       "old_containerd.yaml:3:10: error: containerd 1.6.20 (Debian bookworm) is too old for "
       "kubelet v1.34.12, which "
       "needs containerd 1.7.0 or newer; use base.suite: trixie, or containerd.from: release with "
       "a newer version"},
      {"bad_sysctl.yaml",
       "bad_sysctl.yaml:3:3: error: bad sysctl key 'not a key': expected dotted form like "
       "net.ipv4.ip_forward"},
      {"duplicate_user.yaml", "duplicate_user.yaml:4:5: error: user 'ops' is defined twice"},
      {"base_not_map.yaml", "base_not_map.yaml:2:7: error: expected a map, got a string"},
      {"bad_name.yaml",
       "bad_name.yaml:1:7: error: bad name 'Bad_Name': use lowercase letters, digits and '-'"},
      {"missing_name.yaml", "missing_name.yaml:1:1: error: recipe needs a 'name'"},
      {"bad_sector_size.yaml",
       "bad_sector_size.yaml:3:16: error: unknown sector_size '1024'; expected one of: 512, "
       "4096"},
      {"sector_size_cloud.yaml",
       "sector_size_cloud.yaml:3:16: error: disk.sector_size 4096 is for 4Kn disks flashed from "
       "raw, raw.zst or qcow2; output 'vhd' is for a platform whose disks have 512-byte "
       "sectors"},
      {"arm64_ova.yaml",
       "arm64_ova.yaml:3:9: error: base.arch arm64: output 'ova' describes an x86-64 virtual "
       "machine; write vmdk (or raw, qcow2) for arm64 hosts"},
      {"board_rpi5.yaml",
       "board_rpi5.yaml:4:8: error: board 'rpi5' is not supported: Debian trixie's kernel (6.12) "
       "has no driver for the Pi 5's SD card and no RP1 (its USB and Ethernet) in its device "
       "tree, so the root would never be found; use rpi4, or board: generic for arm64 boards "
       "with UEFI firmware"},
      {"board_amd64.yaml",
       "board_amd64.yaml:2:8: error: board rpi4 boots arm64 images: set base.arch: arm64"},
      {"board_cloud_output.yaml",
       "board_cloud_output.yaml:5:3: error: board rpi4: output 'ami' is not for a board; a Pi "
       "boots the raw image (raw, raw.zst for bmaptool copy)"},
      {"board_updates.yaml",
       "board_updates.yaml:6:8: error: board rpi4: nodes cannot take updates yet: the Pi "
       "firmware counts no boot tries, so a failed version could not be rolled back; flash new "
       "images instead, and leave updates.url out"},
      {"board_firmware_half.yaml",
       "board_firmware_half.yaml:6:17: error: set both board.firmware_url and "
       "board.firmware_sha256, or neither"},
      {"board_typo.yaml",
       "board_typo.yaml:5:3: error: unknown key 'modle' in 'board' (did you mean 'model'?)"},
  }));
  std::string want = dir + expected;
  for (auto [token, value] : {std::pair{"{data}", kRecipes.string()}, std::pair{"{dir}", dir}}) {
    if (auto at = want.find(token); at != std::string::npos)
      want.replace(at, std::string(token).size(), value);
  }
  CHECK(first_line(file_errors(dir + file)) == want);
}

TEST_CASE("kiln validate exits 3 and shows the recipe line with a caret under the column") {
  kiln::test::CommandResult result =
      run_kiln("validate " + (kRecipes / "bad/typo_key.yaml").string());
  CHECK(result.exit_code == 3);
  CHECK(result.output == (kRecipes / "bad/typo_key.yaml").string() +
                             ":2:1: error: unknown key 'pakages' (did you mean 'packages'?)\n"
                             "  pakages: [htop]\n"
                             "  ^\n");
}

TEST_CASE("a valid recipe with an include merges both files") {
  kiln::Recipe recipe = kiln::load_recipe(kRecipes / "good.yaml");
  CHECK(recipe.name == "good-worker");                                 // the including file wins
  CHECK(recipe.packages == std::vector<std::string>{"curl", "htop"});  // lists extend
  CHECK(recipe.kubernetes.from == kiln::KubernetesSource::source);     // from the include
  CHECK(recipe.kernel.cmdline == std::vector<std::string>{"console=ttyS0"});
  REQUIRE(recipe.files.size() == 1);
  CHECK(recipe.files[0].mode == 0600);
  CHECK(recipe.files[0].mark.line == 8);
  REQUIRE(recipe.users.size() == 1);
  CHECK(recipe.users[0].groups == std::vector<std::string>{"sudo"});
  CHECK(recipe.sysctl.at("vm.max_map_count") == "262144");
  CHECK(recipe.outputs == std::vector<std::string>{"raw", "qcow2"});
  CHECK(recipe.disk.size_bytes == 4ull << 30);
  CHECK(recipe.overlays.at(0).directory == fs::canonical(kRecipes / "overlay"));
  CHECK(recipe.sources.size() == 2);
  CHECK(run_kiln("validate " + (kRecipes / "good.yaml").string()).exit_code == 0);
}

TEST_CASE("every problem in a recipe is reported, not just the first") {
  try {
    kiln::load_recipe(kRecipes / "bad/relative_file.yaml");
    FAIL("expected errors");
  } catch (const kiln::RecipeErrors& e) {
    CHECK(e.errors().size() == 1);  // a bad path is one problem, not also a missing one
  }
  kiln::test::CommandResult result =
      run_kiln("validate " + (kRecipes / "bad/unknown_output.yaml").string() + " extra");
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.output, Catch::Contains("expected exactly one RECIPE argument"));
}

TEST_CASE("the default recipe is valid") {
  kiln::test::CommandResult result =
      run_kiln("validate " + (fs::path(KILN_TEST_DATA) / "../../recipes/worker.yaml").string());
  INFO(result.output);
  CHECK(result.exit_code == 0);
}

TEST_CASE("recipe text is parsed in-process and its errors carry the name it was given") {
  CHECK(text_errors("name: w\npakages: [htop]\n") ==
        "inline.yaml:2:1: error: unknown key 'pakages' (did you mean 'packages'?)\n"
        "  pakages: [htop]\n"
        "  ^\n");
  CHECK(text_errors("") == "inline.yaml:1:1: error: recipe is empty\n");
  CHECK(text_errors("name: [w\n") ==
        "inline.yaml:2:1: error: invalid YAML: end of sequence flow not found\n");
  kiln::Recipe recipe = kiln::parse_recipe("name: w\npackages: [htop]\n", "inline.yaml");
  CHECK(recipe.name == "w");
  CHECK(recipe.packages == std::vector<std::string>{"htop"});
  CHECK(recipe.outputs == std::vector<std::string>{"rootfs"});
  CHECK(recipe.sources.empty());
}

TEST_CASE("recipe text resolves includes and overlays beside its source name") {
  kiln::Recipe recipe = kiln::parse_recipe("name: w\ninclude: common.yaml\noverlays: [overlay]\n",
                                           kRecipes / "inline.yaml");
  CHECK(recipe.kubernetes.from == kiln::KubernetesSource::source);  // from the include
  CHECK(recipe.packages == std::vector<std::string>{"curl"});
  CHECK(recipe.overlays.at(0).directory == fs::canonical(kRecipes / "overlay"));
  CHECK(recipe.sources == std::vector<fs::path>{fs::canonical(kRecipes / "common.yaml")});
}

TEST_CASE("every recipe key problem in a text is reported together") {
  CHECK(text_errors("name: w\nbase: {suite: trixy}\noutputs: [qcow3]\n") ==
        "inline.yaml:2:15: error: unknown suite 'trixy' (did you mean 'trixie'?); expected one "
        "of: trixie, bookworm\n"
        "  base: {suite: trixy}\n"
        "                ^\n"
        "inline.yaml:3:11: error: unknown output format 'qcow3' (did you mean 'qcow2'?); expected "
        "one of: rootfs, raw, raw.zst, qcow2, vhd, vmdk, ova, gce, ami, pxe, update\n"
        "  outputs: [qcow3]\n"
        "            ^\n");
}

TEST_CASE("recipe sizes and names of any length are checked without regex or overflow") {
  // A 25-digit size once escaped as std::out_of_range, a 60,000-digit one overflowed the stack
  // in std::regex, and 99999999999T wrapped around silently.
  CHECK(text_errors("name: w\ndisk: {size: 9999999999999999999999999}\n") ==
        "inline.yaml:2:14: error: bad size '9999999999999999999999999': expected a number with "
        "an optional unit, like 4G or 512M\n"
        "  disk: {size: 9999999999999999999999999}\n"
        "               ^\n");
  CHECK_THAT(text_errors("name: w\ndisk: {size: " + std::string(60000, '7') + "}\n"),
             Catch::Contains("bad size '777"));
  CHECK_THAT(text_errors("name: w\ndisk: {size: 99999999999T}\n"),
             Catch::Contains("error: size '99999999999T' is too large"));
  CHECK_THAT(text_errors("name: w\npackages: [" + std::string(60000, 'a') + "]\n"),
             Catch::Contains("bad Debian package name"));
  CHECK_THAT(text_errors("name: w\nsysctl: {" + std::string(1000, 'a') + ".b: 1}\n"),
             Catch::Contains("bad sysctl key"));
  CHECK_THAT(text_errors("name: " + std::string(60000, 'a') + "\n"), Catch::Contains("name"));
  kiln::Recipe recipe = kiln::parse_recipe(
      "name: w\ndisk: {size: 6GiB}\nsysctl: {net.ipv4.ip_forward: 1, kernel/pid_max: 9}\n",
      "inline.yaml");
  CHECK(recipe.disk.size_bytes == 6ull << 30);
  CHECK(recipe.sysctl.count("kernel/pid_max") == 1);
}

TEST_CASE("an arm64 build on a host without qemu-user says what to install and enable") {
  if (kiln::host_arch() == kiln::Arch::arm64) {
    WARN("not checked: this host runs arm64 programs natively");
    return;
  }
  kiln::test::TempDir binfmt;
  CHECK_THROWS_WITH(kiln::require_foreign_arch_support(kiln::Arch::arm64, binfmt.path()),
                    Catch::Contains("binfmt_misc is not mounted: run `mount -t binfmt_misc "
                                    "binfmt_misc " +
                                    binfmt.path().string() + "`") &&
                        Catch::Contains("apt-get install qemu-user-static binfmt-support"));
  kiln::write_file_atomic(binfmt.path() / "register", "");
  CHECK_THROWS_WITH(kiln::require_foreign_arch_support(kiln::Arch::arm64, binfmt.path()),
                    Catch::Contains("no qemu-aarch64 handler is registered") &&
                        Catch::Contains("update-binfmts --enable qemu-aarch64"));
  kiln::write_file_atomic(binfmt.path() / "qemu-aarch64", "disabled\ninterpreter /x\n");
  CHECK_THROWS_WITH(kiln::require_foreign_arch_support(kiln::Arch::arm64, binfmt.path()),
                    Catch::Contains("no qemu-aarch64 handler is enabled"));
  // The host's own architecture needs nothing.
  CHECK_NOTHROW(kiln::require_foreign_arch_support(kiln::Arch::amd64, binfmt.path()));
}

TEST_CASE("a module path that would add a line to dpkg's configuration is refused") {
  // Each omitted module path becomes a path-exclude line in the bootstrap's dpkg configuration.
  std::string errors =
      text_errors("name: w\nkernel:\n  omit_modules: [sound, \"sound\\nforce-overwrite\"]\n");
  CHECK_THAT(errors, Catch::Contains("inline.yaml:3:17: error: bad module path"));
  CHECK(text_errors("name: w\nkernel:\n  omit_modules: [sound, drivers/gpu]\n").empty());
}

TEST_CASE("disk.root_compression picks how the EROFS root stores data, lz4 unless a recipe says") {
  CHECK(kiln::parse_recipe("name: w\n", "inline.yaml").disk.root_compression ==
        kiln::RootCompression::lz4);
  CHECK(kiln::parse_recipe("name: w\ndisk: {root_compression: none}\n", "inline.yaml")
            .disk.root_compression == kiln::RootCompression::none);
  CHECK(kiln::parse_recipe("name: w\ndisk: {root_compression: lz4hc}\n", "inline.yaml")
            .disk.root_compression == kiln::RootCompression::lz4hc);
  CHECK(first_line(text_errors("name: w\ndisk: {root_compression: zstd}\n")) ==
        "inline.yaml:2:26: error: unknown root compression 'zstd'; expected one of: none, lz4, "
        "lz4hc");
  CHECK(first_line(text_errors("name: w\ndisk: {root_compression: lz4h}\n")) ==
        "inline.yaml:2:26: error: unknown root compression 'lz4h' (did you mean 'lz4'?); "
        "expected one of: none, lz4, lz4hc");
  // The default recipe ships as raw.zst and qcow2 and stores its root uncompressed; the Pi
  // recipe, which includes it through worker-arm64.yaml, keeps lz4 for SD cards.
  const fs::path recipes = fs::path(KILN_TEST_DATA) / "../../recipes";
  CHECK(kiln::load_recipe(recipes / "worker.yaml").disk.root_compression ==
        kiln::RootCompression::none);
  CHECK(kiln::load_recipe(recipes / "worker-rpi4.yaml").disk.root_compression ==
        kiln::RootCompression::lz4);
}
