#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "builder/upload/aws_settings.h"
#include "builder/upload/rest_session.h"
#include "builder/util/error.h"

namespace kiln::aws {

/// One AWS API request, before signing.
struct Call {
  std::string service;  ///< "ebs", "ec2": picks the endpoint and the signing scope
  std::string method = "GET";
  std::string path = "/";            ///< with any query string
  std::vector<std::string> headers;  ///< "Name: value", beyond Content-Type
  std::string body;
  std::string content_type;
  std::string what;  ///< "PutSnapshotBlock 17", for messages
};

/// The answer, after retries.
struct Reply {
  long status = 0;
  std::string body;
  std::string error;       ///< empty on success; otherwise what failed, for the user
  std::string error_code;  ///< the service's own code (AuthFailure, ValidationException...)
  std::string request_id;
  bool ok() const { return error.empty(); }
};

using upload::CloudRefusal;

/// Throws the reply's error: CloudRefusal for a 4xx answer, Error otherwise.
[[noreturn]] void throw_reply_error(const Reply& reply);

/// The service's error code and message out of an error response: EC2's XML
/// (<Code>, <Message>), the JSON of EBS and newer services ("message", "__type") or the
/// x-amzn-ErrorType header. Bounded, linear scans of at most the capped body.
std::pair<std::string, std::string> parse_error(const std::string& body,
                                                const std::string& error_type_header);

/// The text of the first <tag>…</tag> in an XML response (no entities beyond what AWS
/// IDs use), or "" when absent.
std::string xml_value(const std::string& xml, const std::string& tag);

/// Whether an answer is worth the same request again: throttling, a 5xx, a dropped
/// connection.
bool retryable(const Reply& reply);

/// Signs requests with SigV4 through libcurl and retries what is retryable with exponential
/// back-off. One connection, reused: not for concurrent use (make one per thread).
class Client {
 public:
  explicit Client(const AwsSettings& settings);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends `call`, up to `attempts` times. `on_retry` hears each retry's reason.
  Reply send(const Call& call, int attempts = 8,
             const std::function<void(const std::string&)>& on_retry = {});
  const AwsSettings& settings() const { return settings_; }

 private:
  Reply send_once(const Call& call);

  AwsSettings settings_;
  struct Handle;
  std::unique_ptr<Handle> handle_;
};

using upload::form_encode;

/// What `--dry-run` prints for a request: method, URL, headers and body (a block's bytes as
/// their length and checksum); never credentials, which a dry run does not read.
std::string describe(const AwsSettings& settings, const Call& call);

}  // namespace kiln::aws
