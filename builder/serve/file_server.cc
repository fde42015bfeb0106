#include "builder/serve/file_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "builder/serve/http_connection.h"
#include "builder/util/error.h"
#include "builder/util/log.h"
#include "builder/util/scan.h"

namespace kiln {
namespace fs = std::filesystem;
namespace {

/// The socket address for a literal already checked by parse_listen_address.
socklen_t to_sockaddr(const ListenAddress& address, sockaddr_storage& storage) {
  storage = {};
  if (address.ipv6()) {
    auto& v6 = reinterpret_cast<sockaddr_in6&>(storage);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(address.port);
    ::inet_pton(AF_INET6, address.host.c_str(), &v6.sin6_addr);
    return sizeof v6;
  }
  auto& v4 = reinterpret_cast<sockaddr_in&>(storage);
  v4.sin_family = AF_INET;
  v4.sin_port = htons(address.port);
  ::inet_pton(AF_INET, address.host.c_str(), &v4.sin_addr);
  return sizeof v4;
}

std::string peer_text(const sockaddr_storage& peer) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (peer.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, text, sizeof text);
  } else if (peer.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, text,
                sizeof text);
  }
  return text;
}

/// What the per-client limit counts connections by: the IPv4 address, or the /64 network
/// of an IPv6 one, since a single IPv6 host usually has a whole /64 to connect from.
std::string client_key(const sockaddr_storage& peer) {
  if (peer.ss_family != AF_INET6) return peer_text(peer);
  sockaddr_storage network = peer;
  auto& address = reinterpret_cast<sockaddr_in6&>(network).sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&address)) return peer_text(peer);
  std::fill(address.s6_addr + 8, address.s6_addr + 16, 0);
  return peer_text(network) + "/64";
}

/// Binds and listens; returns the socket and sets `port` to the port actually bound.
int listen_on(const ListenAddress& address, int& port) {
  sockaddr_storage storage;
  socklen_t length = to_sockaddr(address, storage);
  // Non-blocking: a connection reset between poll and accept must not stall the accept loop.
  int listener = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listener < 0) {
    throw Error("cannot listen on " + address.to_string() + ": " + std::strerror(errno));
  }
  // Lets a restarted server bind while old connections sit in TIME_WAIT; on Linux a second
  // live listener on the same port is still refused (EADDRINUSE).
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      ::listen(listener, SOMAXCONN) != 0) {
    int error = errno;
    ::close(listener);
    throw Error("cannot listen on " + address.to_string() + ": " + std::strerror(error));
  }
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&storage), &length);
  port = ntohs(storage.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(storage).sin6_port
                                             : reinterpret_cast<sockaddr_in&>(storage).sin_port);
  return listener;
}

}  // namespace

std::string ListenAddress::to_string() const {
  return (ipv6() ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ListenAddress parse_listen_address(const std::string& text) {
  const std::string expected =
      "'" + text + "' is not HOST:PORT (like 127.0.0.1:8080 or [::1]:8080)";
  ListenAddress address;
  std::string port;
  if (text.rfind('[', 0) == 0) {
    size_t close = text.find(']');
    if (close == std::string::npos || text.compare(close + 1, 1, ":") != 0) throw Error(expected);
    address.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr v6;
    if (::inet_pton(AF_INET6, address.host.c_str(), &v6) != 1) {
      throw Error("'" + address.host + "' in '" + text + "' is not an IPv6 address");
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) throw Error(expected);
    address.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (address.host.find(':') != std::string::npos) {
      throw Error("'" + text + "': an IPv6 address goes in brackets, like [::1]:8080");
    }
    in_addr v4;
    if (::inet_pton(AF_INET, address.host.c_str(), &v4) != 1) {
      throw Error("'" + address.host + "' in '" + text + "' is not an IPv4 address");
    }
  }
  auto number = scan::parse_unsigned<int>(port);
  if (port.size() > 5 || !number || *number > 65535) {
    throw Error("'" + port + "' in '" + text + "' is not a port (0 to 65535)");
  }
  address.port = *number;
  return address;
}

FileServer::FileServer(FileServerOptions options) : options_(std::move(options)) {
  std::error_code error;
  fs::file_status status = fs::status(options_.folder, error);
  if (!fs::exists(status)) throw Error(options_.folder.string() + ": no such directory");
  if (!fs::is_directory(status)) throw Error(options_.folder.string() + ": not a directory");
  if (options_.max_connections < 1 || options_.max_connections_per_client < 1) {
    throw Error("the connection limits must be at least 1 (got " +
                std::to_string(options_.max_connections) + " in all, " +
                std::to_string(options_.max_connections_per_client) + " per client)");
  }
  folder_ = fs::absolute(options_.folder);
  if (!options_.log_request) options_.log_request = log::write_line;
  listener_ = listen_on(options_.listen, port_);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    int error = errno;
    ::close(listener_);
    throw Error(std::string("cannot create an eventfd: ") + std::strerror(error));
  }
}

FileServer::~FileServer() {
  stop();
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !running_; });
  }
  ::close(wake_fd_);
  ::close(listener_);
}

std::string FileServer::url() const {
  ListenAddress bound = options_.listen;
  bound.port = port_;
  return "http://" + bound.to_string() + "/";
}

void FileServer::stop() {
  stopping_ = true;
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof one);
}

void FileServer::run() {
  {
    std::lock_guard lock(mutex_);
    running_ = true;
  }
  while (!stopping_) {
    pollfd events[2] = {{listener_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(events, 2, -1) < 0) continue;  // EINTR
    if (events[0].revents & POLLIN) accept_connection();
  }
  end_connections();
  std::lock_guard lock(mutex_);
  running_ = false;
  changed_.notify_all();
}

void FileServer::accept_connection() {
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  int client = ::accept4(listener_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC);
  if (client < 0) {
    // Out of descriptors or memory: the connection stays queued; give the system a moment
    // rather than spinning on a listener that stays readable.
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      pollfd wake{wake_fd_, POLLIN, 0};
      ::poll(&wake, 1, 100);
    }
    return;
  }
  auto accepted = std::chrono::steady_clock::now();
  std::string key = client_key(peer);
  std::unique_lock lock(mutex_);
  int running = int(clients_.size());
  auto from_client = per_client_.find(key);
  int running_for_client = from_client == per_client_.end() ? 0 : from_client->second;
  // Past twice a cap even a 503 would cost a thread per connection: drop it unanswered.
  if (running >= 2 * options_.max_connections ||
      running_for_client >= 2 * options_.max_connections_per_client) {
    ::close(client);
    return;
  }
  // An overloaded connection still reads its request before answering 503: closing a socket
  // with unread data sends a reset, which can destroy the answer before the client reads it.
  bool overloaded = running >= options_.max_connections ||
                    running_for_client >= options_.max_connections_per_client;
  clients_.insert(client);
  ++per_client_[key];
  lock.unlock();
  try {
    std::thread([this, client, peer = peer_text(peer), key, overloaded, accepted] {
      serve_connection(client, peer, key, overloaded, accepted);
    }).detach();
  } catch (const std::system_error&) {  // no thread to be had
    lock.lock();
    forget_connection(client, key);
  }
}

void FileServer::serve_connection(int client, const std::string& peer, const std::string& key,
                                  bool overloaded, std::chrono::steady_clock::time_point accepted) {
  try {
    HttpConnection connection({client, peer, overloaded, folder_, options_.log_request, stopping_,
                               options_.timeouts, accepted});
    connection.run();
  } catch (...) {
    // Out of memory inside one connection: drop it, keep serving the others.
  }
  std::lock_guard lock(mutex_);
  forget_connection(client, key);
  changed_.notify_all();
}

void FileServer::forget_connection(int client, const std::string& key) {
  clients_.erase(client);
  if (--per_client_[key] <= 0) per_client_.erase(key);
  ::close(client);
}

void FileServer::end_connections() {
  std::unique_lock lock(mutex_);
  // Wakes every connection blocked in recv or sendfile; each then ends on its own.
  for (int client : clients_) ::shutdown(client, SHUT_RDWR);
  changed_.wait(lock, [this] { return clients_.empty(); });
}

}  // namespace kiln
