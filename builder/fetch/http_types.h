#pragma once

#include <string>

namespace kiln::http {

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
  long timeout_seconds = 30;
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
