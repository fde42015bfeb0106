#pragma once

// What every `kiln upload CLOUD` shares: reading the built image folder, the step lines and
// the progress line, key=value lists, and where upload journals live.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"

namespace kiln::cli {

/// The image a build folder holds: its disk files and what its manifest says.
struct BuiltImage {
  std::filesystem::path dir;
  std::filesystem::path raw;  ///< empty when the build wrote no raw disk
  std::string name, version, arch;
  std::string distribution, suite, kubernetes_version;
  bool boots_by_bios = false;

  /// DIR/NAME.EXTENSION when the build wrote it, else empty.
  std::filesystem::path output(const std::string& extension) const;
};

/// Reads DIR/manifest.json (a folder `kiln build` wrote). Throws UsageError when DIR is not
/// one, naming what is missing.
BuiltImage read_built_image(const std::filesystem::path& dir);

/// "k=v,k2=v2" into pairs; `what` names the flag in errors. Keys up to `max_key` characters.
std::vector<std::pair<std::string, std::string>> parse_key_values(const std::string& text,
                                                                  const std::string& what,
                                                                  std::size_t max_key = 128);

/// --jobs: 1 to 64, 8 when not given.
int parse_jobs(const ParsedArgs& parsed);

/// "a,b,,c" into its non-empty items.
std::vector<std::string> split_list(const std::string& text);

/// One step line ("    created image …"), clearing a progress line first on a terminal.
void say(const std::string& line);

/// "\r…" updates on a terminal (bytes, rate, time left); nothing otherwise, where the step
/// lines are the record.
void show_transfer(std::uint64_t done, std::uint64_t total, std::uint64_t sent, double seconds);

/// Where an upload keeps its journal: <cache>/uploads/CLOUD-<key digest>.journal. The key
/// names the file (path, size, mtime: a rebuilt image starts afresh), target and name.
std::filesystem::path journal_path(const std::string& cloud, const std::filesystem::path& file,
                                   const std::string& target_key);

/// The clouds' commands: `kiln upload aws …`, `kiln upload openstack …`, `… azure`,
/// `… gce` (arguments after the cloud's name).
ExitCode run_upload_aws(const std::vector<std::string>& args);
ExitCode run_upload_openstack(const std::vector<std::string>& args);
ExitCode run_upload_azure(const std::vector<std::string>& args);
ExitCode run_upload_gce(const std::vector<std::string>& args);

}  // namespace kiln::cli
