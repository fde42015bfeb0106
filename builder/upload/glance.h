#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "builder/upload/keystone.h"
#include "builder/upload/rest_session.h"

namespace kiln::openstack {

/// An image as Glance's v2 API shows it: the fields kiln checks and every string property.
struct GlanceImage {
  std::string id, name, status, disk_format, container_format, visibility;
  std::string checksum;               ///< MD5, Glance's legacy checksum
  std::string hash_algo, hash_value;  ///< os_hash_algo (sha512) and its hex digest
  std::uint64_t size = 0;
  std::map<std::string, std::string> properties;  ///< every top-level string field
};

/// Parses one image document (GET /v2/images/ID); nullopt when it is not one. Bounded:
/// capped by the session, ids and digests checked for length and characters.
std::optional<GlanceImage> parse_image(const std::string& body);

/// The images of a list answer (GET /v2/images?name=…); malformed entries are skipped.
std::vector<GlanceImage> parse_image_list(const std::string& body);

/// What kiln asks Glance to create: formats, visibility, minimum disk and the properties
/// that tell Nova how to boot it.
struct ImageRequest {
  std::string name;
  std::string disk_format;  ///< qcow2 or raw
  std::string container_format = "bare";
  std::string visibility = "private";
  std::uint64_t min_disk_gib = 0;
  std::map<std::string, std::string> properties;
  std::vector<std::string> tags;
};

/// The JSON body of POST /v2/images for `request`.
std::string create_image_body(const ImageRequest& request);

/// What an earlier run of the same upload left in its journal: the image it created (the
/// last one named). Glance's own state of that image says how far the run got. Lines it does
/// not know, and a last line a crash cut short, are ignored; bounded and linear.
struct UploadJournal {
  std::string image_id;
};
UploadJournal parse_journal(std::string_view text);

/// Glance's v2 image API, with one re-authentication when a token expires mid-way. Every
/// failure names the step, HTTP status and Glance's words.
class ImageClient {
 public:
  using Say = std::function<void(const std::string&)>;
  ImageClient(const CloudSettings& settings, Say say);

  const ImageAccess& access() const { return access_; }

  std::vector<GlanceImage> find_by_name(const std::string& name);
  std::optional<GlanceImage> get(const std::string& id);
  GlanceImage create(const ImageRequest& request);
  /// Streams `file` as the image's data (PUT /v2/images/ID/file). Returns the reply so the
  /// caller can tell a dropped connection (retry) from a refusal.
  upload::RestReply put_file(const std::string& id, const upload::FileBody& file);

 private:
  upload::RestReply call(upload::RestRequest request);

  CloudSettings settings_;
  Say say_;
  upload::RestSession session_;
  ImageAccess access_;
};

}  // namespace kiln::openstack
