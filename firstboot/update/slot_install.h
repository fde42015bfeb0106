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

/// Frames that do not decode, or decode to something other than the root: the root itself is
/// still worth fetching.
struct BadFrames : Refusal {
  using Refusal::Refusal;
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

/// Writes the root onto `device` as write_to_slot does, from its zstd frames instead: each
/// frame is decoded as it arrives, and a broken transfer resumes at a frame boundary. The
/// slot's SHA-256 is checked against the root's, so the frames need no trust of their own.
/// Throws BadFrames when a frame does not decode, or when a download from the first frame
/// decodes to another root; a mismatch after resuming is a plain Refusal, as in write_to_slot
/// (the slot may have held something else before the resume point; the next run starts over).
void write_frames_to_slot(const std::string& base_url, const UpdateFile& root,
                          const ZstdFrames& zstd, const std::filesystem::path& device,
                          const std::string& version, NodeState& state, const Say& say);

/// Downloads a small release file (kernel, initrd) to `out` and checks its SHA-256.
void download_checked(const std::string& base_url, const UpdateFile& file,
                      const std::filesystem::path& out, const Say& say);

/// Bytes a block device or file can hold.
std::uint64_t device_size(const std::filesystem::path& device);

}  // namespace kiln::update
