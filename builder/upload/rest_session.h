#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "builder/util/error.h"

namespace kiln::upload {

/// The cloud refused a request for a reason retrying does not change (credentials,
/// permissions, a bad parameter, a quota): the CLI exits with its own code for it.
struct CloudRefusal : Error {
  using Error::Error;
};

/// A file sent as a request's body, streamed from disk (an image of several GiB).
struct FileBody {
  std::filesystem::path path;
  std::uint64_t size = 0;
  /// Hears the bytes sent so far in this attempt.
  std::function<void(std::uint64_t sent)> on_progress;
};

/// One call to a cloud's REST API. Credentials ride in `headers` (a token) or are added by
/// the caller's signing hook; they never go into the URL.
struct RestRequest {
  std::string method = "GET";  ///< "HEAD" reads no body
  std::string url;
  /// Appended to `url` when sending (a shared access signature): never printed, never in a
  /// message.
  std::string secret_query;
  std::vector<std::string> headers;  ///< "Name: value"
  std::string body;
  std::string content_type = "application/json";
  const FileBody* file = nullptr;  ///< streamed instead of `body`
  std::string what;                ///< "create image", for messages
  long timeout_seconds = 300;      ///< for the whole request; a file upload gets its own
  long connect_timeout_seconds = 20;
};

struct RestReply {
  long status = 0;
  std::string body;  ///< capped; a longer answer is a transport error
  /// The answer's headers, names in lower case; only the ones the session keeps.
  std::map<std::string, std::string> headers;
  std::string transport_error;  ///< curl's words when no HTTP answer came
  bool answered() const { return transport_error.empty(); }
  bool success() const { return answered() && status >= 200 && status < 300; }
};

/// How the session checks servers' certificates: the host's store by default, a CA bundle
/// file, or (asked for explicitly) not at all.
struct TlsSettings {
  std::string ca_file;
  bool verify = true;
};

/// One libcurl connection, reused across calls: not for concurrent use.
class RestSession {
 public:
  /// `kept_headers`: answer headers (lower case) to keep, e.g. "x-subject-token".
  RestSession(TlsSettings tls, std::vector<std::string> kept_headers);
  ~RestSession();
  RestSession(const RestSession&) = delete;
  RestSession& operator=(const RestSession&) = delete;

  /// Sends one request, once. Answers are capped at `max_reply_bytes`.
  RestReply send_once(const RestRequest& request, std::size_t max_reply_bytes = 4 << 20);

 private:
  struct Handle;
  std::unique_ptr<Handle> handle_;
  TlsSettings tls_;
  std::vector<std::string> kept_headers_;
};

/// Sends `request` up to `attempts` times while the answer is worth another try (no answer,
/// 429, a 5xx), waiting with back-off between; `on_retry` hears each retry's reason.
RestReply send_with_retries(RestSession& session, const RestRequest& request, int attempts,
                            const std::function<void(const std::string&)>& on_retry);

/// Exponential back-off with full jitter, as cloud SDKs do: about 0.5 s, 1 s, 2 s … 20 s.
double backoff_seconds(int attempt, std::mt19937& random);

/// `application/x-www-form-urlencoded` encoding of one value (RFC 3986 unreserved kept).
std::string form_encode(const std::string& value);

/// At most `limit` printable ASCII characters of `text` (answers quoted in messages).
std::string printable(std::string_view text, std::size_t limit = 300);

}  // namespace kiln::upload
