#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "builder/update/release_signature.h"
#include "builder/update/update_index.h"
#include "builder/util/files.h"

namespace kiln::test {

/// Where build-update-releases.sh left the test releases (releases/VERSION/update) and key.
inline std::filesystem::path update_releases() {
  return std::filesystem::path(KILN_TEST_IMAGES) / "update-releases";
}

/// Publishes `versions` into `folder` as an operator would: their files (hard links) beside
/// each other, one index listing them all, signed with the release key.
inline void publish_releases(const std::filesystem::path& folder,
                             const std::vector<std::string>& versions) {
  namespace fs = std::filesystem;
  fs::create_directories(folder);
  UpdateIndex index;
  for (const auto& version : versions) {
    fs::path from = update_releases() / version / "update";
    UpdateIndex one = parse_update_index(read_file(from / "index.json"));
    index.name = one.name;
    index.arch = one.arch;
    for (const auto& release : one.releases) {
      for (const UpdateFile* f : release_files(release)) {
        if (!fs::exists(folder / f->name)) fs::create_hard_link(from / f->name, folder / f->name);
      }
      index.releases.push_back(release);
    }
  }
  std::string text = render_update_index(index);
  write_file_atomic(folder / "index.json.sig", "");  // never a new index beside an old signature
  write_file_atomic(folder / "index.json", text);
  write_file_atomic(folder / "index.json.sig",
                    sign_release(update_releases() / "release.key", text));
}

}  // namespace kiln::test
