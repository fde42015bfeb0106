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

#include <cerrno>
#include <cstring>
#include <memory>
#include <regex>
#include <string>

namespace kiln::firstboot {

namespace {

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
  std::string path;
};

bool parse_url(const std::string& text, Url& url) {
  static const std::regex pattern(R"(^(https?)://(\[[^\]]+\]|[^/:]+)(?::(\d+))?(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(text, m, pattern)) return false;
  url.tls = m[1] == "https";
  url.host = m[2];
  if (url.host.front() == '[') url.host = url.host.substr(1, url.host.size() - 2);
  url.port = m[3].matched ? std::string(m[3]) : (url.tls ? "443" : "80");
  url.path = m[4].matched ? std::string(m[4]) : "/";
  return true;
}

std::string ssl_error() {
  unsigned long code = ERR_get_error();
  if (!code) return std::strerror(errno);
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

/// Connects with a deadline; returns the socket or -1 with `error` set.
int connect_with_timeout(const Url& url, long timeout, std::string& error) {
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
      rc = ::poll(&p, 1, timeout * 1000) == 1 ? 0 : -1;
      int so_error = 0;
      socklen_t len = sizeof so_error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (rc != 0)
        errno = ETIMEDOUT;
      else if (so_error)
        errno = so_error, rc = -1;
    }
    if (rc == 0) {
      ::fcntl(fd, F_SETFL, 0);  // blocking again, bounded by the timeouts below
      timeval tv{timeout, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      return fd;
    }
    error = "cannot connect to " + url.host + ":" + url.port + ": " + std::strerror(errno);
    ::close(fd);
  }
  return -1;
}

/// Splits a raw HTTP/1.1 response into status and body (chunked or not).
bool parse_response(const std::string& raw, http::Response& response) {
  auto header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) return false;
  response.status = std::stol(raw.substr(raw.find(' ') + 1, 3));
  std::string headers = raw.substr(0, header_end);
  for (auto& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string body = raw.substr(header_end + 4);
  if (headers.find("transfer-encoding: chunked") == std::string::npos) {
    response.body = body;
    return true;
  }
  std::size_t at = 0;
  while (at < body.size()) {
    auto line_end = body.find("\r\n", at);
    if (line_end == std::string::npos) return false;
    std::size_t size = std::stoul(body.substr(at, line_end - at), nullptr, 16);
    if (size == 0) return true;
    response.body += body.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  return false;
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

}  // namespace

http::Response request(const http::Request& call) {
  http::Response response;
  Url url;
  if (!parse_url(call.url, url)) {
    response.error = "malformed URL " + call.url;
    return response;
  }
  int fd = connect_with_timeout(url, call.timeout_seconds, response.error);
  if (fd < 0) {
    response.unreachable = true;
    return response;
  }

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
  wire += "\r\n" + call.body;

  std::string raw;
  if (!url.tls) {
    if (::send(fd, wire.data(), wire.size(), MSG_NOSIGNAL) != ssize_t(wire.size())) {
      response.error = std::string("send failed: ") + std::strerror(errno);
    } else {
      char buffer[16384];
      for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) raw.append(buffer, n);
    }
    ::close(fd);
  } else {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          SSL_CTX_free);
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    if (!call.ca_pem.empty()) {
      SSL_CTX_set_cert_store(ctx.get(), store_from_pem(call.ca_pem));
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    }
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
    if (SSL_connect(ssl.get()) != 1) {
      long verify = SSL_get_verify_result(ssl.get());
      response.error = verify != X509_V_OK ? std::string("certificate verification failed: ") +
                                                 X509_verify_cert_error_string(verify)
                                           : "TLS handshake failed: " + ssl_error();
      ::close(fd);
      return response;
    }
    if (SSL_write(ssl.get(), wire.data(), int(wire.size())) != int(wire.size())) {
      response.error = "TLS write failed: " + ssl_error();
    } else {
      char buffer[16384];
      for (int n; (n = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0;) raw.append(buffer, n);
    }
    SSL_shutdown(ssl.get());
    ::close(fd);
  }
  if (response.error.empty() && !parse_response(raw, response))
    response.error = raw.empty() ? "the server closed the connection without answering"
                                 : "malformed HTTP response";
  return response;
}

}  // namespace kiln::firstboot
