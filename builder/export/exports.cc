#include "builder/export/exports.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

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

/// One chain of exports that must run in order (the OVA needs the VMDK first); chains are
/// independent of each other. Each step names the file it writes, or "" for none.
struct ExportChain {
  std::vector<std::pair<std::string, std::function<void(const fs::path&)>>> steps;
};

/// Runs the chains on `workers` threads (most writers are single-threaded compressors),
/// hashing each file as soon as it is written. Rethrows the first failure once all stop.
std::vector<ExportedFile> run_chains(std::vector<ExportChain>& chains, const fs::path& dir,
                                     unsigned workers) {
  std::vector<std::vector<ExportedFile>> results(chains.size());
  std::atomic<std::size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  auto worker = [&] {
    for (std::size_t i; (i = next++) < chains.size();) {
      try {
        for (auto& [file, write] : chains[i].steps) {
          {
            std::lock_guard lock(error_mutex);
            if (error) return;
          }
          log::Stage stage("export " + file);
          write(dir / file);
          results[i].push_back({file, allocated_bytes(dir / file), sha256_file(dir / file)});
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
  std::vector<ExportedFile> files;
  for (auto& chain : results) files.insert(files.end(), chain.begin(), chain.end());
  return files;
}

}  // namespace

std::vector<ExportedFile> export_disk_formats(const BuildPlan& plan, const DiskArtifact& disk,
                                              const fs::path& dir) {
  const Recipe& r = plan.recipe;
  const std::string& name = r.name;
  const long long epoch = plan.source_date_epoch;
  std::vector<ExportChain> chains;
  auto chain = [&](std::string file, std::function<void(const fs::path&)> write) {
    chains.push_back({{{std::move(file), std::move(write)}}});
  };

  // Longest first, so the two workers finish together.
  if (wants(r, "gce"))
    chain(name + ".gce.tar.gz", [&](const fs::path& out) { write_gce(disk.raw, out, epoch); });
  if (wants(r, "vmdk") || wants(r, "ova")) {
    chain(name + ".vmdk", [&](const fs::path& out) { write_vmdk(disk.raw, out); });
    if (wants(r, "ova")) {
      chains.back().steps.push_back({name + ".ova", [&](const fs::path& out) {
                                       write_ova(dir / (name + ".vmdk"), out, name,
                                                 disk.layout.size, epoch);
                                     }});
    }
  }
  if (wants(r, "raw.zst")) {
    chain(name + ".raw.zst", [&](const fs::path& out) { write_raw_zst(disk.raw, out); });
    chains.back().steps.push_back(
        {name + ".raw.bmap", [&](const fs::path& out) { write_bmap(disk.raw, out); }});
  }
  if (wants(r, "qcow2"))
    chain(name + ".qcow2", [&](const fs::path& out) { write_qcow2(disk.raw, out); });
  if (wants(r, "raw") || wants(r, "ami"))
    chain(name + ".raw", [&](const fs::path& out) { write_raw(disk.raw, out); });
  if (wants(r, "vhd")) {
    chain(name + ".vhd", [&](const fs::path& out) {
      write_vhd(disk.raw, out, Guid::derived("kiln/" + plan.recipe_hash + "/vhd").text, epoch);
    });
  }
  if (wants(r, "ami")) {
    chain(name + ".register-ami.json", [&](const fs::path& out) {
      write_file_atomic(out, register_ami_json(name, name + ".raw", r.base.arch == Arch::arm64));
    });
  }

  std::vector<ExportedFile> files = run_chains(chains, dir, 2);
  if (wants(r, "ova") && !wants(r, "vmdk")) {
    // The OVA carries its own copy; an unrequested VMDK is not left beside it.
    fs::remove(dir / (name + ".vmdk"));
    std::erase_if(files, [&](const ExportedFile& f) { return f.name == name + ".vmdk"; });
  }
  std::sort(files.begin(), files.end(),
            [](const ExportedFile& a, const ExportedFile& b) { return a.name < b.name; });
  return files;
}

}  // namespace kiln
