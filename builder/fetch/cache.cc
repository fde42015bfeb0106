#include "builder/fetch/cache.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "builder/fetch/http.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

fs::path default_cache_dir() {
  if (const char* dir = std::getenv("KILN_CACHE"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "kiln";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/root") / ".cache" / "kiln";
}

fs::path cache_use_lock_path(const fs::path& root) {
  return root / "locks" / "cache-in-use.lock";
}

Cache::Cache(fs::path root, bool offline) : root_(std::move(root)), offline_(offline) {
  std::error_code ec;
  for (const char* dir : {"blobs/sha256", "partial", "stages", "locks", "scratch", "digests"}) {
    fs::create_directories(root_ / dir, ec);
    if (ec)
      throw Error("cannot create cache directory " + (root_ / dir).string() + ": " + ec.message());
  }
  fs::path lock = cache_use_lock_path(root_);
  use_lock_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (use_lock_ < 0) throw Error("cannot open " + lock.string() + ": " + std::strerror(errno));
  if (::flock(use_lock_, LOCK_SH | LOCK_NB) != 0) {
    log::info("waiting for kiln cache prune to finish with {}", root_.string());
    while (::flock(use_lock_, LOCK_SH) != 0 && errno == EINTR) {
    }
  }
  remove_abandoned_scratch();
}

Cache::~Cache() {
  ::close(use_lock_);
}

void Cache::mark_used(const fs::path& entry) const {
  std::error_code ec;  // a read-only cache still serves; only pruning loses the date
  fs::last_write_time(entry, fs::file_time_type::clock::now(), ec);
}

void Cache::remove_abandoned_scratch() {
  // Scratch entries end in the PID of the build that made them; an interrupted build's
  // leftovers are removed once no process has that PID.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_ / "scratch", ec)) {
    std::string name = entry.path().filename().string();
    auto dash = name.rfind('-');
    if (dash == std::string::npos) continue;
    int pid = std::atoi(name.c_str() + dash + 1);
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
  }
}

fs::path Cache::blob_path(const std::string& sha256) const {
  return root_ / "blobs/sha256" / sha256;
}

fs::path Cache::stage_path(const std::string& stage, const std::string& key) const {
  return root_ / "stages" / (stage + "-" + key.substr(0, 32));
}

fs::path Cache::lock_path(const std::string& name) const {
  return root_ / "locks" / (name + ".lock");
}

fs::path Cache::scratch_path(const std::string& name) const {
  return root_ / "scratch" / (name + "-" + std::to_string(::getpid()));
}

void Cache::publish_stage(TempPath& scratch, const fs::path& stage) {
  fs::path staged = temp_sibling(stage);
  fs::rename(scratch.path(), staged);
  scratch.release();
  TempPath staged_cleanup(staged);
  fsync_path(staged);
  // Readers hold the stage lock, so replacing an older output here cannot race them.
  fs::remove_all(stage);
  fs::rename(staged, stage);
  staged_cleanup.release();
  fsync_path(stage.parent_path());
}

StageEntry::StageEntry(Cache& cache, std::string stage, const std::string& key, bool rebuild)
    : cache_(cache),
      stage_(std::move(stage)),
      path_(cache.stage_path(stage_, key)),
      rebuild_(rebuild),
      lock_(cache.lock_path(stage_ + "-" + key.substr(0, 32))) {}

bool StageEntry::reuse() {
  if (rebuild_ || !fs::exists(path_)) return false;
  log::info("    {}: cached ({})", stage_, path_.filename().string());
  cache_.mark_used(path_);
  return true;
}

const fs::path& StageEntry::scratch() {
  if (!scratch_) {
    scratch_.emplace(cache_.scratch_path(stage_));
    fs::remove_all(scratch_->path());
    fs::create_directories(scratch_->path());
  }
  return scratch_->path();
}

void StageEntry::publish() {
  cache_.publish_stage(*scratch_, path_);
}

namespace {

bool is_local(const std::string& url) {
  return url.find("://") == std::string::npos || url.rfind("file://", 0) == 0;
}

fs::path local_path(const std::string& url) {
  return url.rfind("file://", 0) == 0 ? fs::path(url.substr(7)) : fs::path(url);
}

/// Prints a progress line at most every two seconds during a download.
class DownloadProgress {
 public:
  explicit DownloadProgress(std::string label) : label_(std::move(label)) {}
  void operator()(const http::Progress& p) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(2)) return;
    last_ = now;
    double seconds = std::chrono::duration<double>(now - start_).count();
    log::info("    {}: {}{} ({}/s)", label_, log::human_bytes(p.received),
              p.total ? " of " + log::human_bytes(p.total) : "",
              log::human_bytes(p.received / std::max(seconds, 0.1)));
  }

 private:
  std::string label_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

Error checksum_mismatch(const std::string& url, const std::string& expected,
                        const std::string& actual) {
  return Error("checksum mismatch for " + url + "\n  expected sha256: " + expected +
               "\n  actual sha256:   " + actual);
}

}  // namespace

fs::path Cache::fetch(const std::string& url, const std::string& sha256, const std::string& label) {
  if (!is_sha256_hex(sha256)) throw Error("no valid SHA-256 to verify " + url + " against");
  fs::path blob = blob_path(sha256);
  if (fs::exists(blob)) {
    log::debug("    {}: cached ({})", label, blob.string());
    mark_used(blob);
    return blob;
  }
  std::string url_key = sha256_hex(url).substr(0, 32);
  FileLock lock(lock_path("download-" + url_key));
  if (fs::exists(blob)) return blob;  // another build fetched it while we waited

  if (is_local(url)) {
    fs::path source = local_path(url);
    if (!fs::is_regular_file(source))
      throw Error("mirror file " + source.string() + " does not exist");
    fs::path staged = temp_sibling(blob);
    TempPath cleanup(staged);
    fs::copy_file(source, staged);
    std::string actual = sha256_file(staged);
    if (actual != sha256) throw checksum_mismatch(url, sha256, actual);
    fs::rename(staged, blob);
    cleanup.release();
    return blob;
  }
  if (offline_) {
    throw OfflineMiss("--offline: " + label + " is not in the cache (" + url + ", sha256 " +
                      sha256 + "); run the build once without --offline to fill " + root_.string());
  }

  fs::path partial = root_ / "partial" / url_key;
  DownloadProgress progress(label);
  const int attempts = 5;
  std::string last_error;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    http::GetResult result = http::download(url, partial, std::ref(progress));
    if (result.ok()) {
      std::string actual = sha256_file(partial);
      if (actual != sha256) {
        // A wrong body must not poison later attempts or resumes.
        fs::remove(partial);
        throw checksum_mismatch(url, sha256, actual);
      }
      fsync_path(partial);
      fs::rename(partial, blob);
      fsync_path(blob.parent_path());
      log::info("    {}: {} verified", label, log::human_bytes(fs::file_size(blob)));
      return blob;
    }
    last_error = result.error;
    if (result.status == 404 || result.status == 403 || result.status == 410) break;
    std::error_code ec;
    auto have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    log::info("    {}: attempt {}/{} failed after {} ({}){}", label, attempt, attempts,
              log::human_bytes(have), result.error,
              attempt < attempts ? "; retrying with resume" : "");
    if (attempt < attempts)
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << std::min(attempt, 3)));
  }
  std::error_code ec;
  auto have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
  throw Error("download of " + url + " failed: " + last_error +
              (have ? " (" + std::to_string(have) + " bytes kept for resuming)" : ""));
}

std::string Cache::fetch_published_digest(const std::string& sha256_url) {
  fs::path remembered = root_ / "digests" / sha256_hex(sha256_url).substr(0, 32);
  if (fs::exists(remembered)) return read_file(remembered);
  std::string body;
  if (is_local(sha256_url)) {
    fs::path path = local_path(sha256_url);
    if (!fs::is_regular_file(path))
      throw Error("checksum file " + path.string() + " does not exist");
    body = read_file(path);
  } else {
    if (offline_) {
      throw OfflineMiss("--offline: checksum " + sha256_url +
                        " is not in the cache; run once without --offline");
    }
    http::GetResult result;
    for (int attempt = 1; attempt <= 3; ++attempt) {
      body.clear();
      result = http::get_text(sha256_url, body);
      if (result.ok() || result.status == 404) break;
    }
    if (!result.ok()) throw Error("cannot fetch checksum " + sha256_url + ": " + result.error);
  }
  std::string digest = body.substr(0, body.find_first_of(" \t\r\n"));
  if (!is_sha256_hex(digest))
    throw Error("checksum file " + sha256_url + " does not start with a SHA-256 digest");
  for (char& c : digest) c = char(std::tolower(c));
  write_file_atomic(remembered, digest);
  return digest;
}

}  // namespace kiln
