#include "builder/join/join_config.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "builder/recipe/recipe_parser.h"
#include "builder/util/files.h"
#include "support/temp_dir.h"

namespace {

const std::string kValid = R"(apiVersion: kiln.dev/v1alpha1
kind: JoinConfig
controlPlane:
  name: tcp-edge
  endpoint: https://10.0.2.2:6443
  caCertHash: sha256:c2dc616d061b7a08d6c11e554b7a404ccf673c3d87abe07a56495030c90bda48
token: abcdef.0123456789abcdef
expires: 2026-11-25T15:00:00Z
node:
  namePolicy: mac
  labels:
    pool: edge
  taints:
    - key: dedicated
      value: edge
      effect: NoSchedule
  kubeletExtraArgs:
    max-pods: "50"
)";

std::string first_error(const std::string& text) {
  try {
    kiln::parse_join_config(text, "join.yaml");
  } catch (const kiln::RecipeErrors& e) {
    std::string rendered = e.errors().front().render();
    return rendered.substr(0, rendered.find('\n'));
  }
  return "no error";
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

}  // namespace

TEST_CASE("a join config parses into the shared model and renders back identically") {
  kiln::JoinConfig config = kiln::parse_join_config(kValid, "join.yaml");
  CHECK(config.control_plane_name == "tcp-edge");
  CHECK(config.endpoint == "https://10.0.2.2:6443");
  CHECK(config.token.id == "abcdef");
  CHECK(config.expires == 1795618800);
  CHECK(config.node_name == kiln::NodeNamePolicy::mac);
  CHECK(config.labels.at("pool") == "edge");
  REQUIRE(config.taints.size() == 1);
  CHECK(config.taints[0].effect == "NoSchedule");
  CHECK(config.kubelet_extra_args.at("max-pods") == "50");
  kiln::JoinConfig again = kiln::parse_join_config(kiln::render_join_config(config), "rendered");
  CHECK(kiln::render_join_config(again) == kiln::render_join_config(config));
}

TEST_CASE("join config files are written mode 0600") {
  kiln::test::TempDir dir;
  kiln::write_join_config(dir.path() / "join.yaml", kiln::parse_join_config(kValid, "join.yaml"));
  struct stat st {};
  REQUIRE(::stat((dir.path() / "join.yaml").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(kiln::load_join_config(dir.path() / "join.yaml").token.secret == "0123456789abcdef");
}

TEST_CASE(
    "malformed join configs are refused at their line and column, without echoing the token") {
  CHECK(
      first_error(replace(kValid, "token: abcdef.0123456789abcdef", "token: abcdef.short")) ==
      "join.yaml:7:8: error: token must be a bootstrap token of the form [a-z0-9]{6}.[a-z0-9]{16}");
  CHECK(first_error(replace(kValid, "sha256:c2dc", "sha1:c2dc")) ==
        "join.yaml:6:15: error: caCertHash must be 'sha256:' followed by 64 hex digits, as kubeadm "
        "prints it");
  CHECK(first_error(replace(kValid, "https://10.0.2.2:6443", "http://10.0.2.2:6443")) ==
        "join.yaml:5:13: error: endpoint 'http://10.0.2.2:6443' must be an https:// URL of the API "
        "server");
  CHECK(first_error(replace(kValid, "2026-11-25T15:00:00Z", "tomorrow")) ==
        "join.yaml:8:10: error: expires 'tomorrow' must be a UTC time like 2026-11-25T15:00:00Z");
  CHECK(first_error(replace(kValid, "  labels:", "  lables:")) ==
        "join.yaml:11:3: error: unknown key 'lables' in 'node' (did you mean 'labels'?)");
  CHECK(
      first_error(replace(kValid, "effect: NoSchedule", "effect: Never")) ==
      "join.yaml:14:7: error: a taint's effect must be NoSchedule, PreferNoSchedule or NoExecute");
  CHECK(first_error(replace(kValid, "token: abcdef.0123456789abcdef\n", "")) ==
        "join.yaml:1:1: error: missing 'token'");
  CHECK(first_error("[not, a, map]") == "join.yaml:1:1: error: a join config must be a YAML map");
}

TEST_CASE("UTC times round-trip") {
  CHECK(kiln::format_utc(1795618800) == "2026-11-25T15:00:00Z");
  CHECK(kiln::parse_utc("2026-11-25T15:00:00Z") == 1795618800);
  CHECK_FALSE(kiln::parse_utc("2026-13-25T15:00:00Z"));
}
