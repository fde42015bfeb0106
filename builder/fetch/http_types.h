#pragma once

#include <cstddef>
#include <string>

namespace kiln::http {

/// The largest response body an API call accepts unless it says otherwise: the objects kiln
/// reads (cluster-info, a Secret, a join config, cloud user data) are a few KiB.
inline constexpr std::size_t kMaxApiResponseBytes = std::size_t(1) << 20;

/// One HTTP call, as the API and discovery clients describe it (no transport details).
struct Request {
  std::string method = "GET";
  std::string url;
  std::string body;
  std::string content_type = "application/json";
  std::string ca_pem;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string bearer_token;
  long timeout_seconds = 30;  ///< for the whole request: connecting, sending and the answer
  std::size_t max_response_bytes = kMaxApiResponseBytes;  ///< a longer body is an error
};

struct Response {
  long status = 0;
  std::string body;
  std::string error;  ///< transport failure (no HTTP answer); empty when the server answered
  /// The failure came before any connection was made (name lookup, no route, refused, connect
  /// timeout): nothing was said about the server's certificate, so it is worth retrying.
  bool unreachable = false;
};

}  // namespace kiln::http
