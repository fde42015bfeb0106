#include "builder/upload/data_blocks.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "builder/upload/rest_session.h"
#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln::upload {
namespace fs = std::filesystem;

namespace {

/// Hands out the next block index holding data, skipping holes without reading them.
class BlockCursor {
 public:
  BlockCursor(int fd, std::uint64_t size, std::uint64_t block_size)
      : fd_(fd), size_(size), block_size_(block_size) {}
  std::optional<std::uint64_t> next() {
    std::lock_guard lock(mutex_);
    if (offset_ >= size_) return std::nullopt;
    off_t data = ::lseek(fd_, off_t(offset_), SEEK_DATA);
    if (data < 0) {  // ENXIO: only a hole is left
      offset_ = size_;
      return std::nullopt;
    }
    std::uint64_t index = std::uint64_t(data) / block_size_;
    offset_ = (index + 1) * block_size_;
    return index;
  }
  std::uint64_t scanned() {
    std::lock_guard lock(mutex_);
    return std::min(offset_, size_);
  }

 private:
  int fd_;
  std::uint64_t size_, block_size_;
  std::uint64_t offset_ = 0;
  std::mutex mutex_;
};

bool all_zero(const std::string& block) {
  return block.find_first_not_of('\0') == std::string::npos;
}

}  // namespace

std::string random_token(int bytes) {
  std::random_device random;
  std::string token;
  for (int i = 0; i < bytes; i += 4) token += fmt::format("{:08x}", random());
  return token.substr(0, std::size_t(bytes) * 2);
}

void for_each_journal_line(std::string_view text, std::size_t max_line,
                           const std::function<void(std::string_view, std::string_view)>& line) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) return;  // cut short by a crash: not acknowledged
    std::string_view whole = text.substr(start, end - start);
    start = end + 1;
    if (whole.size() > max_line) continue;
    std::size_t space = whole.find(' ');
    line(whole.substr(0, space),
         space == std::string_view::npos ? std::string_view() : whole.substr(space + 1));
  }
}

std::optional<std::uint64_t> journal_number(std::string_view text, std::size_t max_digits) {
  if (text.empty() || text.size() > max_digits ||
      text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  return std::stoull(std::string(text));
}

JournalWriter::JournalWriter(const fs::path& path) {
  fs::create_directories(path.parent_path());
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error("cannot write the upload journal " + path.string());
}

JournalWriter::~JournalWriter() {
  ::close(fd_);
}

void JournalWriter::append(const std::string& line) {
  std::lock_guard lock(mutex_);
  std::string text = line + "\n";
  if (::write(fd_, text.data(), text.size()) != ssize_t(text.size()) || ::fdatasync(fd_) != 0)
    throw Error("cannot write the upload journal");
}

DataBlocksResult send_data_blocks(const DataBlocks& upload) {
  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t size = fs::file_size(upload.file);
  int fd = ::open(upload.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + upload.file.string());
  BlockCursor cursor(fd, size, upload.block_size);
  std::mutex failure_mutex;
  std::optional<BlockFailure> failure;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent_bytes{0}, sent_blocks{0};
  auto fail = [&](BlockFailure why) {
    std::lock_guard lock(failure_mutex);
    if (!failure) failure = std::move(why);
    stop = true;
  };
  auto worker = [&] {
    BlockSender send = upload.make_sender();
    std::string block(upload.block_size, '\0');
    while (!stop) {
      auto index = cursor.next();
      if (!index) return;
      if (upload.already_sent && upload.already_sent(*index)) continue;
      std::fill(block.begin(), block.end(), '\0');
      std::uint64_t offset = *index * upload.block_size;
      std::size_t length = std::min<std::uint64_t>(upload.block_size, size - offset);
      bool read = false;
      try {
        read = pread_all(fd, block.data(), length, offset, upload.file);
      } catch (const Error&) {
      }
      if (!read) return fail({"cannot read " + upload.file.string()});
      if (all_zero(block)) continue;
      std::uint64_t bytes = 0;
      try {
        if (auto why = send(*index, block, bytes)) return fail(*why);
      } catch (const Error& e) {  // the journal could not be written
        return fail({e.what()});
      }
      sent_bytes += bytes;
      ++sent_blocks;
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, upload.jobs); ++i) workers.emplace_back(worker);
  // Progress from this thread while the workers send.
  std::atomic<bool> done{false};
  std::thread reporter([&] {
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      if (upload.on_progress) {
        upload.on_progress(
            {cursor.scanned(), size, sent_bytes.load(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()});
      }
    }
  });
  for (auto& thread : workers) thread.join();
  done = true;
  reporter.join();
  ::close(fd);
  if (failure) {
    std::string message = failure->message +
                          "\nthe blocks sent so far are kept: run the same command again to resume";
    if (failure->refused) throw CloudRefusal(message);
    throw Error(message);
  }
  return {sent_blocks.load(), sent_bytes.load()};
}

}  // namespace kiln::upload
