#pragma once

// Azure Blob storage's REST API, as far as a VHD upload needs it: SharedKey (or SAS) signed
// requests, the storage error format, and a page blob written from only the pages of the
// image that hold data.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "builder/upload/azure_settings.h"
#include "builder/upload/data_blocks.h"
#include "builder/upload/rest_session.h"

namespace kiln::azure {

/// The storage service version kiln speaks.
inline constexpr char kStorageVersion[] = "2021-08-06";

/// One Blob storage request before signing.
struct BlobCall {
  std::string method = "GET";
  std::string path;  ///< "/container/blob", characters that need no escaping only
  std::vector<std::pair<std::string, std::string>> query;    ///< {"comp", "page"}
  std::vector<std::pair<std::string, std::string>> headers;  ///< x-ms-*, Content-MD5
  std::string body;
  std::string content_type;
  std::string what;  ///< "put pages 4194304-8388607", for messages
};

/// SharedKey's string to sign for `call` at `url_path` (the path part of the full URL, which
/// for an endpoint such as Azurite's http://host/ACCOUNT begins with the account again), with
/// its x-ms-date and x-ms-version headers already among `call.headers`.
std::string shared_key_string_to_sign(const std::string& account, const std::string& url_path,
                                      const BlobCall& call);

/// The service's error code and message: the x-ms-error-code header, or <Code> and <Message>
/// of an XML error body; printable and capped. Bounded, linear.
std::pair<std::string, std::string> storage_error(const upload::RestReply& reply);

/// "put pages …: HTTP 403 AuthenticationFailed: Server failed to authenticate …".
std::string describe_failure(const std::string& what, const upload::RestReply& reply);

/// Signs and sends Blob storage requests over one connection (not for concurrent use).
class BlobClient {
 public:
  explicit BlobClient(const StorageSettings& settings);
  /// The blob's URL, as Resource Manager and users name it (no credential in it).
  std::string url(const std::string& path) const;
  upload::RestReply send(const BlobCall& call, int attempts,
                         const std::function<void(const std::string&)>& on_retry);

 private:
  const StorageSettings& settings_;
  std::string endpoint_path_;  ///< the endpoint URL's own path ("" or "/devstoreaccount1")
  upload::RestSession session_;
};

struct PageBlobUpload {
  std::filesystem::path vhd;
  std::string container, blob;
  std::filesystem::path journal;
  std::vector<std::pair<std::string, std::string>> metadata;  ///< x-ms-meta-NAME values
  int jobs = 8;
};

struct PageBlobResult {
  std::string url;
  std::uint64_t size = 0;
  std::uint64_t bytes_sent = 0;      ///< by this run
  std::uint64_t blocks_resumed = 0;  ///< written by an earlier, interrupted run
  bool already_uploaded = false;     ///< an earlier run finished it; nothing was sent
  double seconds = 0;
};

/// Writes `upload.vhd` as a page blob: creates it (and the container, when missing), then
/// puts only the runs of 64 KiB that hold data, `jobs` at a time, each with its Content-MD5
/// for the service to check. A journal lets the same command resume; a blob of the same name
/// that this upload did not create is refused. Throws Error/CloudRefusal with the service's
/// error code and message.
PageBlobResult upload_page_blob(
    const StorageSettings& settings, const PageBlobUpload& upload,
    const std::function<void(const upload::UploadProgress&)>& on_progress,
    const std::function<void(const std::string&)>& say);

/// What a page blob journal holds: the upload's token (also the blob's kilnupload metadata),
/// the 4 MiB blocks written since it, and whether the upload finished (the image is found
/// by asking Resource Manager, not kept here). A line cut short by a
/// crash, and lines it does not know, are ignored.
struct PageBlobJournal {
  std::string token;
  std::set<std::uint64_t> blocks;
  bool complete = false;
};
PageBlobJournal parse_page_blob_journal(const std::string& text);

}  // namespace kiln::azure
