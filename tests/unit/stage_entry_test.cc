#include <catch2/catch.hpp>

#include "builder/fetch/cache.h"
#include "builder/plan/plan.h"
#include "builder/util/files.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

TEST_CASE("a stage entry is made in scratch, published once and reused after") {
  kiln::test::TempDir dir;
  kiln::Cache cache(dir.path() / "cache", false);
  const std::string key(64, 'a');
  fs::path scratch;
  {
    kiln::StageEntry entry(cache, "rootfs", key, false);
    CHECK_FALSE(entry.reuse());
    scratch = entry.scratch();
    CHECK(fs::is_empty(scratch));
    kiln::write_file_atomic(scratch / "rootfs.tar", "tar");
    entry.publish();
    CHECK(entry.path() == cache.stage_path("rootfs", key));
  }
  CHECK_FALSE(fs::exists(scratch));
  CHECK(kiln::read_file(cache.stage_path("rootfs", key) / "rootfs.tar") == "tar");
  kiln::StageEntry again(cache, "rootfs", key, false);
  CHECK(again.reuse());
}

TEST_CASE("a stage entry is rebuilt on request and its unpublished scratch is removed") {
  kiln::test::TempDir dir;
  kiln::Cache cache(dir.path() / "cache", false);
  const std::string key(64, 'b');
  fs::create_directories(cache.stage_path("disk", key));
  fs::path scratch;
  {
    kiln::StageEntry entry(cache, "disk", key, true);
    CHECK_FALSE(entry.reuse());
    scratch = entry.scratch();
    kiln::write_file_atomic(scratch / "half-written", "x");
  }  // failed before publishing
  CHECK_FALSE(fs::exists(scratch));
  CHECK(fs::exists(cache.stage_path("disk", key)));  // the older output is left alone
}

TEST_CASE("stage keys cover what kiln adds to the stages, each in its own stage") {
  kiln::Recipe recipe;
  recipe.name = "w";
  recipe.kubernetes.from = kiln::KubernetesSource::release;
  kiln::PlanOptions options{.offline = true, .probe_network = false};
  options.payload = {{{"/usr/lib/dracut/x", "a"}}, "build initrd", "/netroot", "n1", "agent1"};
  kiln::BuildPlan plan = kiln::make_plan(recipe, options);
  CHECK(plan.pause_image == "registry.k8s.io/pause:3.10.1");

  options.payload.agent_digest = "agent2";
  kiln::BuildPlan new_agent = kiln::make_plan(recipe, options);
  CHECK(new_agent.base_key == plan.base_key);
  CHECK(new_agent.rootfs_key != plan.rootfs_key);

  options.payload.initrd_build_script = "build initrd differently";
  kiln::BuildPlan new_initrd = kiln::make_plan(recipe, options);
  CHECK(new_initrd.base_key != new_agent.base_key);
  CHECK(new_initrd.kubernetes_key == new_agent.kubernetes_key);

  options.payload.netroot_digest = "n2";
  CHECK(kiln::make_plan(recipe, options).base_key != new_initrd.base_key);
}
