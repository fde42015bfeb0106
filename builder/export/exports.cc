#include "builder/export/exports.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "builder/disk/config_partition.h"
#include "builder/disk/sparse_copy.h"
#include "builder/export/output_formats.h"
#include "builder/export/output_writers.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

bool requested(const Recipe& recipe, std::string_view format) {
  return std::find(recipe.outputs.begin(), recipe.outputs.end(), format) != recipe.outputs.end();
}

/// Asked for, or needed by a format that was.
bool needed(const Recipe& recipe, const OutputFormat& format) {
  if (requested(recipe, format.name)) return true;
  return std::any_of(kOutputFormats.begin(), kOutputFormats.end(), [&](const OutputFormat& f) {
    return f.depends_on == format.name && requested(recipe, f.name);
  });
}

/// Formats (indexes into kOutputFormats) that must be written in order, each after the one it
/// depends on; chains are independent of each other.
using Chain = std::vector<std::size_t>;

/// The conversions the recipe needs, long-running ones first so the workers finish together.
std::vector<Chain> conversion_chains(const Recipe& recipe) {
  std::vector<Chain> chains;
  for (bool long_running : {true, false}) {
    for (std::size_t i = 0; i < kOutputFormats.size(); ++i) {
      const OutputFormat& root = kOutputFormats[i];
      if (!root.converts_disk || !root.depends_on.empty() || root.long_running != long_running ||
          !needed(recipe, root))
        continue;
      Chain chain{i};
      for (std::size_t j = 0; j < kOutputFormats.size(); ++j) {
        if (kOutputFormats[j].depends_on == root.name && needed(recipe, kOutputFormats[j]))
          chain.push_back(j);
      }
      chains.push_back(std::move(chain));
    }
  }
  return chains;
}

/// Runs the chains on `workers` threads (most writers are single-threaded compressors).
/// Rethrows the first failure once all stop. Returns each format's files by table index.
std::vector<std::vector<ExportedFile>> run_chains(const std::vector<Chain>& chains,
                                                  const ExportJob& job, unsigned workers) {
  std::vector<std::vector<ExportedFile>> files(kOutputFormats.size());
  std::atomic<std::size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  auto worker = [&] {
    for (std::size_t i; (i = next++) < chains.size();) {
      try {
        for (std::size_t format : chains[i]) {
          {
            std::lock_guard lock(error_mutex);
            if (error) return;
          }
          files[format] = format_writers()[format].write(job);
        }
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < workers; ++t) threads.emplace_back(worker);
  for (auto& thread : threads) thread.join();
  if (error) std::rethrow_exception(error);
  return files;
}

/// Every conversion of the disk the recipe needs, as one block sorted by file name.
std::vector<ExportedFile> convert_disk(const ExportJob& job) {
  const Recipe& r = job.plan.recipe;
  std::vector<std::vector<ExportedFile>> by_format = run_chains(conversion_chains(r), job, 2);
  for (const OutputFormat& format : kOutputFormats) {
    if (!requested(r, format.name) || format.depends_on.empty() || format.keeps_dependency ||
        requested(r, format.depends_on))
      continue;
    // Made from a format that was not asked for (the OVA carries its own copy of the VMDK):
    // that one is not left beside it.
    auto dependency = find_output_format(format.depends_on) - kOutputFormats.data();
    for (const auto& file : by_format[dependency]) fs::remove(job.dir / file.name);
    by_format[dependency].clear();
  }
  std::vector<ExportedFile> files;
  for (auto& format_files : by_format)
    files.insert(files.end(), format_files.begin(), format_files.end());
  std::sort(files.begin(), files.end(),
            [](const ExportedFile& a, const ExportedFile& b) { return a.name < b.name; });
  return files;
}

/// The cached disk stays token-free: stamp a private copy and convert from it.
std::vector<ExportedFile> convert_stamped_disk(ExportJob job, const DiskArtifact& disk,
                                               const JoinConfig& join) {
  DiskArtifact stamped = disk;
  stamped.raw = temp_sibling(job.dir / ".stamped.raw");
  TempPath cleanup(stamped.raw);
  copy_sparse_atomic(disk.raw, stamped.raw);
  stamp_join_config(stamped.raw, join);
  log::info("    stamped the join config for {} (token {}) into the disk outputs", join.endpoint,
            join.token.masked());
  job.disk = &stamped;
  return convert_disk(job);
}

}  // namespace

std::vector<ExportedFile> export_outputs(const BuildPlan& plan, const RootfsArtifact& rootfs,
                                         const std::optional<DiskArtifact>& disk,
                                         const std::optional<JoinConfig>& join, const fs::path& dir,
                                         const fs::path& signing_key) {
  const Recipe& r = plan.recipe;
  ExportJob job{
      plan, rootfs,     disk ? &*disk : nullptr, disk ? &*disk : nullptr, join ? &*join : nullptr,
      dir,  signing_key};
  bool token_guarded = false, converted = false;
  std::vector<ExportedFile> exported;
  for (std::size_t i = 0; i < kOutputFormats.size(); ++i) {
    const OutputFormat& format = kOutputFormats[i];
    if (!requested(r, format.name)) continue;
    if (format.needs_disk && !disk)
      throw Error("the " + std::string(format.name) + " output needs the disk stage's image");
    if (format.needs_disk && join && !token_guarded) {
      ::umask(077);  // every file written from here on may hold the token
      token_guarded = true;
    }
    std::vector<ExportedFile> files;
    if (!format.converts_disk) {
      files = format_writers()[i].write(job);
    } else if (!converted) {
      converted = true;
      files = join ? convert_stamped_disk(job, *disk, *join) : convert_disk(job);
    }
    exported.insert(exported.end(), files.begin(), files.end());
  }
  const std::string sbom = r.name + ".spdx.json";
  for (const auto& [from, name] :
       {std::pair{rootfs.manifest, std::string("manifest.json")}, std::pair{rootfs.sbom, sbom}}) {
    copy_file_atomic(from, dir / name);
    exported.push_back({name, fs::file_size(dir / name), sha256_file(dir / name)});
  }
  std::string sums;
  for (const auto& f : exported) sums += f.sha256 + "  " + f.name + "\n";
  write_file_atomic(dir / "SHA256SUMS", sums);
  return exported;
}

}  // namespace kiln
