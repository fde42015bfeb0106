#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "builder/serve/http_request.h"

namespace kiln {

/// How long a connection may take over each part of its life, so clients that send or read
/// slowly cannot hold the server's connection slots indefinitely.
struct ConnectionTimeouts {
  /// From accept (for a kept-alive connection, from the next request's first byte) to the
  /// blank line ending the request head, however the bytes trickle in. A head still
  /// incomplete then is answered 408; a connection that sent nothing is closed.
  std::chrono::milliseconds request_head = std::chrono::seconds(10);
  /// A kept-alive connection waiting for its next request is closed after this long.
  std::chrono::milliseconds idle = std::chrono::seconds(30);
  /// A response the client takes no bytes of for this long is abandoned.
  std::chrono::milliseconds send_stall = std::chrono::seconds(60);
  /// A response must also be taken at this average rate: one of N bytes is abandoned once
  /// send_stall plus N / min_send_rate seconds have passed, so a client reading a few bytes
  /// now and then cannot hold its slot forever. Any real network is far faster.
  std::uint64_t min_send_rate = 16 * 1024;
};

/// What one connection of a FileServer needs to know.
struct ConnectionContext {
  int client;        ///< the connected socket; closed by the caller
  std::string peer;  ///< the client's address, for the request log
  bool overloaded;   ///< answer every request 503: the server is at its connection cap
  const std::filesystem::path& folder;  ///< the served folder, absolute
  const std::function<void(const std::string&)>& log_request;
  const std::atomic<bool>& stopping;
  const ConnectionTimeouts& timeouts;
  std::chrono::steady_clock::time_point accepted;  ///< when the request head clock started
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

  enum class HeadRead { complete, closed, too_large, timed_out };
  /// Reads until buffer_ holds a whole head, its end put in `head_end`. The first request's
  /// deadline runs from accept, a later one's from its first byte.
  HeadRead read_head(std::size_t& head_end, bool first_request);
  /// Ends a connection the server chose to close without resetting it.
  void linger();
  Answer answer(const HttpRequest& request);
  Answer send_file(const HttpRequest& request, const std::string& relative, bool keep_alive);
  /// When a response of `bytes` bytes starting now must have been sent.
  std::chrono::steady_clock::time_point send_deadline(std::uint64_t bytes) const;
  Answer send_status(int status, bool head_only, bool keep_alive,
                     const std::string& extra_fields = {});

  ConnectionContext context_;
  std::string buffer_;           ///< received bytes not yet parsed (a pipelined next request)
  HeadEndScanner head_scanner_;  ///< how far buffer_ was searched for the head's end
};

}  // namespace kiln
