// The recipe's node_name reaches the node: the image records it, the agent uses it unless
// the join config names a policy of its own.
#include <catch2/catch.hpp>

#include "builder/join/join_config.h"
#include "builder/plan/plan.h"
#include "builder/rootfs/node_config.h"
#include "builder/rootfs/root_tree.h"
#include "builder/util/files.h"
#include "firstboot/node_name.h"
#include "support/temp_dir.h"

namespace {

const std::string kNoPolicy = R"(apiVersion: kiln.dev/v1alpha1
kind: JoinConfig
controlPlane:
  endpoint: https://10.0.2.2:6443
  caCertHash: sha256:c2dc616d061b7a08d6c11e554b7a404ccf673c3d87abe07a56495030c90bda48
token: abcdef.0123456789abcdef
expires: 2099-11-25T15:00:00Z
)";

}  // namespace

TEST_CASE("the image records the recipe's node-name policy for the agent") {
  kiln::BuildPlan plan;
  plan.recipe.node_name = kiln::NodeNamePolicy::dmi;
  kiln::RootTree tree;
  tree.write_file("/etc/hostname", "buildhost\n");
  kiln::write_node_config(tree, plan, {.pause_image = "registry.k8s.io/pause:3.10"});
  REQUIRE(tree.contains(kiln::kImageNodeNamePolicyPath));
  CHECK(tree.read_file(kiln::kImageNodeNamePolicyPath) == "dmi\n");
  CHECK(tree.find(kiln::kImageNodeNamePolicyPath)->mode == 0644);
}

TEST_CASE("the agent takes the image's policy unless the join config names one") {
  kiln::test::TempDir dir;
  auto file = dir.path() / "node-name-policy";
  CHECK(kiln::firstboot::image_node_name_policy(file) == kiln::NodeNamePolicy::hostname);
  kiln::write_file_atomic(file, "mac\n");
  CHECK(kiln::firstboot::image_node_name_policy(file) == kiln::NodeNamePolicy::mac);
  kiln::write_file_atomic(file, "sideways\n");
  CHECK(kiln::firstboot::image_node_name_policy(file) == kiln::NodeNamePolicy::hostname);

  kiln::JoinConfig config = kiln::parse_join_config(kNoPolicy, "join.yaml");
  CHECK_FALSE(config.node_name);
  CHECK(std::string(kiln::to_string(config.node_name)) == "image default");
  // Rendering keeps "not set" rather than writing the default in.
  CHECK(kiln::render_join_config(config).find("namePolicy") == std::string::npos);
  CHECK_FALSE(kiln::parse_join_config(kiln::render_join_config(config), "again").node_name);
  kiln::JoinConfig explicit_policy =
      kiln::parse_join_config(kNoPolicy + "node:\n  namePolicy: cloud\n", "join.yaml");
  CHECK(explicit_policy.node_name == kiln::NodeNamePolicy::cloud);

  kiln::write_file_atomic(file, "mac\n");
  CHECK(kiln::firstboot::effective_node_name_policy(config.node_name, file) ==
        kiln::NodeNamePolicy::mac);
  CHECK(kiln::firstboot::effective_node_name_policy(explicit_policy.node_name, file) ==
        kiln::NodeNamePolicy::cloud);
}
