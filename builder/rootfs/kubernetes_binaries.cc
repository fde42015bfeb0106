#include "builder/rootfs/kubernetes_binaries.h"

#include <fmt/format.h>

#include <sstream>

#include "builder/recipe/version_facts.h"
#include "builder/rootfs/go_build.h"
#include "builder/rootfs/tar_io.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

std::string pause_image_for(const Version& kubernetes) {
  return pause_image(kubernetes);
}

namespace {

/// records.tsv in a stage directory: name, origin, sha256, install path.
void save_records(const fs::path& dir, const std::vector<ArtifactRecord>& records) {
  std::string text;
  for (const auto& r : records)
    text += r.name + "\t" + r.origin + "\t" + r.sha256 + "\t" + r.install_path + "\n";
  write_file_atomic(dir / "records.tsv", text);
}

std::vector<ArtifactRecord> load_records(const fs::path& dir) {
  std::vector<ArtifactRecord> records;
  std::istringstream in(read_file(dir / "records.tsv"));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    std::istringstream row(line);
    for (std::string field; std::getline(row, field, '\t');) fields.push_back(field);
    if (fields.size() == 4) records.push_back({fields[0], fields[1], fields[2], fields[3]});
  }
  return records;
}

KubernetesArtifact from_stage_dir(const BuildPlan& plan, const fs::path& dir) {
  KubernetesArtifact artifact;
  artifact.records = load_records(dir);
  for (const auto& record : artifact.records) {
    if (record.name != "containerd") artifact.binaries[record.name] = dir / record.name;
  }
  if (fs::exists(dir / "containerd.tar.gz"))
    artifact.containerd_tarball = dir / "containerd.tar.gz";
  artifact.pause_image = plan.pause_image;
  return artifact;
}

void download_into(const BuildPlan& plan, Cache& cache, const fs::path& dir,
                   std::vector<ArtifactRecord>& records) {
  for (const auto& download : plan.downloads) {
    std::string digest = download.sha256.empty() ? cache.fetch_published_digest(download.sha256_url)
                                                 : download.sha256;
    fs::path blob = cache.fetch(download.url, digest, download.name);
    if (download.name == "crictl") {
      write_file_atomic(dir / "crictl", read_tar_member(blob, "crictl"), 0755);
      records.push_back({"crictl", download.url, digest, "/usr/bin/crictl"});
    } else if (download.name == "containerd") {
      fs::copy_file(blob, dir / "containerd.tar.gz");
      records.push_back({"containerd", download.url, digest, "/usr/local/bin"});
    } else {
      fs::copy_file(blob, dir / download.name);
      fs::permissions(dir / download.name, fs::perms(0755));
      records.push_back({download.name, download.url, digest, "/usr/bin/" + download.name});
    }
  }
}

}  // namespace

KubernetesArtifact provide_kubernetes(const BuildPlan& plan, Cache& cache, bool rebuild, int jobs) {
  StageEntry entry(cache, "kubernetes", plan.kubernetes_key, rebuild);
  if (entry.reuse()) return from_stage_dir(plan, entry.path());
  log::info("    kubernetes v{}: {}", plan.recipe.kubernetes.version.text(),
            plan.kubernetes_source_reason);
  const fs::path& work = entry.scratch();
  std::vector<ArtifactRecord> records;
  if (!plan.go_binaries.empty()) {
    if (cache.offline()) {
      // Go's module cache may hold everything; GOPROXY=off makes a miss fail quickly.
      log::info("    --offline: building from the Go module cache only (GOPROXY=off)");
    }
    build_go_binaries(plan, cache, work, jobs, records);
    // A release tarball of containerd may still be requested beside source-built Kubernetes.
  }
  download_into(plan, cache, work, records);
  save_records(work, records);
  entry.publish();
  return from_stage_dir(plan, entry.path());
}

}  // namespace kiln
