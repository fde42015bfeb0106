#pragma once

// A large file into a Cloud Storage bucket as a composite object: parts uploaded side by side,
// each checked against its CRC32C, then composed into one object whose CRC32C must equal the
// file's. A part that arrived stays in the bucket, so running the same command again sends
// only what is missing, and no resumable-session URL (which would let anyone holding it
// write) is ever kept.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "builder/upload/data_blocks.h"
#include "builder/upload/rest_session.h"

namespace kiln::google {

/// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start).
std::uint32_t crc32c(std::uint32_t crc, std::string_view data);

/// Cloud Storage's spelling of a CRC32C: base64 of its four big-endian bytes.
std::string crc32c_base64(std::uint32_t crc);

/// At most 32 parts (one compose request), none under 32 MiB, whole MiB.
std::uint64_t part_size_for(std::uint64_t file_size);

struct ObjectUpload {
  std::filesystem::path file;
  std::string bucket, object;
  std::string content_type = "application/gzip";
  std::map<std::string, std::string> metadata;
  std::filesystem::path journal;
  int jobs = 4;
};

struct ObjectResult {
  std::string url;  ///< https://storage.googleapis.com/BUCKET/OBJECT, as images.insert takes it
  std::uint64_t size = 0, bytes_sent = 0;
  std::uint64_t parts = 0, parts_resumed = 0;
  bool already_uploaded = false;
  std::string crc32c;
  double seconds = 0;
};

/// Where Cloud Storage is: https://storage.googleapis.com, or STORAGE_EMULATOR_HOST (as
/// Google's client libraries read it), and the token its requests carry ("" for the
/// emulator, which the libraries also call without credentials).
struct StorageAccess {
  std::string endpoint = "https://storage.googleapis.com";
  std::string token;
};

/// Uploads `upload.file` as described above; an object of the same name holding other data is
/// refused. Throws Error/CloudRefusal with the service's words.
ObjectResult upload_object(const StorageAccess& access, const ObjectUpload& upload,
                           const std::function<void(const upload::UploadProgress&)>& on_progress,
                           const std::function<void(const std::string&)>& say);

/// The journal of an object upload: its token (naming the parts) and each part that arrived
/// with its CRC32C. A line cut short by a crash and unknown lines are ignored.
struct ObjectJournal {
  std::string token;
  std::map<std::uint64_t, std::string> parts;
};
ObjectJournal parse_object_journal(const std::string& text);

/// Reads a Cloud Storage object resource: its name, size and crc32c (bounded, capped body).
struct ObjectInfo {
  bool valid = false;
  std::string name, crc32c;
  std::uint64_t size = 0;
};
ObjectInfo parse_object_info(const std::string& body);

}  // namespace kiln::google
