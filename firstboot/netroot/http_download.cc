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
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "builder/util/scan.h"

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

/// The most head bytes read before the blank line: a real server's head is well under this.
constexpr std::size_t kMaxHeadBytes = 65536;

/// Reads up to the blank line after the headers; whatever body bytes came with them are
/// left in `rest`.
ResponseHead read_head(int fd, std::string& rest) {
  std::string raw;
  char buffer[8192];
  std::size_t end;
  while ((end = raw.find("\r\n\r\n")) == std::string::npos) {
    if (raw.size() > kMaxHeadBytes)
      throw std::runtime_error("the server's response headers are too long");
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) throw std::runtime_error("the server closed the connection before answering");
    raw.append(buffer, n);
  }
  rest = raw.substr(end + 4);
  return parse_response_head(std::string_view(raw).substr(0, end));
}

/// Sends a GET for the bytes of `url` from `from` on (a Range request when `from` > 0) and
/// reads the answer's head; body bytes that came with it are left in `rest`.
ResponseHead send_get(int fd, const HttpUrl& url, std::uint64_t from, const char* agent,
                      std::string& rest) {
  std::string request = "GET " + url.path + " HTTP/1.1\r\nHost: " + url.host + ":" + url.port +
                        "\r\nUser-Agent: " + agent + "\r\nConnection: close\r\n";
  if (from > 0) request += "Range: bytes=" + std::to_string(from) + "-\r\n";
  request += "\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size()))
    throw std::runtime_error("cannot send the request: " + std::string(std::strerror(errno)));
  return read_head(fd, rest);
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
  std::string body;
  ResponseHead head = send_get(socket.fd, url, t.have, "kiln-netroot", body);
  if (head.status == 200) {
    if (!head.content_length) throw std::runtime_error("the server sent no Content-Length");
    t.have = 0;
    t.total = *head.content_length;
  } else if (head.status == 206 && t.have > 0 && head.range_start == t.have) {
    // A total below what already arrived would make the rest a negative length.
    if (!head.range_total || *head.range_total < t.have ||
        (t.total > 0 && *head.range_total != t.total)) {
      throw std::runtime_error("the server's Content-Range does not fit the " +
                               std::to_string(t.have) + " bytes already received");
    }
    t.total = *head.range_total;
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

namespace {

/// "bytes FIRST-LAST/TOTAL" of a Content-Range header.
bool parse_content_range(std::string_view value, ResponseHead& head) {
  if (value.substr(0, 6) != "bytes ") return false;
  value.remove_prefix(6);
  std::size_t dash = value.find('-'), slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash)
    return false;
  head.range_start = scan::parse_unsigned(value.substr(0, dash));
  auto last = scan::parse_unsigned(value.substr(dash + 1, slash - dash - 1));
  head.range_total = scan::parse_unsigned(value.substr(slash + 1));
  return head.range_start && last && head.range_total && *head.range_start <= *last &&
         *last < *head.range_total;
}

}  // namespace

ResponseHead parse_response_head(std::string_view head) {
  ResponseHead parsed;
  auto status = scan::http_status(head.substr(0, head.find("\r\n")));
  if (!status) throw std::runtime_error("malformed HTTP response");
  parsed.status = *status;
  std::string problem;
  bool well_formed =
      scan::for_each_header(head, [&](std::string_view name, std::string_view value) {
        if (scan::iequals(name, "Content-Length")) {
          auto length = scan::parse_unsigned(value);
          if (!length || (parsed.content_length && *parsed.content_length != *length)) {
            problem = "malformed Content-Length in the server's response";
            return false;
          }
          parsed.content_length = length;
        } else if (scan::iequals(name, "Content-Range")) {
          if (!parse_content_range(value, parsed)) {
            problem = "malformed Content-Range in the server's response";
            return false;
          }
        } else if (scan::iequals(name, "Transfer-Encoding")) {
          problem = "the server sent a Transfer-Encoding, which is not supported for images";
          return false;
        }
        return true;
      });
  if (!well_formed)
    throw std::runtime_error(problem.empty() ? "malformed HTTP response headers" : problem);
  return parsed;
}

HttpUrl parse_http_url(const std::string& text) {
  if (text.rfind("https://", 0) == 0)
    throw std::runtime_error("only http:// URLs are fetched here, not " + text +
                             " (the root hash, not the transport, decides what boots)");
  auto malformed = [&] { return std::runtime_error("malformed URL " + text); };
  constexpr std::string_view scheme = "http://";
  if (text.rfind(scheme, 0) != 0) throw malformed();
  std::string_view rest = std::string_view(text).substr(scheme.size());
  for (char c : rest)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) throw malformed();
  HttpUrl url;
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.size() < rest.size()) url.path = std::string(rest.substr(authority.size()));
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) throw malformed();
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw malformed();
      port = after.substr(1);
      if (port.empty()) throw malformed();
    }
  } else {
    std::size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) throw malformed();
    }
    if (url.host.empty() || url.host.find_first_of("[]") != std::string::npos) throw malformed();
  }
  if (!port.empty()) {
    if (port.size() > 5 || !scan::all_of(port, scan::is_digit)) throw malformed();
    url.port = std::string(port);
  }
  return url;
}

void fetch_range(const HttpUrl& url, std::uint64_t from, std::uint64_t total,
                 const std::function<void(const char*, std::size_t)>& sink) {
  if (from >= total) return;
  Fd socket(connect_to(url));
  std::string body;
  ResponseHead head = send_get(socket.fd, url, from, "kiln-update", body);
  bool whole = from == 0 && head.status == 200 && head.content_length == total;
  bool rest =
      from > 0 && head.status == 206 && head.range_start == from && head.range_total == total;
  if (!whole && !rest) {
    if (head.status != 200 && head.status != 206)
      throw std::runtime_error("the server answered HTTP " + std::to_string(head.status));
    throw std::runtime_error("the server's answer is not the " + std::to_string(total) +
                             "-byte file the signed index lists");
  }
  std::uint64_t have = from;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    std::size_t take = std::min<std::uint64_t>(body.size(), total - have);
    if (take > 0) sink(body.data(), take);
    have += take;
    if (have == total) return;
    ssize_t n = ::recv(socket.fd, buffer.data(), buffer.size(), 0);
    if (n <= 0)
      throw std::runtime_error("the transfer broke off after " + std::to_string(have) + " of " +
                               std::to_string(total) + " bytes");
    body.assign(buffer.data(), n);
  }
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
