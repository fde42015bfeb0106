#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "builder/serve/http_connection.h"

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

constexpr int kDefaultMaxConnections = 64;
/// Enough for a lab's VMs behind qemu's user networking, which all connect from 127.0.0.1.
constexpr int kDefaultMaxConnectionsPerClient = 16;

struct FileServerOptions {
  std::filesystem::path folder;  ///< served read-only; nothing outside it is reachable
  ListenAddress listen;
  /// Connections served at once; those beyond are answered 503 until one ends, and past
  /// twice this many they are closed unanswered.
  int max_connections = kDefaultMaxConnections;
  /// Connections served at once for one client address (for IPv6, one /64 network), so a
  /// single client cannot take every slot; beyond, 503 as for max_connections.
  int max_connections_per_client = kDefaultMaxConnectionsPerClient;
  ConnectionTimeouts timeouts;
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
  void serve_connection(int client, const std::string& peer, const std::string& client_key,
                        bool overloaded, std::chrono::steady_clock::time_point accepted);
  /// Drops a connection from the counts and closes its socket; called with mutex_ held.
  void forget_connection(int client, const std::string& key);
  void end_connections();

  FileServerOptions options_;
  std::filesystem::path folder_;  ///< absolute, so the process's working directory is irrelevant
  int listener_ = -1;
  int wake_fd_ = -1;  ///< an eventfd stop() writes to, so run() wakes from poll
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<int> clients_;                  ///< sockets of running connection threads
  std::map<std::string, int> per_client_;  ///< running connection threads by client key
  bool running_ = false;
};

}  // namespace kiln
