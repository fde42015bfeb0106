#include "builder/upload/gcs_object.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "builder/upload/google_credentials.h"
#include "builder/util/base64.h"
#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln::google {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxJournalLine = 256;
constexpr std::uint64_t kMaxParts = 32;  // sources one compose request takes
constexpr std::uint64_t kMinPart = 32 << 20;

std::array<std::uint32_t, 256> crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    table[i] = crc;
  }
  return table;
}

std::string part_name(const ObjectUpload& upload, const std::string& token, std::uint64_t index) {
  return fmt::format("{}.kiln-part-{}-{:02}", upload.object, token, index);
}

std::uint32_t file_crc32c(const fs::path& file) {
  std::uint32_t crc = 0;
  for_each_piece(file, [&](std::string_view piece) { crc = crc32c(crc, piece); });
  return crc;
}

/// Object names go into URL paths and queries percent-encoded as a whole ('/' too).
std::string object_path(const std::string& bucket, const std::string& object) {
  return "/storage/v1/b/" + bucket + "/o/" + upload::form_encode(object);
}

class Storage {
 public:
  Storage(const StorageAccess& access, const std::function<void(const std::string&)>& say)
      : access_(access), say_(say), session_(upload::TlsSettings{}, {}) {}
  upload::RestReply send(upload::RestRequest request, int attempts = 6) {
    request.url = access_.endpoint + request.url;
    if (!access_.token.empty()) request.headers.push_back("Authorization: Bearer " + access_.token);
    return upload::send_with_retries(session_, request, attempts, say_);
  }

 private:
  const StorageAccess& access_;
  const std::function<void(const std::string&)>& say_;
  upload::RestSession session_;
};

void delete_parts(Storage& storage, const ObjectUpload& upload, const std::string& token,
                  std::uint64_t parts, const std::function<void(const std::string&)>& say) {
  for (std::uint64_t index = 0; index < parts; ++index) {
    std::string name = part_name(upload, token, index);
    auto removed = storage.send({.method = "DELETE",
                                 .url = object_path(upload.bucket, name),
                                 .what = fmt::format("delete part {}", index)},
                                3);
    if (!removed.success() && removed.status != 404)
      say(fmt::format("could not delete part {} (HTTP {}); it is {}", index, removed.status, name));
  }
}

}  // namespace

std::uint32_t crc32c(std::uint32_t crc, std::string_view data) {
  static const std::array<std::uint32_t, 256> table = crc32c_table();
  crc = ~crc;
  for (unsigned char byte : data) crc = table[(crc ^ byte) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::string crc32c_base64(std::uint32_t crc) {
  const char bytes[4] = {char(crc >> 24), char(crc >> 16), char(crc >> 8), char(crc)};
  return base64_encode(std::string_view(bytes, 4));
}

std::uint64_t part_size_for(std::uint64_t file_size) {
  std::uint64_t part = (file_size + kMaxParts - 1) / kMaxParts;
  part = (part + (1 << 20) - 1) & ~std::uint64_t((1 << 20) - 1);
  return std::max(part, kMinPart);
}

ObjectJournal parse_object_journal(const std::string& text) {
  ObjectJournal journal;
  upload::for_each_journal_line(text, kMaxJournalLine,
                                [&](std::string_view key, std::string_view value) {
                                  if (key == "upload") {
                                    journal = ObjectJournal{};
                                    journal.token = value;
                                  } else if (key == "part") {  // "part N CRC32C"
                                    std::size_t gap = value.find(' ');
                                    auto number = upload::journal_number(value.substr(0, gap), 3);
                                    if (gap != std::string_view::npos && number)
                                      journal.parts[*number] = value.substr(gap + 1);
                                  }
                                });
  return journal;
}

ObjectInfo parse_object_info(const std::string& body) {
  ObjectInfo info;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return info;
  auto text = [&](const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  info.name = text("name");
  info.crc32c = text("crc32c");
  // A decimal string, as JSON numbers need not hold 64 bits; some servers send a number.
  auto size = doc.find("size");
  if (size != doc.end() && size->is_number_unsigned()) {
    info.size = size->get<std::uint64_t>();
  } else {
    std::string digits = text("size");
    if (digits.empty() || digits.size() > 19 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      return info;
    info.size = std::stoull(digits);
  }
  info.valid = !info.name.empty();
  return info;
}

ObjectResult upload_object(const StorageAccess& access, const ObjectUpload& upload,
                           const std::function<void(const upload::UploadProgress&)>& on_progress,
                           const std::function<void(const std::string&)>& say) {
  const auto started = std::chrono::steady_clock::now();
  ObjectResult result;
  result.size = fs::file_size(upload.file);
  result.url = "https://storage.googleapis.com/" + upload.bucket + "/" + upload.object;
  say("reading " + upload.file.filename().string() + " for its CRC32C");
  result.crc32c = crc32c_base64(file_crc32c(upload.file));
  Storage storage(access, say);
  const std::uint64_t part_size = part_size_for(result.size);
  result.parts = std::max<std::uint64_t>(1, (result.size + part_size - 1) / part_size);

  ObjectJournal journal;
  if (fs::exists(upload.journal))
    journal = parse_object_journal(read_file_prefix(upload.journal, 1 << 20));
  auto existing = storage.send(
      {.url = object_path(upload.bucket, upload.object), .what = "read object " + upload.object});
  if (existing.success()) {
    ObjectInfo info = parse_object_info(existing.body);
    if (info.valid && info.crc32c == result.crc32c && info.size == result.size) {
      say(fmt::format("already uploaded: gs://{}/{}", upload.bucket, upload.object));
      // A run stopped between compose and cleanup left its parts: remove them now.
      if (!journal.parts.empty()) delete_parts(storage, upload, journal.token, result.parts, say);
      result.already_uploaded = true;
      return result;
    }
    throw upload::CloudRefusal(fmt::format(
        "gs://{}/{} already exists and holds other data: give another --object, or delete it",
        upload.bucket, upload.object));
  }
  if (existing.status != 404) throw_failure("read object " + upload.object, existing);

  upload::JournalWriter writer(upload.journal);
  if (journal.token.empty()) {
    journal.token = upload::random_token(8);
    writer.append("upload " + journal.token);
  }

  // A part from an earlier run counts only if the bucket still holds it, unchanged.
  std::map<std::uint64_t, std::string> done;
  for (const auto& [index, crc] : journal.parts) {
    auto head =
        storage.send({.url = object_path(upload.bucket, part_name(upload, journal.token, index)),
                      .what = fmt::format("read part {}", index)});
    if (head.success() && parse_object_info(head.body).crc32c == crc) done[index] = crc;
  }
  result.parts_resumed = done.size();
  if (!done.empty())
    say(fmt::format("resuming: {} of {} parts arrived before", done.size(), result.parts));

  int fd = ::open(upload.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot read " + upload.file.string());
  std::mutex mutex;
  std::string failure;
  bool refused = false;
  std::atomic<std::uint64_t> next{0}, sent{0};
  std::atomic<bool> stop{false};
  auto worker = [&] {
    Storage own(access, say);
    std::string part;
    while (!stop) {
      std::uint64_t index = next++;
      if (index >= result.parts) return;
      {
        std::lock_guard lock(mutex);
        if (done.count(index)) continue;
      }
      std::uint64_t offset = index * part_size;
      part.assign(std::min(part_size, result.size - offset), '\0');
      bool read = false;
      try {
        read = pread_all(fd, part.data(), part.size(), offset, upload.file);
      } catch (const Error&) {
      }
      if (!read) {
        std::lock_guard lock(mutex);
        failure = "cannot read " + upload.file.string();
        stop = true;
        return;
      }
      std::string crc = crc32c_base64(crc32c(0, part));
      std::string name = part_name(upload, journal.token, index);
      auto reply = own.send({.method = "POST",
                             .url = "/upload/storage/v1/b/" + upload.bucket +
                                    "/o?uploadType=media&name=" + upload::form_encode(name),
                             .body = part,
                             .content_type = "application/octet-stream",
                             .what = fmt::format("upload part {}", index),
                             .timeout_seconds = 900});
      std::lock_guard lock(mutex);
      std::string why;
      if (!reply.success()) {
        why = fmt::format("upload part {}: {}", index,
                          reply.answered()
                              ? fmt::format("HTTP {}: {}", reply.status, error_text(reply.body))
                              : reply.transport_error);
        refused = reply.answered() && reply.status < 500;
      } else if (parse_object_info(reply.body).crc32c != crc) {
        why = fmt::format("upload part {}: Cloud Storage's CRC32C of it differs from the file's",
                          index);
      }
      if (why.empty()) {
        try {
          writer.append(fmt::format("part {} {}", index, crc));
        } catch (const Error& e) {
          why = e.what();
        }
      }
      if (!why.empty()) {
        if (failure.empty()) failure = why;
        stop = true;
        return;
      }
      done[index] = crc;
      sent += part.size();
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < std::clamp<int>(upload.jobs, 1, 32); ++i) workers.emplace_back(worker);
  std::atomic<bool> finished{false};
  std::thread reporter([&] {
    while (!finished) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      if (on_progress) {
        std::uint64_t bytes = sent.load();
        on_progress(
            {std::min(result.size, bytes + result.parts_resumed * part_size), result.size, bytes,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()});
      }
    }
  });
  for (auto& thread : workers) thread.join();
  finished = true;
  reporter.join();
  ::close(fd);
  result.bytes_sent = sent;
  if (!failure.empty()) {
    failure += "\nthe parts sent so far are kept: run the same command again to resume";
    if (refused) throw upload::CloudRefusal(failure);
    throw Error(failure);
  }

  nlohmann::json sources = nlohmann::json::array();
  for (std::uint64_t index = 0; index < result.parts; ++index)
    sources.push_back({{"name", part_name(upload, journal.token, index)}});
  nlohmann::json compose = {
      {"sourceObjects", sources},
      {"destination", {{"contentType", upload.content_type}, {"metadata", upload.metadata}}}};
  auto composed = storage.send({.method = "POST",
                                .url = object_path(upload.bucket, upload.object) + "/compose",
                                .body = compose.dump(),
                                .what = "compose " + upload.object});
  if (!composed.success()) throw_failure("compose " + upload.object, composed);
  ObjectInfo info = parse_object_info(composed.body);
  if (info.crc32c != result.crc32c || info.size != result.size) {
    throw Error(fmt::format(
        "compose {}: the object's CRC32C ({}) or size ({}) differs from the file's ({}, {})",
        upload.object, upload::printable(info.crc32c, 16), info.size, result.crc32c, result.size));
  }
  delete_parts(storage, upload, journal.token, result.parts, say);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace kiln::google
