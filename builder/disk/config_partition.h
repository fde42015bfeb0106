#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "builder/join/join_config.h"

namespace kiln {

/// What stamping did to the image file's mode.
struct StampResult {
  unsigned old_mode = 0;  ///< permission bits before stamping
  unsigned mode = 0;      ///< permission bits now
};

/// Writes `config` as join.yaml into a raw kiln image's kiln-config (KILNCFG) partition,
/// without booting or mounting anything: a fresh FAT file system is made in a private
/// temporary file and written over the whole partition, so no earlier token survives in its
/// free space. Refuses images that are not raw kiln disks (or whose partition table does not
/// fit the file), naming what to do instead. The image then holds the token, so unless
/// `keep_mode` it is made 0600 before the token is written. The one stamping entry point for
/// `kiln stamp` and `kiln build --join`. A stamped update URL and network config are kept.
StampResult stamp_join_config(const std::filesystem::path& image, const JoinConfig& config,
                              bool keep_mode = false);

/// Writes a per-node update source (http:// URL of an update folder) into the kiln-config
/// partition as update-url, keeping a stamped join config; kiln-update prefers it over the
/// recipe's updates.url. Same in-place rewrite and mode handling as stamp_join_config.
StampResult stamp_update_url(const std::filesystem::path& image, const std::string& url,
                             bool keep_mode = false);

/// Throws kiln::Error unless `url` is one stamp_update_url accepts (an http:// URL).
void check_update_url(const std::string& url);

/// Writes a node's static network config (`text`, a valid network config: see
/// network_config.h) into the kiln-config partition as network.yaml, keeping what else is
/// stamped; kiln-network.service applies it before the node's network starts. Same in-place
/// rewrite and mode handling as stamp_join_config.
StampResult stamp_network_config(const std::filesystem::path& image, const std::string& text,
                                 bool keep_mode = false);

/// The network.yaml stamped into a raw kiln image, if any.
std::optional<std::string> read_stamped_network_config(const std::filesystem::path& image);

/// The join.yaml stamped into a raw kiln image, if any (holds the token: handle as a secret).
std::optional<std::string> read_stamped_config(const std::filesystem::path& image);

/// The update URL stamped into a raw kiln image, if any.
std::optional<std::string> read_stamped_update_url(const std::filesystem::path& image);

}  // namespace kiln
