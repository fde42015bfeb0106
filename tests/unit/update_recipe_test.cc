// The recipe's version and updates: section, and what they put into the image.
#include <catch2/catch.hpp>

#include "builder/recipe/recipe_parser.h"
#include "builder/rootfs/update_config.h"
#include "builder/update/release_signature.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

std::string errors_of(const std::string& text, const fs::path& source) {
  try {
    parse_recipe(text, source);
  } catch (const RecipeErrors& e) {
    std::string out;
    for (const auto& error : e.errors()) out += error.render();
    return out;
  }
  return "";
}

}  // namespace

TEST_CASE("a recipe's version and updates section reach update.conf", "[update]") {
  test::TempDir dir;
  auto made = test::run_command("openssl genpkey -algorithm ed25519 -out " +
                                (dir.path() / "release.key").string());
  REQUIRE(made.exit_code == 0);
  write_file_atomic(dir.path() / "release.pub", public_key_of(dir.path() / "release.key"));
  Recipe recipe = parse_recipe(
      "name: edge\nversion: 2.1.0\nupdates:\n  url: http://updates.example/edge/\n"
      "  trusted_keys: [release.pub]\n  reboot: manual\n  tries: 2\n  check_interval: 30\n",
      dir.path() / "edge.yaml");
  CHECK(recipe.version == "2.1.0");
  REQUIRE(recipe.updates.trusted_keys.size() == 1);
  CHECK(recipe.updates.trusted_keys[0].pem == read_file(dir.path() / "release.pub"));
  CHECK(recipe.updates.check_interval_minutes == 30);
  CHECK(render_update_config(recipe) ==
        "# Written by kiln from the recipe's `updates:`; read by kiln-update.\n"
        "name=edge\narch=amd64\nversion=2.1.0\nurl=http://updates.example/edge/\n"
        "reboot=manual\ntries=2\nhealth_timeout=900\n");
}

TEST_CASE("bad version and updates settings are reported at their line and column", "[update]") {
  test::TempDir dir;
  auto source = dir.path() / "r.yaml";
  CHECK_THAT(errors_of("name: w\nversion: ../1\n", source),
             Catch::Contains("r.yaml:2:10: error: bad version '../1'"));
  CHECK_THAT(errors_of("name: w\nupdates: {url: 'ftp://x/'}\n", source),
             Catch::Contains("r.yaml:2:16: error: updates.url 'ftp://x/' must be an http:// URL"));
  CHECK_THAT(errors_of("name: w\nupdates: {reboot: later}\n", source),
             Catch::Contains("r.yaml:2:19: error: unknown reboot policy 'later'"));
  CHECK_THAT(errors_of("name: w\nupdates: {tries: 0}\n", source),
             Catch::Contains("updates.tries must be between 1 and 9"));
  CHECK_THAT(errors_of("name: w\nupdates: {trusted_keys: [missing.pub]}\n", source),
             Catch::Contains("r.yaml:2:26: error: trusted key"));
  write_file_atomic(dir.path() / "rsa.pem", "-----BEGIN PUBLIC KEY-----\nnope\n");
  CHECK_THAT(errors_of("name: w\nupdates: {trusted_keys: [rsa.pem]}\n", source),
             Catch::Contains("not a PEM public key"));
  CHECK_THAT(errors_of("name: w\nupdates: {url: 'http://u/'}\n", source),
             Catch::Contains("updates.trusted_keys is empty"));
  CHECK_THAT(errors_of("name: w\nupdates: {tris: 2}\n", source),
             Catch::Contains("unknown key 'tris' in 'updates' (did you mean 'tries'?)"));
}

TEST_CASE("kiln build refuses the update output without a signing key before any work",
          "[update]") {
  test::TempDir dir;
  write_file_atomic(dir.path() / "r.yaml",
                    "name: w\nkubernetes: {from: source}\noutputs: [raw, update]\n");
  auto unsigned_build =
      test::run_command(std::string(KILN_BINARY) + " build " + (dir.path() / "r.yaml").string() +
                        " -o " + (dir.path() / "out").string());
  CHECK(unsigned_build.exit_code == 2);
  CHECK_THAT(unsigned_build.output, Catch::Contains("the update output is signed: pass "
                                                    "--signing-key KEY"));
  write_file_atomic(dir.path() / "rsa.key", "not a key");
  auto bad_key = test::run_command(
      std::string(KILN_BINARY) + " build " + (dir.path() / "r.yaml").string() + " --signing-key " +
      (dir.path() / "rsa.key").string() + " -o " + (dir.path() / "out").string());
  CHECK(bad_key.exit_code != 0);
  CHECK_THAT(bad_key.output, Catch::Contains("is not an unencrypted PEM private key") &&
                                 !Catch::Contains("not a key"));
  CHECK_FALSE(fs::exists(dir.path() / "out" / "update"));
}
