#pragma once

#include <filesystem>
#include <string>

#include "builder/update/update_index.h"
#include "builder/util/error.h"
#include "firstboot/update/node_paths.h"
#include "firstboot/update/node_state.h"

namespace kiln::update {

/// A release that must not be installed (unsigned, foreign key, wrong digest, fails
/// dm-verity): reported, and nothing about the boot configuration is switched.
struct Refusal : Error {
  using Error::Error;
};

/// `base` (the update folder's URL) joined with a file name from the signed index.
std::string file_url(const std::string& base, const std::string& name);

/// Streams `file` from the update folder onto `device` (a slot partition) from byte 0,
/// resuming where an earlier run stopped (NodeState's progress, saved after each synced
/// 32 MiB), retrying a broken transfer up to 8 times with back-off. Then drops the written
/// pages from the cache, reads the slot back and checks its SHA-256 against the signed index.
/// Memory stays at one 1 MiB buffer. Throws kiln::Error saying what failed; a later run
/// resumes.
void write_to_slot(const std::string& base_url, const UpdateFile& file,
                   const std::filesystem::path& device, const std::string& version,
                   const std::string& role, NodeState& state, const Say& say);

/// Downloads a small release file (kernel, initrd) to `out` and checks its SHA-256.
void download_checked(const std::string& base_url, const UpdateFile& file,
                      const std::filesystem::path& out, const Say& say);

/// Bytes a block device or file can hold.
std::uint64_t device_size(const std::filesystem::path& device);

}  // namespace kiln::update
