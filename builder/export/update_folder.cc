#include "builder/export/update_folder.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>

#include "builder/export/disk_parts.h"
#include "builder/export/zstd_frames.h"
#include "builder/update/image_version.h"
#include "builder/update/release_signature.h"
#include "builder/update/update_index.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

/// Writes one release file through `fill` (which creates the temp path it is given), then
/// gives it the build's timestamp and its final name.
UpdateFile add_file(const fs::path& folder, const std::string& name, long long epoch,
                    const std::function<void(const fs::path&)>& fill) {
  fs::path final_path = folder / name, temp = temp_sibling(final_path);
  TempPath cleanup(temp);
  fill(temp);
  const timespec times[2] = {{epoch, 0}, {epoch, 0}};
  ::utimensat(AT_FDCWD, temp.c_str(), times, 0);
  fsync_path(temp);
  fs::rename(temp, final_path);
  cleanup.release();
  return {name, fs::file_size(final_path), sha256_file(final_path)};
}

/// The releases already published in the folder, except `version`, whose files are all there.
std::vector<UpdateRelease> earlier_releases(const fs::path& folder, const std::string& name,
                                            const std::string& arch, const std::string& version) {
  std::vector<UpdateRelease> kept;
  if (!fs::exists(folder / "index.json")) return kept;
  UpdateIndex index;
  try {
    index = parse_update_index(read_file(folder / "index.json"));
  } catch (const Error& e) {
    throw Error(
        fmt::format("{}/index.json cannot be extended: {}; move the folder away to start "
                    "a new one",
                    folder.string(), e.what()));
  }
  if (index.name != name || index.arch != arch) {
    throw Error(
        fmt::format("{} holds releases of {} ({}), not {} ({}); write each image's "
                    "updates to a folder of its own",
                    folder.string(), index.name, index.arch, name, arch));
  }
  for (auto& release : index.releases) {
    if (compare_image_versions(release.version, version) == 0) continue;
    bool complete = true;
    for (const UpdateFile* f : release_files(release))
      complete = complete && fs::exists(folder / f->name);
    if (complete) {
      kept.push_back(std::move(release));
    } else {
      log::info("    dropping release {} from the index: some of its files are gone",
                release.version);
    }
  }
  return kept;
}

}  // namespace

std::vector<ExportedFile> export_update_folder(const BuildPlan& plan, const DiskArtifact& disk,
                                               const fs::path& signing_key, const fs::path& dir) {
  const Recipe& r = plan.recipe;
  if (signing_key.empty()) {
    throw Error(
        "the update output is signed: pass --signing-key KEY (an Ed25519 or ECDSA P-256 "
        "PEM private key, e.g. from `openssl genpkey -algorithm ed25519`)");
  }
  log::Stage stage("export update/ (version " + r.version + ")");
  fs::path folder = dir / "update";
  fs::create_directories(folder);
  const std::string arch = to_string(r.base.arch);
  std::vector<UpdateRelease> releases = earlier_releases(folder, r.name, arch, r.version);

  const long long epoch = plan.source_date_epoch;
  const std::string prefix = r.name + "_" + r.version;
  UpdateRelease release;
  release.version = r.version;
  release.root_hash = disk.root_hash;
  release.cmdline = kernel_cmdline(plan, disk.root_hash);
  release.root = add_file(folder, prefix + ".root.img", epoch,
                          [&](const fs::path& out) { copy_partition_content(disk, "root", out); });
  release.verity = add_file(folder, prefix + ".verity.img", epoch, [&](const fs::path& out) {
    copy_partition_content(disk, "root-verity", out);
  });
  release.kernel = add_file(folder, prefix + ".vmlinuz", epoch,
                            [&](const fs::path& out) { copy_from_esp(disk, "vmlinuz", out); });
  release.initrd = add_file(folder, prefix + ".initrd.img", epoch,
                            [&](const fs::path& out) { copy_from_esp(disk, "initrd.img", out); });
  ZstdFrames zstd{.frame_size = kUpdateFrameSize};
  zstd.file = add_file(folder, prefix + ".root.img.zst", epoch, [&](const fs::path& out) {
    zstd.frames = write_zstd_frames(folder / release.root.name, out, zstd.frame_size);
  });
  log::info("    root {} MiB, {} MiB as {} zstd frames", release.root.size >> 20,
            zstd.file.size >> 20, zstd.frames.size());
  release.root_zstd = std::move(zstd);
  releases.push_back(release);

  std::string index = render_update_index({r.name, arch, releases});
  std::string signature = sign_release(signing_key, index);
  std::string sums;
  std::vector<std::pair<std::string, std::string>> listed;  // name, sha256
  for (const auto& rel : releases) {
    for (const UpdateFile* f : release_files(rel)) listed.emplace_back(f->name, f->sha256);
  }
  listed.emplace_back("index.json", sha256_hex(index));
  std::sort(listed.begin(), listed.end());
  for (const auto& [name, digest] : listed) sums += digest + "  " + name + "\n";

  // The index and its signature are replaced last, so a node never sees an index that names
  // files not yet complete.
  std::vector<ExportedFile> files;
  for (const UpdateFile* f : release_files(release))
    files.push_back({"update/" + f->name, f->size, f->sha256});
  for (const auto& [name, text] : {std::pair<std::string, const std::string*>{"SHA256SUMS", &sums},
                                   {"index.json", &index},
                                   {"index.json.sig", &signature}}) {
    write_file_atomic(folder / name, *text);
    const timespec times[2] = {{epoch, 0}, {epoch, 0}};
    ::utimensat(AT_FDCWD, (folder / name).c_str(), times, 0);
    files.push_back({"update/" + name, text->size(), sha256_hex(*text)});
  }
  fsync_path(folder);
  log::info("    release {} of {} in update/: {} versions listed, index signed with {}", r.version,
            r.name, releases.size(), signing_key.filename().string());
  std::sort(files.begin(), files.end(),
            [](const ExportedFile& a, const ExportedFile& b) { return a.name < b.name; });
  return files;
}

}  // namespace kiln
