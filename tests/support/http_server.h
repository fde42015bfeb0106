#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiln::test {

/// A tiny HTTP/1.1 server on 127.0.0.1 for fetch tests. Each path serves a body; a path can
/// be told to drop the connection midway through the body for its first N requests.
/// Range requests ("bytes=N-") are honoured with 206.
class HttpServer {
 public:
  HttpServer();
  ~HttpServer();

  void serve(const std::string& path, std::string body, int drop_first_requests = 0);
  /// Answers the Nth request to `path` with `responses[N]` exactly as given, malformed or not
  /// (the last one repeats). With `byte_interval` the bytes go out one at a time that far
  /// apart, until the client hangs up: a server that trickles.
  void serve_raw(const std::string& path, std::vector<std::string> responses,
                 std::chrono::milliseconds byte_interval = {});
  std::string url(const std::string& path) const;
  int requests(const std::string& path) const;
  /// Range header of the last request to `path`, empty when none.
  std::string last_range(const std::string& path) const;

 private:
  struct Route {
    std::string body;
    int drops_left = 0;
    int requests = 0;
    std::string last_range;
    std::vector<std::string> raw;
    std::chrono::milliseconds byte_interval{};
  };
  void accept_loop();
  void handle(int client);

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::map<std::string, Route> routes_;
  std::thread thread_;
};

}  // namespace kiln::test
