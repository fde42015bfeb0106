#include "firstboot/https_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "builder/util/error.h"
#include "builder/util/scan.h"

namespace kiln::firstboot {

namespace {

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
  std::string path;
};

/// http[s]://host[:port][/path], host a name, an IPv4 address or a bracketed IPv6 address.
bool parse_url(std::string_view text, Url& url) {
  if (text.substr(0, 8) == "https://") {
    url.tls = true;
    text.remove_prefix(8);
  } else if (text.substr(0, 7) == "http://") {
    url.tls = false;
    text.remove_prefix(7);
  } else {
    return false;
  }
  for (char c : text)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  std::string_view authority = text.substr(0, text.find('/'));
  url.path = authority.size() < text.size() ? std::string(text.substr(authority.size())) : "/";
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && (after.front() != ':' || after.size() == 1)) return false;
    if (!after.empty()) port = after.substr(1);
  } else {
    std::size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos && colon + 1 == authority.size()) return false;
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (url.host.empty() || url.host.find_first_of("[]") != std::string::npos) return false;
  }
  if (!port.empty() && !scan::parse_unsigned<std::uint16_t>(port)) return false;
  url.port = port.empty() ? (url.tls ? "443" : "80") : std::string(port);
  return true;
}

std::string ssl_error() {
  unsigned long code = ERR_get_error();
  if (!code) return std::strerror(errno);
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

using Clock = std::chrono::steady_clock;

/// The end of a whole request: every wait (connect, handshake, each read and write) is given
/// only the time left, so a server that trickles cannot stretch the request.
class Deadline {
 public:
  Deadline(long seconds, const Url& url)
      : end_(Clock::now() + std::chrono::seconds(seconds)), seconds_(seconds), url_(url) {}

  /// Milliseconds left, at least 1 (0 would mean "wait for ever" to SO_RCVTIMEO).
  long remaining_ms() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end_ - Clock::now());
    return std::max<long>(1, static_cast<long>(left.count()));
  }
  bool passed() const { return Clock::now() >= end_; }
  Error error() const {
    return Error("no complete answer from " + url_.host + ":" + url_.port + " within " +
                 std::to_string(seconds_) + " s");
  }
  /// Bounds the socket's blocking reads and writes by the time left.
  void limit_waits(int fd) const {
    long ms = remaining_ms();
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

 private:
  Clock::time_point end_;
  long seconds_;
  const Url& url_;
};

/// Connects before the deadline; returns the socket or -1 with `error` set.
int connect_before(const Url& url, const Deadline& deadline, std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0) {
    error = "cannot resolve " + url.host + ": " + gai_strerror(rc);
    return -1;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, int(std::min<long>(deadline.remaining_ms(), INT_MAX))) == 1 ? 0 : -1;
      int so_error = 0;
      socklen_t len = sizeof so_error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (rc != 0)
        errno = ETIMEDOUT;
      else if (so_error)
        errno = so_error, rc = -1;
    }
    if (rc == 0) {
      ::fcntl(fd, F_SETFL, 0);  // blocking again, each wait bounded by the deadline
      return fd;
    }
    error = "cannot connect to " + url.host + ":" + url.port + ": " + std::strerror(errno);
    ::close(fd);
  }
  return -1;
}

/// The most bytes before the blank line that ends a response head.
constexpr std::size_t kMaxHeadBytes = 64 * 1024;
/// A chunk-size line (hex digits and extensions) longer than this is not a real server's.
constexpr std::size_t kMaxChunkLine = 1024;

/// How many raw bytes to read at most for a body of `max_body`: the head, and framing of
/// chunks no smaller than a few bytes each.
std::size_t max_raw_bytes(std::size_t max_body) {
  if (max_body > (SIZE_MAX - kMaxHeadBytes) / 2) return SIZE_MAX;
  return kMaxHeadBytes + 2 * max_body;
}

Error too_large(std::size_t max_body) {
  return Error("the response body is larger than the " + std::to_string(max_body) +
               " bytes this request accepts");
}

/// The body of a chunked transfer coding (RFC 9112 7.1); trailers are ignored.
std::string dechunk(std::string_view rest, std::size_t max_body) {
  std::string body;
  for (;;) {
    std::size_t line_end = rest.substr(0, kMaxChunkLine + 2).find("\r\n");
    if (line_end == std::string_view::npos) {
      throw Error(rest.size() > kMaxChunkLine
                      ? "malformed HTTP response: a chunk-size line is too long"
                      : "the chunked response body was cut short");
    }
    std::string_view line = rest.substr(0, line_end);
    auto size = scan::parse_unsigned(scan::trim(line.substr(0, line.find(';'))), 16);
    if (!size) throw Error("malformed HTTP response: a chunk size is not a hex number");
    rest.remove_prefix(line_end + 2);
    if (*size == 0) return body;
    if (*size > max_body - body.size()) throw too_large(max_body);
    if (*size > rest.size()) throw Error("the chunked response body was cut short");
    body.append(rest.substr(0, *size));
    rest.remove_prefix(*size);
    if (rest.substr(0, 2) != "\r\n") {
      throw Error(rest.empty()
                      ? "the chunked response body was cut short"
                      : "malformed HTTP response: a chunk does not end where its size says");
    }
    rest.remove_prefix(2);
  }
}

X509_STORE* store_from_pem(const std::string& pem) {
  X509_STORE* store = X509_STORE_new();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                BIO_free);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
  }
  ERR_clear_error();
  return store;
}

/// The client's certificate and key from PEM (a kubelet's kubelet-client-current.pem holds
/// both; each reader takes the first block of its kind).
void use_client_identity(SSL_CTX* ctx, const std::string& cert_pem, const std::string& key_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), int(cert_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), X509_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), int(key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  bool ok = cert && key && SSL_CTX_use_certificate(ctx, cert.get()) == 1 &&
            SSL_CTX_use_PrivateKey(ctx, key.get()) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  ERR_clear_error();
  if (!ok) throw Error("the client certificate and key cannot be used together");
}

}  // namespace

http::Response parse_http_response(std::string_view raw, std::size_t max_body) {
  std::size_t head_end = raw.substr(0, kMaxHeadBytes + 4).find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    throw Error(raw.size() > kMaxHeadBytes ? "malformed HTTP response: the head is too long"
                                           : "malformed HTTP response: no end of the head");
  }
  std::string_view head = raw.substr(0, head_end);
  auto status = scan::http_status(head.substr(0, head.find("\r\n")));
  if (!status) throw Error("malformed HTTP response: no HTTP/1.x status line");
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  std::string problem;
  bool well_formed =
      scan::for_each_header(head, [&](std::string_view name, std::string_view value) {
        if (scan::iequals(name, "Transfer-Encoding")) {
          chunked = scan::iequals(value, "chunked");
          if (!chunked) problem = "malformed HTTP response: unsupported Transfer-Encoding";
        } else if (scan::iequals(name, "Content-Length")) {
          auto length = scan::parse_unsigned(value);
          if (!length || (content_length && *content_length != *length))
            problem = "malformed HTTP response: bad Content-Length";
          content_length = length;
        }
        return problem.empty();
      });
  if (!well_formed)
    throw Error(problem.empty() ? "malformed HTTP response: a header line has no name" : problem);

  http::Response response;
  response.status = *status;
  std::string_view rest = raw.substr(head_end + 4);
  if (chunked) {
    response.body = dechunk(rest, max_body);
  } else if (content_length) {
    if (*content_length > max_body) throw too_large(max_body);
    if (rest.size() < *content_length) {
      throw Error("the response body was cut short: " + std::to_string(rest.size()) + " of " +
                  std::to_string(*content_length) + " bytes");
    }
    response.body = rest.substr(0, *content_length);
  } else {
    if (rest.size() > max_body) throw too_large(max_body);
    response.body = rest;  // ends where the server closed the connection
  }
  return response;
}

namespace {

/// Reads until the server closes the connection, within the deadline and the size cap.
/// `read_some` returns bytes read, 0 at the end, or -1 when the wait timed out.
template <typename ReadSome>
std::string read_to_end(ReadSome read_some, int fd, const Deadline& deadline,
                        std::size_t max_body) {
  std::string raw;
  char buffer[16384];
  for (;;) {
    if (deadline.passed()) throw deadline.error();
    deadline.limit_waits(fd);
    long n = read_some(buffer, sizeof buffer);
    if (n == 0) return raw;
    if (n < 0) continue;  // the wait ended: the deadline check decides
    raw.append(buffer, std::size_t(n));
    if (raw.size() > max_raw_bytes(max_body)) throw too_large(max_body);
  }
}

/// The request on the wire. The bearer token goes in a header only, never into a message.
std::string request_text(const http::Request& call, const Url& url) {
  std::string host_header =
      url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  std::string wire = call.method + " " + url.path + " HTTP/1.1\r\nHost: " + host_header + ":" +
                     url.port + "\r\nAccept: application/json\r\nUser-Agent: kiln-firstboot\r\n" +
                     "Connection: close\r\n";
  if (!call.bearer_token.empty()) wire += "Authorization: Bearer " + call.bearer_token + "\r\n";
  if (!call.body.empty()) {
    wire += "Content-Type: " + call.content_type +
            "\r\nContent-Length: " + std::to_string(call.body.size()) + "\r\n";
  }
  return wire + "\r\n" + call.body;
}

std::string exchange_plain(int fd, const std::string& wire, const Deadline& deadline,
                           std::size_t max_body) {
  deadline.limit_waits(fd);
  if (::send(fd, wire.data(), wire.size(), MSG_NOSIGNAL) != ssize_t(wire.size()))
    throw Error(std::string("send failed: ") + std::strerror(errno));
  auto read_some = [fd](char* buffer, std::size_t size) -> long {
    ssize_t n = ::recv(fd, buffer, size, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;
    return n < 0 ? 0 : n;  // a reset ends the answer; the parser judges what arrived
  };
  return read_to_end(read_some, fd, deadline, max_body);
}

std::string exchange_tls(int fd, const http::Request& call, const Url& url, const std::string& wire,
                         const Deadline& deadline) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (!call.ca_pem.empty()) {
    SSL_CTX_set_cert_store(ctx.get(), store_from_pem(call.ca_pem));
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (!call.client_cert_pem.empty() || !call.client_key_pem.empty())
    use_client_identity(ctx.get(), call.client_cert_pem, call.client_key_pem);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  in6_addr ip6;
  in_addr ip4;
  bool is_ip = ::inet_pton(AF_INET, url.host.c_str(), &ip4) == 1 ||
               ::inet_pton(AF_INET6, url.host.c_str(), &ip6) == 1;
  if (!is_ip) SSL_set_tlsext_host_name(ssl.get(), url.host.c_str());
  if (!call.ca_pem.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
    else
      X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
  }
  // A timed-out wait shows as WANT_READ/WANT_WRITE: the deadline decides whether to go on.
  auto waiting = [&](int rc) {
    int code = SSL_get_error(ssl.get(), rc);
    return (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) && !deadline.passed();
  };
  for (;;) {
    deadline.limit_waits(fd);
    int rc = SSL_connect(ssl.get());
    if (rc == 1) break;
    if (waiting(rc)) continue;
    if (deadline.passed()) throw deadline.error();
    long verify = SSL_get_verify_result(ssl.get());
    throw Error(verify != X509_V_OK ? std::string("certificate verification failed: ") +
                                          X509_verify_cert_error_string(verify)
                                    : "TLS handshake failed: " + ssl_error());
  }
  for (std::size_t sent = 0; sent < wire.size();) {
    deadline.limit_waits(fd);
    int n = SSL_write(ssl.get(), wire.data() + sent, int(wire.size() - sent));
    if (n > 0) {
      sent += std::size_t(n);
    } else if (!waiting(n)) {
      if (deadline.passed()) throw deadline.error();
      throw Error("TLS write failed: " + ssl_error());
    }
  }
  auto read_some = [&](char* buffer, std::size_t size) -> long {
    int n = SSL_read(ssl.get(), buffer, int(size));
    if (n > 0) return n;
    int code = SSL_get_error(ssl.get(), n);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return -1;
    return 0;  // closed, with or without close_notify: the parser judges what arrived
  };
  std::string raw = read_to_end(read_some, fd, deadline, call.max_response_bytes);
  SSL_shutdown(ssl.get());
  return raw;
}

}  // namespace

http::Response request(const http::Request& call) {
  http::Response response;
  Url url;
  if (!parse_url(call.url, url)) {
    response.error = "malformed URL " + call.url;
    return response;
  }
  const Deadline deadline(call.timeout_seconds, url);
  int fd = connect_before(url, deadline, response.error);
  if (fd < 0) {
    response.unreachable = true;
    return response;
  }
  std::unique_ptr<int, void (*)(int*)> close_fd(&fd, [](int* f) { ::close(*f); });
  try {
    std::string wire = request_text(call, url);
    std::string raw = url.tls ? exchange_tls(fd, call, url, wire, deadline)
                              : exchange_plain(fd, wire, deadline, call.max_response_bytes);
    if (raw.empty()) throw Error("the server closed the connection without answering");
    response = parse_http_response(raw, call.max_response_bytes);
  } catch (const Error& e) {
    // A transport failure like any other: the caller's retry and classification apply.
    response.error = e.what();
  }
  return response;
}

}  // namespace kiln::firstboot
