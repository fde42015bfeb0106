#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "builder/serve/http_request.h"

namespace kiln {

/// What one connection of a FileServer needs to know.
struct ConnectionContext {
  int client;        ///< the connected socket; closed by the caller
  std::string peer;  ///< the client's address, for the request log
  bool overloaded;   ///< answer every request 503: the server is at its connection cap
  const std::filesystem::path& folder;  ///< the served folder, absolute
  const std::function<void(const std::string&)>& log_request;
  const std::atomic<bool>& stopping;
};

/// Serves the requests of one client connection, one after another (keep-alive), until the
/// client closes, an answer requires closing, the socket times out or the server stops.
class HttpConnection {
 public:
  explicit HttpConnection(ConnectionContext context);
  void run();

 private:
  /// What was answered: the log's status and body bytes, and whether to read another request.
  struct Answer {
    int status = 0;
    std::uint64_t body_bytes = 0;
    bool keep_open = false;
  };

  enum class HeadRead { complete, closed, too_large };
  HeadRead read_head(std::size_t& head_end);
  /// Ends a connection the server chose to close without resetting it.
  void linger();
  Answer answer(const HttpRequest& request);
  Answer send_file(const HttpRequest& request, const std::string& relative, bool keep_alive);
  Answer send_status(int status, bool head_only, bool keep_alive,
                     const std::string& extra_fields = {});

  ConnectionContext context_;
  std::string buffer_;  ///< received bytes not yet parsed (a pipelined next request)
};

}  // namespace kiln
