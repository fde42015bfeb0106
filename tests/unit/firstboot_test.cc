// The first-boot agent's pure parts: finding a join config in cloud user data and naming
// the node under each policy.
#include <catch2/catch.hpp>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "firstboot/node_name.h"
#include "firstboot/user_data.h"
#include "support/temp_dir.h"

using kiln::firstboot::join_config_from_user_data;
using kiln::firstboot::node_name;
using kiln::firstboot::NodeFacts;

TEST_CASE("a kiln join config is found in NoCloud or cloud user data") {
  std::string config = "apiVersion: kiln.dev/v1alpha1\nkind: JoinConfig\ntoken: abc\n";
  CHECK(join_config_from_user_data(config) == config);

  auto nested = join_config_from_user_data(
      "#cloud-config\npackages: [htop]\nkiln_join:\n  apiVersion: kiln.dev/v1alpha1\n"
      "  kind: JoinConfig\n  token: abc\n");
  REQUIRE(nested);
  CHECK_THAT(*nested, Catch::Contains("apiVersion: kiln.dev/v1alpha1"));
  CHECK_THAT(*nested, Catch::Contains("token: abc"));

  CHECK_FALSE(join_config_from_user_data("#!/bin/sh\necho hello\n"));
  CHECK_FALSE(join_config_from_user_data("#cloud-config\nruncmd: [reboot]\n"));
  CHECK_FALSE(join_config_from_user_data("apiVersion: v1\nkind: Pod\n"));
}

TEST_CASE("node names follow the join config's policy and are valid DNS names") {
  kiln::test::TempDir sys;
  kiln::write_file_atomic(sys.path() / "net/lo/address", "00:00:00:00:00:00\n");
  kiln::write_file_atomic(sys.path() / "net/ens3/address", "52:54:00:12:34:56\n");
  kiln::write_file_atomic(sys.path() / "dmi/product_uuid",
                          "4C4C4544-0042-3010-8057-B7C04F4B3232\n");
  NodeFacts facts;
  facts.sys_class_net = sys.path() / "net";
  facts.dmi_product_uuid = sys.path() / "dmi/product_uuid";

  facts.hostname = "Edge_Node.example";
  CHECK(node_name(kiln::NodeNamePolicy::hostname, facts) == "edge-node.example");
  CHECK(node_name(kiln::NodeNamePolicy::mac, facts) == "node-525400123456");
  CHECK(node_name(kiln::NodeNamePolicy::dmi, facts) == "4c4c4544-0042-3010-8057-b7c04f4b3232");
  // An unnamed machine (no DHCP hostname) falls back to its MAC rather than "localhost".
  facts.hostname = "localhost";
  CHECK(node_name(kiln::NodeNamePolicy::hostname, facts) == "node-525400123456");
  facts.cloud_hostname = "ip-10-0-1-17.ec2.internal";
  CHECK(node_name(kiln::NodeNamePolicy::cloud, facts) == "ip-10-0-1-17.ec2.internal");

  facts.dmi_product_uuid = sys.path() / "missing";
  CHECK_THROWS_WITH(node_name(kiln::NodeNamePolicy::dmi, facts),
                    Catch::Contains("no SMBIOS product UUID"));
}
