// kiln plan --json: the plan of the default recipe as one JSON document with its documented
// fields, resolved without the network.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "builder/util/files.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

TEST_CASE("kiln plan --json prints the packages, sources and stage keys of the default recipe") {
  kiln::test::TempDir dir;
  auto run =
      kiln::test::run_stdout("KILN_CACHE=" + dir.path().string() + " " + KILN_BINARY +
                             " plan --offline --json " + KILN_SOURCE_DIR + "/recipes/worker.yaml");
  REQUIRE(run.exit_code == 0);
  kiln::write_file_atomic(dir.path() / "plan.json", run.output);
  CHECK(kiln::test::run_command("python3 -m json.tool " + (dir.path() / "plan.json").string())
            .exit_code == 0);
  auto doc = nlohmann::json::parse(run.output);
  CHECK(doc["schemaVersion"] == 1);
  CHECK(doc["name"] == "worker");
  CHECK(doc["version"] == "1.0.0");
  CHECK(doc["arch"] == "amd64");
  CHECK(doc["suite"] == "trixie");
  CHECK(doc["sourceDateEpoch"] == 1764028800);
  CHECK(doc["kubernetes"]["version"] == "v1.34.12");
  CHECK(doc["kubernetes"]["source"] == "source");  // --offline: no probe of dl.k8s.io
  CHECK(doc["kubernetes"]["reason"].is_string());
  CHECK(doc["kubernetes"]["pauseImage"] == "registry.k8s.io/pause:3.10.1");
  auto packages = doc["packages"].get<std::vector<std::string>>();
  CHECK(std::find(packages.begin(), packages.end(), "containerd") != packages.end());
  CHECK(std::find(packages.begin(), packages.end(), "openssh-server") != packages.end());
  CHECK(doc["downloads"].is_array());
  std::vector<std::string> built;
  for (const auto& binary : doc["goBinaries"]) built.push_back(binary["name"]);
  CHECK(built == std::vector<std::string>{"kubelet", "kubeadm", "crictl"});
  CHECK(doc["outputs"] == nlohmann::json::array({"raw", "qcow2"}));
  for (const char* stage : {"base", "kubernetes", "rootfs", "disk"})
    CHECK(doc["stageKeys"][stage].get<std::string>().size() == 64);
}
