#include "firstboot/update/node_state.h"

#include <algorithm>
#include <sstream>

#include "builder/update/image_version.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"

namespace kiln::update {
namespace fs = std::filesystem;

NodeState::NodeState(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
}

std::string NodeState::get(const std::string& name) const {
  std::error_code ec;
  if (!fs::exists(dir_ / name, ec)) return "";
  std::string value = read_file(dir_ / name);
  while (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

void NodeState::set(const std::string& name, const std::string& value) {
  write_file_atomic(dir_ / name, value + "\n", 0600);
  fsync_path(dir_);
}

void NodeState::set_trial(const std::string& version, const std::string& slot) {
  set("trial-slot", slot);
  set("trial-version", version);
}

void NodeState::clear_trial() {
  std::error_code ec;
  for (const char* name : {"trial-version", "trial-slot", "trial-failure"})
    fs::remove(dir_ / name, ec);
  fsync_path(dir_);
}

std::vector<std::string> NodeState::refused_versions() const {
  std::vector<std::string> versions;
  std::istringstream in(get("refused-versions"));
  for (std::string line; std::getline(in, line);)
    if (is_image_version(line)) versions.push_back(line);
  return versions;
}

bool NodeState::is_refused(const std::string& version) const {
  auto refused = refused_versions();
  return std::any_of(refused.begin(), refused.end(),
                     [&](const std::string& v) { return compare_image_versions(v, version) == 0; });
}

void NodeState::refuse(const std::string& version) {
  if (is_refused(version)) return;
  std::string text = get("refused-versions");
  set("refused-versions", text.empty() ? version : text + "\n" + version);
}

NodeState::Progress NodeState::progress() const {
  Progress p;
  std::istringstream in(get("download"));
  std::string bytes;
  in >> p.version >> p.role >> bytes;
  p.bytes = scan::parse_unsigned<std::uint64_t>(bytes).value_or(0);
  return p;
}

void NodeState::set_progress(const Progress& p) {
  set("download", p.version + " " + p.role + " " + std::to_string(p.bytes));
}

void NodeState::clear_progress() {
  std::error_code ec;
  fs::remove(dir_ / "download", ec);
}

}  // namespace kiln::update
