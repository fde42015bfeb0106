#pragma once

#include <string_view>

namespace kiln {

/// An image version as recipes write it (`version: 1.4.0`, `2026.12.1`, `1.5.0~rc1`):
/// 1 to 64 characters of letters, digits and `.+~-_`, starting with a letter or digit. It
/// becomes part of file names in update folders, so nothing else is allowed.
bool is_image_version(std::string_view text);

/// Orders two image versions the way systemd orders boot entries and sysupdate releases
/// (the UAPI version format): runs of digits compare as numbers, runs of letters
/// alphabetically, `~` sorts before everything (1.0~rc1 < 1.0), other separators only split.
/// Negative, zero or positive, like strcmp. Linear in the lengths.
int compare_image_versions(std::string_view a, std::string_view b);

}  // namespace kiln
