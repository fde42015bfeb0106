#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "builder/fetch/http_types.h"

namespace kiln::http {

/// libcurl's one-time global set-up, for every client of libcurl in kiln.
void global_init();

/// A response body kept in memory and refused past `max` bytes: `write_capped` is its
/// CURLOPT_WRITEFUNCTION (a short write makes curl stop; `over` tells why).
struct CappedSink {
  std::string* body;
  std::size_t max;
  bool over = false;
};
size_t write_capped(char* data, size_t size, size_t count, void* user);

struct Progress {
  std::uint64_t received = 0;  ///< bytes in the file so far, resumed part included
  std::uint64_t total = 0;     ///< 0 when the server did not say
};

struct GetResult {
  long status = 0;
  std::string error;  ///< empty on success; curl's or the server's words otherwise
  bool ok() const { return error.empty(); }
};

/// GETs `url`, appending to `file` and resuming from its current size with a Range request.
GetResult download(const std::string& url, const std::filesystem::path& file,
                   const std::function<void(const Progress&)>& on_progress = {});

/// GETs a small body into memory.
GetResult get_text(const std::string& url, std::string& body, long timeout_seconds = 60);

/// An HTTPS API call. An empty `ca_pem` skips server verification: only for fetching
/// something that is verified by other means afterwards (bootstrap discovery). Redirects
/// are not followed; one answering a request with credentials is an error. A body over
/// `max_response_bytes` is an error too.
Response request(const Request& request);

/// True when a HEAD/GET of `url` gets any HTTP answer within the timeout.
bool reachable(const std::string& url, long timeout_seconds, std::string* why = nullptr);

}  // namespace kiln::http
