#include "builder/export/exports.h"

#include <algorithm>

#include "builder/disk/sparse_copy.h"
#include "builder/export/disk_formats.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

bool wants(const Recipe& recipe, const std::string& output) {
  return std::find(recipe.outputs.begin(), recipe.outputs.end(), output) != recipe.outputs.end();
}

}  // namespace

std::vector<ExportedFile> export_disk_formats(const BuildPlan& plan, const DiskArtifact& disk,
                                              const fs::path& dir) {
  const Recipe& r = plan.recipe;
  const std::string& name = r.name;
  const long long epoch = plan.source_date_epoch;
  std::vector<std::string> written;
  auto step = [&](const std::string& file, auto write) {
    log::Stage stage("export " + file);
    write(dir / file);
    written.push_back(file);
  };

  if (wants(r, "raw") || wants(r, "ami"))
    step(name + ".raw", [&](const fs::path& out) { write_raw(disk.raw, out); });
  if (wants(r, "raw.zst")) {
    step(name + ".raw.zst", [&](const fs::path& out) { write_raw_zst(disk.raw, out); });
    step(name + ".raw.bmap", [&](const fs::path& out) { write_bmap(disk.raw, out); });
  }
  if (wants(r, "qcow2"))
    step(name + ".qcow2", [&](const fs::path& out) { write_qcow2(disk.raw, out); });
  if (wants(r, "vhd")) {
    step(name + ".vhd", [&](const fs::path& out) {
      write_vhd(disk.raw, out, Guid::derived("kiln/" + plan.recipe_hash + "/vhd").text, epoch);
    });
  }
  if (wants(r, "vmdk") || wants(r, "ova")) {
    fs::path vmdk = dir / (name + ".vmdk");
    TempPath unrequested(wants(r, "vmdk") ? fs::path() : vmdk);
    step(name + ".vmdk", [&](const fs::path& out) { write_vmdk(disk.raw, out); });
    if (wants(r, "ova")) {
      step(name + ".ova", [&](const fs::path& out) {
        write_ova(vmdk, out, name, disk.layout.size, epoch);
      });
    }
    if (!wants(r, "vmdk")) {
      fs::remove(vmdk);
      written.erase(std::find(written.begin(), written.end(), name + ".vmdk"));
    }
  }
  if (wants(r, "gce"))
    step(name + ".gce.tar.gz", [&](const fs::path& out) { write_gce(disk.raw, out, epoch); });
  if (wants(r, "ami")) {
    step(name + ".register-ami.json", [&](const fs::path& out) {
      write_file_atomic(out, register_ami_json(name, name + ".raw", r.base.arch == Arch::arm64));
    });
  }

  std::vector<ExportedFile> files;
  for (const auto& file : written) {
    fs::path path = dir / file;
    files.push_back({file, allocated_bytes(path), sha256_file(path)});
  }
  return files;
}

}  // namespace kiln
