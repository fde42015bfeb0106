#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <string>

namespace kiln {

/// An IP address and TCP port to listen on; port 0 asks the kernel for a free one.
struct ListenAddress {
  std::string host = "127.0.0.1";  ///< an IPv4 or IPv6 literal, without brackets
  int port = 8080;
  bool ipv6() const { return host.find(':') != std::string::npos; }
  /// "127.0.0.1:8080", "[::1]:8080".
  std::string to_string() const;
};

/// Parses "HOST:PORT" with HOST an IPv4 literal or a bracketed IPv6 literal ("[::1]:8080");
/// throws kiln::Error saying what is wrong.
ListenAddress parse_listen_address(const std::string& text);

struct FileServerOptions {
  std::filesystem::path folder;  ///< served read-only; nothing outside it is reachable
  ListenAddress listen;
  /// Connections served at once; those beyond are answered 503 until one ends.
  int max_connections = 64;
  /// Receives one line per request ("127.0.0.1 GET /boot.ipxe 200 1234"), from any
  /// connection's thread. Unset: standard error.
  std::function<void(const std::string&)> log_request;
};

/// A read-only HTTP/1.1 file server for a PXE boot folder: GET and HEAD, single byte ranges,
/// keep-alive, one thread per connection. Request paths that would leave the folder, directly
/// or through a symlink, are refused.
class FileServer {
 public:
  /// Checks the folder and binds the listening socket; throws kiln::Error when the folder is
  /// missing or not a directory, or the address cannot be bound (in use, not local).
  explicit FileServer(FileServerOptions options);
  /// Stops the server and waits for run() to return.
  ~FileServer();
  FileServer(const FileServer&) = delete;
  FileServer& operator=(const FileServer&) = delete;

  /// The port bound, the kernel's choice when port 0 was asked for.
  int port() const { return port_; }
  /// "http://127.0.0.1:8080/", "http://[::1]:8080/".
  std::string url() const;
  /// Accepts and serves connections until stop(); returns once every connection has ended.
  void run();
  /// Makes run() return; safe from another thread or a signal handler.
  void stop();

 private:
  void accept_connection();
  void serve_connection(int client, const std::string& peer, bool overloaded);
  void end_connections();

  FileServerOptions options_;
  std::filesystem::path folder_;  ///< absolute, so the process's working directory is irrelevant
  int listener_ = -1;
  int wake_fd_ = -1;  ///< an eventfd stop() writes to, so run() wakes from poll
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<int> clients_;  ///< sockets of running connection threads
  bool running_ = false;
};

}  // namespace kiln
