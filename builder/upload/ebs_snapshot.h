#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "builder/upload/aws_settings.h"
#include "builder/upload/data_blocks.h"

namespace kiln::aws {

/// EBS snapshots are made of 512 KiB blocks (EBS direct APIs).
inline constexpr std::uint64_t kEbsBlockSize = 512 * 1024;

/// The snapshot volume for an image of `bytes`: whole GiB, at least one.
inline std::uint64_t ebs_volume_gib(std::uint64_t bytes) {
  return std::max<std::uint64_t>(1, (bytes + (1ull << 30) - 1) >> 30);
}

/// What an upload has done so far, kept in a journal file so that running the same command
/// again resumes it: the StartSnapshot idempotency token, the snapshot, each block EBS
/// acknowledged with its checksum, and whether the snapshot was completed.
struct UploadJournal {
  std::string client_token;
  std::string snapshot_id;
  std::map<std::uint64_t, std::string> blocks;  ///< index -> base64 SHA-256 of the block
  bool completed = false;
  std::string image_id;
  /// --public-regions: the image's copy in each region (the home region's is the image), and
  /// the regions where it was made public.
  std::map<std::string, std::string> copies;
  std::set<std::string> public_in;
};

/// Parses a journal; lines it does not know, and a last line cut short by a crash, are
/// ignored. Bounded and linear (the file is the uploader's own, but may be truncated).
UploadJournal parse_journal(const std::string& text);

struct SnapshotUpload {
  std::filesystem::path raw;
  std::filesystem::path journal;
  std::string description;
  std::vector<std::pair<std::string, std::string>> tags;
  int jobs = 8;  ///< blocks in flight
};

struct SnapshotResult {
  std::string snapshot_id;
  std::uint64_t volume_gib = 0;
  std::uint64_t blocks_total = 0;    ///< blocks the volume has
  std::uint64_t blocks_sent = 0;     ///< sent by this run
  std::uint64_t blocks_resumed = 0;  ///< acknowledged in an earlier, interrupted run
  std::uint64_t bytes_sent = 0;
  double seconds = 0;
};

using upload::UploadProgress;

/// Uploads a raw disk image as an EBS snapshot through the EBS direct APIs: StartSnapshot,
/// PutSnapshotBlock for every block that is not all zeros (holes are never read), `jobs` at
/// a time, each with its SHA-256, then CompleteSnapshot with the block count and the linear
/// aggregate checksum. Resumes from `journal` when it names a snapshot. Throws Error with
/// the service's error code and message.
SnapshotResult upload_snapshot(const AwsSettings& settings, const SnapshotUpload& upload,
                               const std::function<void(const UploadProgress&)>& on_progress,
                               const std::function<void(const std::string&)>& say);

/// Appends one line to the journal and syncs it.
void journal_append(const std::filesystem::path& journal, const std::string& line);

}  // namespace kiln::aws
