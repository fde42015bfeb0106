#include "firstboot/update/slot_install.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "builder/update/zstd_frame_reader.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "firstboot/netroot/http_download.h"

namespace kiln::update {
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kCheckpointBytes = 32ull << 20;
constexpr int kAttempts = 8;

struct Fd {
  int fd;
  Fd(const fs::path& path, int flags) : fd(::open(path.c_str(), flags | O_CLOEXEC, 0600)) {
    if (fd < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
  }
  ~Fd() { ::close(fd); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

/// SHA-256 of the first `size` bytes as they are on the device, not as the page cache
/// remembers writing them.
std::string read_back_sha256(const fs::path& device, std::uint64_t size) {
  Fd in(device, O_RDONLY);
  ::posix_fadvise(in.fd, 0, 0, POSIX_FADV_DONTNEED);
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  for (std::uint64_t at = 0; at < size;) {
    std::size_t take = std::min<std::uint64_t>(buffer.size(), size - at);
    if (!pread_all(in.fd, buffer.data(), take, at, device))
      throw Error(device.string() + " ended before the file did");
    hash.update(std::string_view(buffer.data(), take));
    at += take;
    // Reading back a whole slot would otherwise fill the page cache with it.
    if (at % (64ull << 20) == 0) ::posix_fadvise(in.fd, 0, at, POSIX_FADV_DONTNEED);
  }
  ::posix_fadvise(in.fd, 0, 0, POSIX_FADV_DONTNEED);
  return hash.hex();
}

/// Runs `attempt` until it completes, at most kAttempts times with a capped back-off between.
void with_retries(const std::string& what, const Say& say, const std::function<void()>& attempt) {
  int delay = 2;
  for (int n = 1;; ++n) {
    try {
      attempt();
      return;
    } catch (const Refusal&) {
      throw;  // what was fetched is wrong, and fetching it again gives the same
    } catch (const std::runtime_error& e) {
      if (n == kAttempts)
        throw Error(fmt::format("{}: {} (gave up after {} attempts; the next check resumes)", what,
                                e.what(), n));
      say(fmt::format("  attempt {} failed: {}; retrying in {} s", n, e.what(), delay));
      std::this_thread::sleep_for(std::chrono::seconds(delay));
      delay = std::min(delay * 2, 30);
    }
  }
}

}  // namespace

std::string file_url(const std::string& base, const std::string& name) {
  return base + (!base.empty() && base.back() == '/' ? "" : "/") + name;
}

std::uint64_t device_size(const fs::path& device) {
  Fd fd(device, O_RDONLY);
  off_t end = ::lseek(fd.fd, 0, SEEK_END);
  if (end < 0) throw Error("cannot size " + device.string());
  return static_cast<std::uint64_t>(end);
}

namespace {

/// A slot partition being written from byte 0: resumes where the last synced checkpoint was,
/// and checks what is on the device against the signed index at the end.
class SlotWrite {
 public:
  /// `resume_unit`: the resume point is rounded down to a multiple of it (the frame size
  /// when the root comes as zstd frames; 1 otherwise).
  SlotWrite(const UpdateFile& file, const fs::path& device, const std::string& version,
            const std::string& role, NodeState& state, const Say& say, std::uint64_t resume_unit)
      : file_(file),
        device_(device),
        version_(version),
        role_(role),
        state_(state),
        say_(say),
        out_(device, O_WRONLY) {
    if (device_size(device) < file.size) {
      throw Error(
          fmt::format("{} is {} bytes but {} {} needs {}: this release does not fit the "
                      "slot (disk.root of the image's recipe)",
                      device.string(), device_size(device), role, version, file.size));
    }
    NodeState::Progress progress = state.progress();
    // The slot holds the same bytes however they were fetched, so a download of the whole
    // root and one of its frames resume each other.
    if (progress.version == version && progress.role == role && progress.bytes <= file.size) {
      synced_ = progress.bytes / resume_unit * resume_unit;
      if (synced_ > 0) say(fmt::format("  resuming {} at {} MiB", file.name, synced_ >> 20));
    }
    last_report_ = synced_;
  }

  std::uint64_t synced() const { return synced_; }

  void write(std::uint64_t offset, std::string_view data) {
    pwrite_all(out_.fd, data, offset, device_);
    std::uint64_t have = offset + data.size();
    if (have - last_report_ >= file_.size / 10 + 1 || have == file_.size) {
      say_(fmt::format("  {}: {} of {} MiB", file_.name, have >> 20, file_.size >> 20));
      last_report_ = have;
    }
  }

  /// Makes `have` bytes the resume point once they are 32 MiB past the last one.
  void maybe_checkpoint(std::uint64_t have) {
    if (have - synced_ >= kCheckpointBytes) checkpoint(have);
  }

  void checkpoint(std::uint64_t have) {
    if (::fdatasync(out_.fd) != 0) throw Error("cannot sync " + device_.string());
    // Written pages are on the device now: the page cache need not keep them.
    ::posix_fadvise(out_.fd, 0, 0, POSIX_FADV_DONTNEED);
    synced_ = have;
    state_.set_progress({version_, role_, synced_});
  }

  /// Syncs the whole file, reads it back from the device and checks its SHA-256.
  void finish() {
    checkpoint(file_.size);
    std::string digest = read_back_sha256(device_, file_.size);
    if (digest != file_.sha256) {
      state_.clear_progress();  // start over next time: what is on the slot is not the release
      throw Refusal(fmt::format("{} on {} has SHA-256 {}, not the {} the signed index lists",
                                file_.name, device_.string(), digest, file_.sha256));
    }
    say_(fmt::format("  {} written and its SHA-256 checked", file_.name));
  }

 private:
  const UpdateFile& file_;
  const fs::path& device_;
  const std::string version_, role_;
  NodeState& state_;
  const Say& say_;
  Fd out_;
  std::uint64_t synced_ = 0, last_report_ = 0;
};

}  // namespace

void write_to_slot(const std::string& base_url, const UpdateFile& file, const fs::path& device,
                   const std::string& version, const std::string& role, NodeState& state,
                   const Say& say) {
  SlotWrite slot(file, device, version, role, state, say, 1);
  auto url = firstboot::parse_http_url(file_url(base_url, file.name));
  with_retries("downloading " + file.name, say, [&] {
    std::uint64_t have = slot.synced();  // bytes after the last checkpoint are written again
    firstboot::fetch_range(url, have, file.size, [&](const char* data, std::size_t size) {
      slot.write(have, std::string_view(data, size));
      have += size;
      slot.maybe_checkpoint(have);
    });
  });
  slot.finish();
}

void write_frames_to_slot(const std::string& base_url, const UpdateFile& root,
                          const ZstdFrames& zstd, const fs::path& device,
                          const std::string& version, NodeState& state, const Say& say) {
  SlotWrite slot(root, device, version, "root", state, say, zstd.frame_size);
  const bool from_start = slot.synced() == 0;
  auto url = firstboot::parse_http_url(file_url(base_url, zstd.file.name));
  with_retries("downloading " + zstd.file.name, say, [&] {
    // A broken transfer starts again at the frame after the last checkpoint.
    const std::uint64_t first = slot.synced() / zstd.frame_size;
    std::uint64_t from = 0;
    for (std::uint64_t i = 0; i < first; ++i) from += zstd.frames[i];
    ZstdFrameReader reader(
        zstd.frame_size, root.size, first,
        [&](std::uint64_t offset, std::string_view data) { slot.write(offset, data); },
        [&](std::uint64_t end) { slot.maybe_checkpoint(end); });
    firstboot::fetch_range(url, from, zstd.file.size, [&](const char* data, std::size_t size) {
      try {
        reader.feed(std::string_view(data, size));
      } catch (const ZstdFrameError& e) {
        throw BadFrames(zstd.file.name + ": " + e.what());
      }
    });
    if (!reader.finished()) throw BadFrames(zstd.file.name + " ends inside a frame");
  });
  try {
    slot.finish();
  } catch (const Refusal& e) {
    if (from_start) throw BadFrames(zstd.file.name + " does not decode to the root: " + e.what());
    throw;
  }
}

void download_checked(const std::string& base_url, const UpdateFile& file, const fs::path& out,
                      const Say& say) {
  auto url = firstboot::parse_http_url(file_url(base_url, file.name));
  with_retries("downloading " + file.name, say, [&] {
    Fd fd(out, O_WRONLY | O_CREAT | O_TRUNC);
    std::uint64_t have = 0;
    firstboot::fetch_range(url, 0, file.size, [&](const char* data, std::size_t size) {
      pwrite_all(fd.fd, std::string_view(data, size), have, out);
      have += size;
    });
  });
  if (sha256_file(out) != file.sha256)
    throw Refusal(file.name + " does not have the SHA-256 the signed index lists");
}

}  // namespace kiln::update
