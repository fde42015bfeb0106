#include "builder/inspect/disk_reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <libnbd.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {
namespace fs = std::filesystem;

std::string DiskReader::read(std::uint64_t offset, std::size_t count) {
  std::string bytes(count, '\0');
  read(offset, bytes.data(), count);
  return bytes;
}

namespace {

void check_range(const fs::path& image, std::uint64_t disk_size, std::uint64_t offset,
                 std::size_t count) {
  if (offset > disk_size || count > disk_size - offset) {
    throw Error(fmt::format("{}: a read of {} bytes at {} lies beyond the disk's {} bytes",
                            image.string(), count, offset, disk_size));
  }
}

class RawDisk final : public DiskReader {
 public:
  explicit RawDisk(fs::path image) : image_(std::move(image)) {
    fd_ = ::open(image_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error("cannot open " + image_.string() + ": " + std::strerror(errno));
    size_ = fs::file_size(image_);
  }
  ~RawDisk() override { ::close(fd_); }
  std::uint64_t size() const override { return size_; }
  bool random_access() const override { return true; }
  void rewind() override {}
  void read(std::uint64_t offset, char* out, std::size_t count) override {
    check_range(image_, size_, offset, count);
    if (!pread_all(fd_, out, count, offset, image_))
      throw Error(image_.string() + " ends before byte " + std::to_string(offset + count));
  }

 private:
  fs::path image_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

class QemuDisk final : public DiskReader {
 public:
  QemuDisk(fs::path image, const std::string& blockdev)
      : image_(std::move(image)), nbd_(nbd_create()) {
    if (!nbd_) throw Error(std::string("libnbd: ") + nbd_get_error());
    // qemu-nbd serves the image read-only on a socket libnbd made for it; the "json:"
    // filename carries the format, so qemu never guesses it from untrusted bytes.
    std::string spec = "json:" + blockdev;
    std::vector<char*> argv;
    std::string program = "qemu-nbd", read_only = "--read-only";
    for (std::string* arg : {&program, &read_only, &spec}) argv.push_back(arg->data());
    argv.push_back(nullptr);
    if (nbd_connect_systemd_socket_activation(nbd_, argv.data()) == -1) {
      std::string why = nbd_get_error() ? nbd_get_error() : "unknown error";
      nbd_close(nbd_);
      throw Error(
          fmt::format("cannot read {} through qemu's block layer (qemu-nbd, from qemu-utils): {}",
                      image_.string(), why));
    }
    std::int64_t size = nbd_get_size(nbd_);
    if (size < 0) {
      nbd_close(nbd_);
      throw Error(image_.string() + ": qemu-nbd reports no size");
    }
    size_ = std::uint64_t(size);
  }
  ~QemuDisk() override {
    nbd_shutdown(nbd_, 0);
    nbd_close(nbd_);  // also reaps qemu-nbd
  }
  std::uint64_t size() const override { return size_; }
  bool random_access() const override { return true; }
  void rewind() override {}
  void read(std::uint64_t offset, char* out, std::size_t count) override {
    check_range(image_, size_, offset, count);
    if (offset >= window_offset_ && offset + count <= window_offset_ + window_.size()) {
      std::memcpy(out, window_.data() + (offset - window_offset_), count);
      next_ = offset + count;
      return;
    }
    // Reading on from where the last read ended (the root, 1 MiB at a time): fetch a larger
    // window ahead, in requests qemu-nbd serves in parallel, so decompressing qcow2 and VMDK
    // clusters keeps every core busy. Other reads (FAT clusters) are read as asked.
    bool sequential = offset == next_ && count < kWindow;
    next_ = offset + count;
    if (!sequential) {
      fetch(offset, out, count);
      return;
    }
    window_offset_ = offset;
    window_.resize(std::size_t(std::min<std::uint64_t>(kWindow, size_ - offset)));
    fetch(offset, window_.data(), window_.size());
    std::memcpy(out, window_.data(), count);
  }

 private:
  static constexpr std::size_t kWindow = 32u << 20;
  static constexpr std::size_t kRequest = 2u << 20;  // NBD servers cap one (qemu-nbd at 32 MiB)

  /// Reads [offset, offset + count) as 2 MiB requests, all in flight at once.
  void fetch(std::uint64_t offset, char* out, std::size_t count) {
    std::vector<std::int64_t> cookies;
    for (std::size_t done = 0; done < count; done += kRequest) {
      std::size_t take = std::min(kRequest, count - done);
      std::int64_t cookie =
          nbd_aio_pread(nbd_, out + done, take, offset + done, NBD_NULL_COMPLETION, 0);
      if (cookie == -1) fail(offset + done);
      cookies.push_back(cookie);
    }
    for (std::int64_t cookie : cookies) {
      for (;;) {
        int completed = nbd_aio_command_completed(nbd_, std::uint64_t(cookie));
        if (completed == 1) break;
        if (completed == -1 || nbd_poll(nbd_, -1) == -1) fail(offset);
      }
    }
  }
  [[noreturn]] void fail(std::uint64_t offset) {
    const char* why = nbd_get_error();
    throw Error(fmt::format("{}: cannot read at byte {}: {}", image_.string(), offset,
                            why ? why : "unknown error"));
  }

  fs::path image_;
  struct nbd_handle* nbd_;
  std::uint64_t size_ = 0;
  std::string window_;
  std::uint64_t window_offset_ = 0;
  std::uint64_t next_ = ~std::uint64_t(0);
};

class StreamedDisk final : public DiskReader {
 public:
  StreamedDisk(fs::path image, std::string member)
      : image_(std::move(image)), member_(std::move(member)) {
    open_checked();
  }
  ~StreamedDisk() override { archive_read_free(archive_); }
  std::uint64_t size() const override { return size_; }
  bool random_access() const override { return false; }
  void rewind() override {
    archive_read_free(archive_);
    archive_ = nullptr;
    open_checked();
  }
  void read(std::uint64_t offset, char* out, std::size_t count) override {
    if (offset < position_) {
      throw Error(fmt::format("{}: a compressed image is read forward only (byte {} after {})",
                              image_.string(), offset, position_));
    }
    std::vector<char> skip(offset > position_ ? 1u << 20 : 0);
    while (position_ < offset) {
      std::size_t take = std::size_t(std::min<std::uint64_t>(skip.size(), offset - position_));
      pull(skip.data(), take);
    }
    pull(out, count);
  }

 private:
  void open_checked() {
    try {
      open();
    } catch (...) {
      archive_read_free(archive_);
      archive_ = nullptr;
      throw;
    }
  }
  void open() {
    archive_ = archive_read_new();
    position_ = 0;
    archive_read_support_filter_zstd(archive_);
    archive_read_support_filter_gzip(archive_);
    if (member_.empty()) {
      archive_read_support_format_raw(archive_);
    } else {
      archive_read_support_format_tar(archive_);
      archive_read_support_format_gnutar(archive_);
    }
    if (archive_read_open_filename(archive_, image_.c_str(), 1 << 20) != ARCHIVE_OK)
      throw Error("cannot read " + image_.string() + ": " + archive_error_string(archive_));
    // A tar names at most a few members; never look at more than a handful.
    for (int entries = 0;; ++entries) {
      struct archive_entry* entry = nullptr;
      int status = archive_read_next_header(archive_, &entry);
      if (status == ARCHIVE_EOF || entries == 16) {
        throw Error(
            fmt::format("{} holds no {}", image_.string(), member_.empty() ? "data" : member_));
      }
      if (status != ARCHIVE_OK && status != ARCHIVE_WARN)
        throw Error("cannot read " + image_.string() + ": " + archive_error_string(archive_));
      if (member_.empty() || member_ == archive_entry_pathname(entry)) {
        size_ = archive_entry_size_is_set(entry) ? std::uint64_t(archive_entry_size(entry)) : 0;
        return;
      }
    }
  }
  void pull(char* out, std::size_t count) {
    while (count > 0) {
      la_ssize_t n = archive_read_data(archive_, out, count);
      if (n < 0)
        throw Error("cannot decompress " + image_.string() + ": " + archive_error_string(archive_));
      if (n == 0)
        throw Error(fmt::format("{} ends at byte {} of its disk", image_.string(), position_));
      out += n, count -= std::size_t(n), position_ += std::uint64_t(n);
    }
  }

  fs::path image_;
  std::string member_;
  struct archive* archive_ = nullptr;
  std::uint64_t position_ = 0;
  std::uint64_t size_ = 0;
};

}  // namespace

std::unique_ptr<DiskReader> open_raw_disk(const fs::path& image) {
  return std::make_unique<RawDisk>(image);
}

std::unique_ptr<DiskReader> open_qemu_disk(const fs::path& image, const std::string& blockdev) {
  return std::make_unique<QemuDisk>(image, blockdev);
}

std::unique_ptr<DiskReader> open_streamed_disk(const fs::path& image,
                                               const std::string& tar_member) {
  return std::make_unique<StreamedDisk>(image, tar_member);
}

}  // namespace kiln
