#include "builder/export/output_writers.h"

#include "builder/disk/guid.h"
#include "builder/disk/sparse_copy.h"
#include "builder/export/disk_formats.h"
#include "builder/export/pxe_folder.h"
#include "builder/export/update_folder.h"
#include "builder/join/config_initrd.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

/// Runs one writer of one file as a logged stage and describes what it left.
template <typename Write>
ExportedFile write_file(const ExportJob& job, const std::string& file, Write write) {
  log::Stage stage("export " + file);
  write(job.dir / file);
  return {file, allocated_bytes(job.dir / file), sha256_file(job.dir / file)};
}

std::string image(const ExportJob& job, const char* suffix) {
  return job.plan.recipe.name + suffix;
}

std::vector<ExportedFile> write_rootfs(const ExportJob& job) {
  fs::path out = job.dir / "rootfs.tar";
  copy_file_atomic(job.rootfs.tarball, out);
  return {{"rootfs.tar", fs::file_size(out), job.rootfs.tarball_sha256}};
}

std::vector<ExportedFile> write_raw_image(const ExportJob& job) {
  return {write_file(job, image(job, ".raw"),
                     [&](const fs::path& out) { write_raw(job.disk->raw, out); })};
}

std::vector<ExportedFile> write_raw_zst_image(const ExportJob& job) {
  return {write_file(job, image(job, ".raw.zst"),
                     [&](const fs::path& out) { write_raw_zst(job.disk->raw, out); }),
          write_file(job, image(job, ".raw.bmap"),
                     [&](const fs::path& out) { write_bmap(job.disk->raw, out); })};
}

std::vector<ExportedFile> write_qcow2_image(const ExportJob& job) {
  return {write_file(job, image(job, ".qcow2"),
                     [&](const fs::path& out) { write_qcow2(job.disk->raw, out); })};
}

std::vector<ExportedFile> write_vhd_image(const ExportJob& job) {
  return {write_file(job, image(job, ".vhd"), [&](const fs::path& out) {
    write_vhd(job.disk->raw, out, Guid::derived("kiln/" + job.plan.recipe_hash + "/vhd").text,
              job.plan.source_date_epoch);
  })};
}

std::vector<ExportedFile> write_vmdk_image(const ExportJob& job) {
  return {write_file(job, image(job, ".vmdk"),
                     [&](const fs::path& out) { write_vmdk(job.disk->raw, out); })};
}

/// Made from the VMDK, which the export step writes first.
std::vector<ExportedFile> write_ova_image(const ExportJob& job) {
  return {write_file(job, image(job, ".ova"), [&](const fs::path& out) {
    write_ova(job.dir / image(job, ".vmdk"), out, job.plan.recipe.name, job.disk->layout.size,
              job.plan.source_date_epoch);
  })};
}

std::vector<ExportedFile> write_gce_image(const ExportJob& job) {
  return {write_file(job, image(job, ".gce.tar.gz"), [&](const fs::path& out) {
    write_gce(job.disk->raw, out, job.plan.source_date_epoch);
  })};
}

/// Names the raw image, which the export step writes first and keeps.
std::vector<ExportedFile> write_ami_registration(const ExportJob& job) {
  const Recipe& r = job.plan.recipe;
  return {write_file(job, image(job, ".register-ami.json"), [&](const fs::path& out) {
    write_file_atomic(out, register_ami_json(r.name, r.name + ".raw", r.base.arch == Arch::arm64));
  })};
}

/// The netboot folder itself never holds a token; a join config rides beside it as an initrd
/// of its own.
std::vector<ExportedFile> write_pxe_folder(const ExportJob& job) {
  std::vector<ExportedFile> files = export_pxe_folder(job.plan, *job.cached_disk, job.dir);
  if (job.join) {
    write_join_initrd(*job.join, job.dir / "pxe" / "join.img");
    log::info("    wrote pxe/join.img (0600) with the join config");
  }
  return files;
}

/// Releases are written from the token-free disk: an update never carries a join config.
std::vector<ExportedFile> write_update_folder(const ExportJob& job) {
  return export_update_folder(job.plan, *job.cached_disk, job.signing_key, job.dir);
}

constexpr std::array<FormatWriter, kOutputFormats.size()> kWriters = {{
    {"rootfs", write_rootfs},
    {"raw", write_raw_image},
    {"raw.zst", write_raw_zst_image},
    {"qcow2", write_qcow2_image},
    {"vhd", write_vhd_image},
    {"vmdk", write_vmdk_image},
    {"ova", write_ova_image},
    {"gce", write_gce_image},
    {"ami", write_ami_registration},
    {"pxe", write_pxe_folder},
    {"update", write_update_folder},
}};

constexpr bool writers_match_formats() {
  for (std::size_t i = 0; i < kOutputFormats.size(); ++i) {
    if (kWriters[i].name != kOutputFormats[i].name) return false;
  }
  return true;
}
static_assert(writers_match_formats(),
              "every output format in output_formats.h needs its writer here, in the same order");

}  // namespace

const std::array<FormatWriter, kOutputFormats.size()>& format_writers() {
  return kWriters;
}

}  // namespace kiln
