#pragma once

// Sending the parts of a disk image that hold data, several at a time: what an EBS snapshot
// and an Azure page blob upload share. Holes are skipped without reading them and blocks of
// zeros are never sent, because a new snapshot or page blob reads zeros wherever nothing was
// written.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::upload {

/// An upload journal open for appending from several threads; each line is synced before
/// the block it records counts as done.
class JournalWriter {
 public:
  explicit JournalWriter(const std::filesystem::path& path);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;
  /// Throws Error when the line cannot be written and synced.
  void append(const std::string& line);

 private:
  int fd_ = -1;
  std::mutex mutex_;
};

/// `bytes` random bytes as lower-case hex: the tokens that name an upload in its journal
/// (and in the cloud, as an idempotency token, blob metadata or part names).
std::string random_token(int bytes = 16);

/// Calls `line(key, value)` for each complete line "KEY VALUE" of an upload journal, in
/// order. A last line without its newline (cut short by a crash) and lines longer than
/// `max_line` are skipped. Bounded and linear: the journal is the uploader's own, but may be
/// truncated anywhere.
void for_each_journal_line(
    std::string_view text, std::size_t max_line,
    const std::function<void(std::string_view key, std::string_view value)>& line);

/// A block or part number as a journal writes it: 1 to `max_digits` decimal digits.
std::optional<std::uint64_t> journal_number(std::string_view text, std::size_t max_digits = 12);

/// Progress of a block upload: bytes of the image looked at, bytes sent.
struct UploadProgress {
  std::uint64_t scanned = 0, size = 0, sent = 0;
  double seconds = 0;
};

/// Why a block could not be sent.
struct BlockFailure {
  std::string message;
  bool refused = false;  ///< a 4xx answer: the cloud said no, retrying will not help
};

/// Sends one block (its index and bytes; the last block of the file is zero-padded to the
/// block size) and returns the bytes it put on the wire, or why it failed. One sender is made
/// per worker thread, so that each holds its own connection.
using BlockSender = std::function<std::optional<BlockFailure>(
    std::uint64_t index, const std::string& block, std::uint64_t& bytes_sent)>;

struct DataBlocks {
  std::filesystem::path file;
  std::uint64_t block_size = 0;
  int jobs = 8;  ///< blocks in flight
  /// Blocks an earlier, interrupted run already sent: skipped.
  std::function<bool(std::uint64_t index)> already_sent;
  std::function<BlockSender()> make_sender;
  std::function<void(const UploadProgress&)> on_progress;  ///< every half second
};

struct DataBlocksResult {
  std::uint64_t blocks_sent = 0;
  std::uint64_t bytes_sent = 0;
};

/// Sends every block of `upload.file` that holds data and was not sent before. On the first
/// failure the workers stop and it throws CloudRefusal (refused) or Error, saying that
/// running the same command again resumes.
DataBlocksResult send_data_blocks(const DataBlocks& upload);

}  // namespace kiln::upload
