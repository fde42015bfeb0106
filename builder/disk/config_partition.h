#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "builder/join/join_config.h"

namespace kiln {

/// Writes `config` as join.yaml into a raw kiln image's kiln-config (KILNCFG) partition,
/// without booting or mounting anything: a fresh FAT file system is made in a private
/// temporary file and written over the whole partition, so no earlier token survives in its
/// free space. Refuses images that are not raw kiln disks, naming what to do instead.
void stamp_join_config(const std::filesystem::path& image, const JoinConfig& config);

/// The join.yaml stamped into a raw kiln image, if any (holds the token: handle as a secret).
std::optional<std::string> read_stamped_config(const std::filesystem::path& image);

}  // namespace kiln
