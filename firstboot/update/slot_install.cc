#include "firstboot/update/slot_install.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

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

void write_to_slot(const std::string& base_url, const UpdateFile& file, const fs::path& device,
                   const std::string& version, const std::string& role, NodeState& state,
                   const Say& say) {
  if (device_size(device) < file.size) {
    throw Error(
        fmt::format("{} is {} bytes but {} {} needs {}: this release does not fit the "
                    "slot (disk.root of the image's recipe)",
                    device.string(), device_size(device), role, version, file.size));
  }
  NodeState::Progress progress = state.progress();
  std::uint64_t have = 0;
  if (progress.version == version && progress.role == role && progress.bytes <= file.size) {
    have = progress.bytes;
    if (have > 0) say(fmt::format("  resuming {} at {} MiB", file.name, have >> 20));
  }
  Fd out(device, O_WRONLY);
  auto url = firstboot::parse_http_url(file_url(base_url, file.name));
  std::uint64_t synced = have, last_report = have;
  auto checkpoint = [&] {
    if (::fdatasync(out.fd) != 0) throw Error("cannot sync " + device.string());
    // Written pages are on the device now: the page cache need not keep them.
    ::posix_fadvise(out.fd, 0, 0, POSIX_FADV_DONTNEED);
    synced = have;
    state.set_progress({version, role, synced});
  };
  with_retries("downloading " + file.name, say, [&] {
    have = synced;  // bytes after the last checkpoint are written again
    firstboot::fetch_range(url, have, file.size, [&](const char* data, std::size_t size) {
      pwrite_all(out.fd, std::string_view(data, size), have, device);
      have += size;
      if (have - synced >= kCheckpointBytes) checkpoint();
      if (have - last_report >= file.size / 10 + 1 || have == file.size) {
        say(fmt::format("  {}: {} of {} MiB", file.name, have >> 20, file.size >> 20));
        last_report = have;
      }
    });
  });
  checkpoint();
  std::string digest = read_back_sha256(device, file.size);
  if (digest != file.sha256) {
    state.clear_progress();  // start over next time: what is on the slot is not the release
    throw Refusal(fmt::format("{} on {} has SHA-256 {}, not the {} the signed index lists",
                              file.name, device.string(), digest, file.sha256));
  }
  say(fmt::format("  {} written and its SHA-256 checked", file.name));
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
