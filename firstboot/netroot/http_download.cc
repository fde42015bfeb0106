#include "firstboot/netroot/http_download.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace kiln::firstboot {
namespace fs = std::filesystem;

namespace {

/// Closes the descriptor when the scope ends.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

/// The initrd has no resolver configuration: the DNS servers come from networkd's DHCP
/// leases. Only needed when the URL names a host rather than an address.
void write_resolv_conf_from_leases() {
  if (fs::exists("/etc/resolv.conf")) return;
  std::string servers;
  std::error_code ec;
  for (const auto& lease : fs::directory_iterator("/run/systemd/netif/leases", ec)) {
    std::ifstream in(lease.path());
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("DNS=", 0) != 0) continue;
      std::istringstream addresses(line.substr(4));
      for (std::string address; addresses >> address;) servers += "nameserver " + address + "\n";
    }
  }
  if (!servers.empty()) std::ofstream("/etc/resolv.conf") << servers;
}

int connect_to(const HttpUrl& url) {
  in_addr ip4;
  in6_addr ip6;
  bool literal = ::inet_pton(AF_INET, url.host.c_str(), &ip4) == 1 ||
                 ::inet_pton(AF_INET6, url.host.c_str(), &ip6) == 1;
  if (!literal) write_resolv_conf_from_leases();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = literal ? AI_NUMERICHOST : 0;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0)
    throw std::runtime_error("cannot resolve " + url.host + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  std::string error;
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    timeval timeout{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) return fd;
    error = std::strerror(errno);
    ::close(fd);
  }
  throw std::runtime_error("cannot connect to " + url.host + ":" + url.port + ": " + error);
}

struct ResponseHead {
  int status = 0;
  std::int64_t content_length = -1;
  std::int64_t range_start = -1;  ///< from Content-Range of a 206
  std::int64_t range_total = -1;
};

/// Reads up to the blank line after the headers; whatever body bytes came with them are
/// left in `rest`.
ResponseHead read_head(int fd, std::string& rest) {
  std::string raw;
  char buffer[8192];
  std::size_t end;
  while ((end = raw.find("\r\n\r\n")) == std::string::npos) {
    if (raw.size() > 65536) throw std::runtime_error("the server's response headers are too long");
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) throw std::runtime_error("the server closed the connection before answering");
    raw.append(buffer, n);
  }
  rest = raw.substr(end + 4);
  std::string head = raw.substr(0, end);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ResponseHead parsed;
  std::smatch m;
  static const std::regex status(R"(^http/1\.[01] (\d{3}))"),
      length(R"(\r\ncontent-length:\s*(\d+))"),
      range(R"(\r\ncontent-range:\s*bytes (\d+)-\d+/(\d+))");
  if (!std::regex_search(head, m, status)) throw std::runtime_error("malformed HTTP response");
  parsed.status = std::stoi(m[1]);
  if (std::regex_search(head, m, length)) parsed.content_length = std::stoll(m[1]);
  if (std::regex_search(head, m, range)) {
    parsed.range_start = std::stoll(m[1]);
    parsed.range_total = std::stoll(m[2]);
  }
  return parsed;
}

void write_all(int fd, const char* data, std::size_t size, std::uint64_t at) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(at));
    if (n <= 0)
      throw std::runtime_error("cannot write the image: " + std::string(std::strerror(errno)));
    data += n, size -= n, at += n;
  }
}

struct Transfer {
  std::uint64_t have = 0;   ///< bytes already in the target
  std::uint64_t total = 0;  ///< 0 until the server said
  bool prepared = false;
  int reported_tenth = 0;
};

/// One attempt: asks for the bytes not yet received. Returns when the target is complete;
/// throws on any failure, keeping what arrived.
void attempt(const HttpUrl& url, const fs::path& target, Transfer& t,
             const std::function<void(std::uint64_t)>& prepare,
             const std::function<void(const std::string&)>& say) {
  Fd socket(connect_to(url));
  std::string request = "GET " + url.path + " HTTP/1.1\r\nHost: " + url.host + ":" + url.port +
                        "\r\nUser-Agent: kiln-netroot\r\nConnection: close\r\n";
  if (t.have > 0) request += "Range: bytes=" + std::to_string(t.have) + "-\r\n";
  request += "\r\n";
  if (::send(socket.fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size()))
    throw std::runtime_error("cannot send the request: " + std::string(std::strerror(errno)));
  std::string body;
  ResponseHead head = read_head(socket.fd, body);
  if (head.status == 200) {
    if (head.content_length < 0) throw std::runtime_error("the server sent no Content-Length");
    t.have = 0;
    t.total = head.content_length;
  } else if (head.status == 206 && t.have > 0 && head.range_start == std::int64_t(t.have)) {
    t.total = head.range_total;
  } else {
    throw std::runtime_error("the server answered HTTP " + std::to_string(head.status));
  }
  if (!t.prepared) {
    try {
      prepare(t.total);
    } catch (const std::exception& e) {
      throw std::logic_error(e.what());  // not a transfer failure: retrying cannot help
    }
    t.prepared = true;
  }
  Fd out(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (out.fd < 0) throw std::runtime_error("cannot create " + target.string());
  if (t.have == 0 && ::ftruncate(out.fd, 0) != 0)
    throw std::runtime_error("cannot truncate " + target.string());
  std::vector<char> buffer(1 << 20);
  for (;;) {
    std::size_t take = std::min<std::uint64_t>(body.size(), t.total - t.have);
    write_all(out.fd, body.data(), take, t.have);
    t.have += take;
    if (t.total > 0 && int(t.have * 10 / t.total) > t.reported_tenth) {
      t.reported_tenth = int(t.have * 10 / t.total);
      say("  " + std::to_string(t.reported_tenth * 10) + "% of " + std::to_string(t.total >> 20) +
          " MiB");
    }
    if (t.have == t.total) return;
    ssize_t n = ::recv(socket.fd, buffer.data(), buffer.size(), 0);
    if (n <= 0)
      throw std::runtime_error("the transfer broke off after " + std::to_string(t.have) + " of " +
                               std::to_string(t.total) + " bytes");
    body.assign(buffer.data(), n);
  }
}

}  // namespace

void mount_tmpfs_for(const fs::path& dir, std::uint64_t size, const std::string& what) {
  fs::create_directories(dir);
  std::string options = "mode=0700,size=" + std::to_string(size + (16u << 20));
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0)
    throw std::runtime_error("cannot mount a tmpfs for " + what + ": " + std::strerror(errno));
}

HttpUrl parse_http_url(const std::string& text) {
  static const std::regex pattern(R"(^http://(\[[^\]]+\]|[^/:\[\]]+)(?::(\d{1,5}))?(/\S*)?$)");
  std::smatch m;
  if (text.rfind("https://", 0) == 0)
    throw std::runtime_error("only http:// URLs are fetched here, not " + text +
                             " (the root hash, not the transport, decides what boots)");
  if (!std::regex_match(text, m, pattern)) throw std::runtime_error("malformed URL " + text);
  HttpUrl url;
  url.host = m[1];
  if (url.host.front() == '[') url.host = url.host.substr(1, url.host.size() - 2);
  if (m[2].matched) url.port = m[2];
  if (m[3].matched) url.path = m[3];
  return url;
}

std::uint64_t download_with_retries(const std::string& text, const fs::path& target,
                                    const std::function<void(std::uint64_t)>& prepare,
                                    const std::function<void(const std::string&)>& say) {
  HttpUrl url = parse_http_url(text);
  Transfer transfer;
  int delay = 2;
  for (int attempt_number = 1;; ++attempt_number) {
    try {
      attempt(url, target, transfer, prepare, say);
      return transfer.total;
    } catch (const std::runtime_error& e) {
      say("  attempt " + std::to_string(attempt_number) + " failed: " + e.what() +
          "; retrying in " + std::to_string(delay) + " s");
      std::this_thread::sleep_for(std::chrono::seconds(delay));
      delay = std::min(delay * 2, 30);
    }
  }
}

}  // namespace kiln::firstboot
