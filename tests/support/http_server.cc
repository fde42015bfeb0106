#include "support/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace kiln::test {

HttpServer::HttpServer() {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener_, 16) != 0) {
    throw std::runtime_error("test HTTP server cannot listen");
  }
  socklen_t length = sizeof address;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { accept_loop(); });
}

HttpServer::~HttpServer() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  ::close(listener_);
  thread_.join();
}

void HttpServer::serve(const std::string& path, std::string body, int drop_first_requests) {
  std::lock_guard lock(mutex_);
  routes_[path] = Route{std::move(body), drop_first_requests, 0, {}};
}

void HttpServer::serve_raw(const std::string& path, std::vector<std::string> responses,
                           std::chrono::milliseconds byte_interval) {
  std::lock_guard lock(mutex_);
  routes_[path] = Route{{}, 0, 0, {}, std::move(responses), byte_interval};
}

std::string HttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

int HttpServer::requests(const std::string& path) const {
  std::lock_guard lock(mutex_);
  auto it = routes_.find(path);
  return it == routes_.end() ? 0 : it->second.requests;
}

std::string HttpServer::last_range(const std::string& path) const {
  std::lock_guard lock(mutex_);
  auto it = routes_.find(path);
  return it == routes_.end() ? "" : it->second.last_range;
}

void HttpServer::accept_loop() {
  while (!stopping_) {
    pollfd poll_fd{listener_, POLLIN, 0};
    if (::poll(&poll_fd, 1, 100) <= 0) continue;
    int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    handle(client);
    ::close(client);
  }
}

namespace {
void send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += n;
  }
}
}  // namespace

void HttpServer::handle(int client) {
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
    if (n <= 0) return;
    request.append(buffer, n);
  }
  std::string method = request.substr(0, request.find(' '));
  size_t path_start = request.find(' ') + 1;
  std::string path = request.substr(path_start, request.find(' ', path_start) - path_start);
  std::string range;
  if (auto at = request.find("\r\nRange: bytes="); at != std::string::npos) {
    size_t start = at + 15;
    range = request.substr(start, request.find("\r\n", start) - start);
  }
  std::string body, raw;
  std::chrono::milliseconds byte_interval{};
  bool drop = false;
  {
    std::lock_guard lock(mutex_);
    auto it = routes_.find(path);
    if (it == routes_.end()) {
      send_all(client, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    Route& route = it->second;
    ++route.requests;
    route.last_range = range;
    body = route.body;
    if (!route.raw.empty()) {
      raw = route.raw[std::min<std::size_t>(route.requests, route.raw.size()) - 1];
      byte_interval = route.byte_interval;
    }
    if (route.drops_left > 0) {
      --route.drops_left;
      drop = true;
    }
  }
  if (byte_interval.count() > 0) {
    for (char byte : raw) {
      if (stopping_ || ::send(client, &byte, 1, MSG_NOSIGNAL) != 1) return;
      std::this_thread::sleep_for(byte_interval);
    }
    return;
  }
  if (!raw.empty()) {
    send_all(client, raw);
    return;
  }
  size_t offset = range.empty() ? 0 : std::stoul(range.substr(0, range.find('-')));
  if (offset > body.size()) {
    send_all(
        client,
        "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  std::string part = body.substr(offset);
  std::string header = range.empty() ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 206 Partial Content\r\n";
  if (!range.empty()) {
    header += "Content-Range: bytes " + std::to_string(offset) + "-" +
              std::to_string(body.size() - 1) + "/" + std::to_string(body.size()) + "\r\n";
  }
  header += "Content-Length: " + std::to_string(part.size()) + "\r\nConnection: close\r\n\r\n";
  send_all(client, header);
  if (method == "HEAD") return;
  // A dropped connection delivers half the promised body, then closes: curl sees a short read.
  send_all(client, drop ? part.substr(0, part.size() / 2) : part);
}

}  // namespace kiln::test
