#include "builder/serve/file_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "builder/serve/http_request.h"
#include "builder/serve/open_beneath.h"
#include "builder/util/error.h"
#include "builder/util/sha256.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::FileServer;
using kiln::FileServerOptions;
using kiln::test::TempDir;

namespace {

const std::string kBootScript = "#!ipxe\nkernel vmlinuz console=ttyS0\ninitrd initrd.img\nboot\n";
const std::string kSecret = "TOP-SECRET-do-not-serve-4f1c9a";

void write(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

/// Bytes that look like a kernel: every value, no repeating pattern a short read could hide in.
std::string pseudo_random_bytes(std::size_t size) {
  std::string out(size, '\0');
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  for (char& c : out) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    c = char(state >> 56);
  }
  return out;
}

/// A FileServer on 127.0.0.1 and a kernel-chosen port, run in a thread; its request log kept.
class RunningServer {
 public:
  using Configure = std::function<void(FileServerOptions&)>;
  explicit RunningServer(const fs::path& folder, int max_connections = 64,
                         const std::string& host = "127.0.0.1", const Configure& configure = {})
      : server_(options(folder, max_connections, host, configure)),
        thread_([this] { server_.run(); }) {}
  RunningServer(const fs::path& folder, const Configure& configure)
      : RunningServer(folder, 64, "127.0.0.1", configure) {}
  ~RunningServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return server_.port(); }
  std::vector<std::string> log() const {
    std::lock_guard lock(mutex_);
    return log_;
  }

 private:
  FileServerOptions options(const fs::path& folder, int max_connections, const std::string& host,
                            const Configure& configure) {
    FileServerOptions options;
    options.folder = folder;
    options.listen = {host, 0};
    options.max_connections = max_connections;
    options.log_request = [this](const std::string& line) {
      std::lock_guard lock(mutex_);
      log_.push_back(line);
    };
    if (configure) configure(options);
    return options;
  }

  mutable std::mutex mutex_;
  std::vector<std::string> log_;
  FileServer server_;
  std::thread thread_;
};

/// A connection to the server; from `source` (another loopback address, like 127.0.0.2)
/// when given, so the server sees a different client.
int connect_to(int port, const std::string& host = "127.0.0.1", const std::string& source = {}) {
  bool v6 = host.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{10, 0};  // a hung server fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (!source.empty()) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
  }
  sockaddr_storage address{};
  socklen_t length;
  if (v6) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(address);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    ::inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr);
    length = sizeof in6;
  } else {
    auto& in4 = reinterpret_cast<sockaddr_in&>(address);
    in4.sin_family = AF_INET;
    in4.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &in4.sin_addr);
    length = sizeof in4;
  }
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0);
  return fd;
}

void send_text(int fd, const std::string& text) {
  REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == ssize_t(text.size()));
}

std::string receive_until_close(int fd) {
  std::string out;
  char buffer[65536];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    out.append(buffer, n);
  }
  return out;
}

/// Sends raw request bytes on a fresh connection; returns everything the server sent back
/// until it closed the connection.
std::string exchange(int port, const std::string& request, const std::string& host = "127.0.0.1") {
  int fd = connect_to(port, host);
  send_text(fd, request);
  std::string response = receive_until_close(fd);
  ::close(fd);
  return response;
}

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  ///< lowercased names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<absent>" : it->second;
  }
};

/// Takes one response off the front of `raw`: its body is exactly Content-Length bytes long
/// (none for HEAD), so whatever follows is left in `raw` for the next.
Reply take_reply(std::string& raw, bool head_request = false) {
  Reply reply;
  size_t head_end = raw.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  std::istringstream head(raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  REQUIRE(line.rfind("HTTP/1.1 ", 0) == 0);
  reply.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  size_t length = head_request ? 0 : std::stoull(reply.header("content-length"));
  REQUIRE(raw.size() >= head_end + 4 + length);
  reply.body = raw.substr(head_end + 4, length);
  raw.erase(0, head_end + 4 + length);
  return reply;
}

/// One request with `Connection: close`; checks that nothing follows the promised body.
Reply request(int port, const std::string& method, const std::string& target,
              const std::string& extra_headers = "", const std::string& host = "127.0.0.1") {
  std::string raw = exchange(port,
                             method + " " + target + " HTTP/1.1\r\nHost: pxe\r\n" + extra_headers +
                                 "Connection: close\r\n\r\n",
                             host);
  Reply reply = take_reply(raw, method == "HEAD");
  CHECK(raw.empty());
  return reply;
}

Reply get(int port, const std::string& target, const std::string& extra_headers = "") {
  return request(port, "GET", target, extra_headers);
}

/// A served folder with a boot script, and a secret file beside (outside) it.
struct PxeFolder {
  TempDir temp;
  fs::path folder = temp.path() / "pxe";
  fs::path secret = temp.path() / "secret";
  PxeFolder() {
    write(folder / "boot.ipxe", kBootScript);
    write(secret, kSecret);
  }
};

}  // namespace

TEST_CASE("the file server answers GET with the whole file and its exact Content-Length") {
  PxeFolder pxe;
  std::string kernel = pseudo_random_bytes(300000);
  write(pxe.folder / "vmlinuz", kernel);
  RunningServer server(pxe.folder);

  Reply script = get(server.port(), "/boot.ipxe");
  CHECK(script.status == 200);
  CHECK(script.body == kBootScript);
  CHECK(script.header("content-length") == std::to_string(kBootScript.size()));
  CHECK(script.header("content-type") == "text/plain");
  CHECK(script.header("accept-ranges") == "bytes");

  Reply binary = get(server.port(), "/vmlinuz");
  CHECK(binary.status == 200);
  CHECK(binary.header("content-length") == "300000");
  CHECK(binary.header("content-type") == "application/octet-stream");
  CHECK(kiln::sha256_hex(binary.body) == kiln::sha256_hex(kernel));
}

TEST_CASE("the file server answers HEAD with GET's headers and sends no body") {
  PxeFolder pxe;
  RunningServer server(pxe.folder);
  std::string raw =
      exchange(server.port(), "HEAD /boot.ipxe HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n");
  Reply reply = take_reply(raw, /*head_request=*/true);
  CHECK(reply.status == 200);
  CHECK(reply.header("content-length") == std::to_string(kBootScript.size()));
  CHECK(reply.header("accept-ranges") == "bytes");
  CHECK(raw.empty());  // the server closed right after the head
}

TEST_CASE("the file server answers ranges A-B, A- and -N with 206 and exactly those bytes") {
  PxeFolder pxe;
  write(pxe.folder / "initrd.img", "0123456789");
  RunningServer server(pxe.folder);
  struct Case {
    const char* range;
    const char* content_range;
    const char* body;
  };
  auto [range, content_range, body] = GENERATE(values<Case>({
      {"bytes=2-5", "bytes 2-5/10", "2345"},
      {"bytes=4-", "bytes 4-9/10", "456789"},
      {"bytes=-3", "bytes 7-9/10", "789"},
      {"bytes=8-100", "bytes 8-9/10", "89"},  // a last byte past the end is the end
      {"bytes=-50", "bytes 0-9/10", "0123456789"},
  }));
  CAPTURE(range);
  Reply reply = get(server.port(), "/initrd.img", std::string("Range: ") + range + "\r\n");
  CHECK(reply.status == 206);
  CHECK(reply.header("content-range") == content_range);
  CHECK(reply.header("content-length") == std::to_string(std::strlen(body)));
  CHECK(reply.header("accept-ranges") == "bytes");
  CHECK(reply.body == body);
}

TEST_CASE("the file server refuses a range it cannot satisfy with 416 and the file's size") {
  PxeFolder pxe;
  write(pxe.folder / "initrd.img", "0123456789");
  RunningServer server(pxe.folder);
  std::string range = GENERATE(as<std::string>{}, "bytes=10-", "bytes=100-200", "bytes=-0");
  CAPTURE(range);
  Reply reply = get(server.port(), "/initrd.img", "Range: " + range + "\r\n");
  CHECK(reply.status == 416);
  CHECK(reply.header("content-range") == "bytes */10");
  CHECK(reply.header("accept-ranges") == "bytes");
  CHECK(reply.body.find("0123") == std::string::npos);
}

TEST_CASE("the file server answers a multi-range request with the whole file") {
  PxeFolder pxe;
  write(pxe.folder / "initrd.img", "0123456789");
  RunningServer server(pxe.folder);
  Reply reply = get(server.port(), "/initrd.img", "Range: bytes=0-1,5-6\r\n");
  CHECK(reply.status == 200);
  CHECK(reply.header("content-range") == "<absent>");
  CHECK(reply.body == "0123456789");
}

TEST_CASE("the server ignores a malformed Range and has no byte of an empty file to give") {
  using kiln::RangeAnswer;
  struct Case {
    const char* header;
    std::uint64_t size;
    RangeAnswer answer;
  };
  auto [header, size, answer] = GENERATE(values<Case>({
      {"bytes=5-3", 10, RangeAnswer::whole_file},  // last before first: invalid, ignored
      {"bytes=abc", 10, RangeAnswer::whole_file},
      {"items=0-1", 10, RangeAnswer::whole_file},
      {"bytes=0-99999999999999999999", 10, RangeAnswer::whole_file},  // overflows 64 bits
      {"bytes=0-", 0, RangeAnswer::unsatisfiable},
      {"bytes=-5", 0, RangeAnswer::unsatisfiable},
      {"bytes=9-9", 10, RangeAnswer::partial},
  }));
  CAPTURE(header, size);
  CHECK(kiln::decide_range(header, size).answer == answer);
}

TEST_CASE("the file server refuses every spelling of .. and never serves the file outside") {
  PxeFolder pxe;
  fs::create_directories(pxe.folder / "a");
  RunningServer server(pxe.folder);
  std::string target =
      GENERATE(as<std::string>{}, "/../secret", "/%2e%2e/secret", "/%2E%2E%2Fsecret",
               "/..%2fsecret", "/a/../../secret", "/..%5csecret", "/..\\secret",
               "/a/%2e%2e/%2e%2e/secret", "http://pxe/../secret");
  CAPTURE(target);
  Reply reply = get(server.port(), target);
  CHECK((reply.status == 403 || reply.status == 404));
  CHECK(reply.body.find(kSecret) == std::string::npos);
}

TEST_CASE("a symlink out of the served folder is refused; one within it is served") {
  PxeFolder pxe;
  fs::create_symlink("../secret", pxe.folder / "relative-escape");
  fs::create_symlink(pxe.secret, pxe.folder / "absolute-escape");
  fs::create_directory_symlink(pxe.temp.path(), pxe.folder / "parent");
  fs::create_symlink("boot.ipxe", pxe.folder / "default.ipxe");
  RunningServer server(pxe.folder);

  std::string target =
      GENERATE(as<std::string>{}, "/relative-escape", "/absolute-escape", "/parent/secret");
  CAPTURE(target);
  Reply refused = get(server.port(), target);
  CHECK((refused.status == 403 || refused.status == 404));
  CHECK(refused.body.find(kSecret) == std::string::npos);

  Reply served = get(server.port(), "/default.ipxe");
  CHECK(served.status == 200);
  CHECK(served.body == kBootScript);
}

TEST_CASE("the served folder confines symlinks with openat2 and with the realpath fallback") {
  PxeFolder pxe;
  fs::create_symlink("../secret", pxe.folder / "escape");
  fs::create_symlink("boot.ipxe", pxe.folder / "default.ipxe");
  CHECK(kiln::open_beneath(pxe.folder, "escape") == -EXDEV);
  CHECK(kiln::open_beneath_by_realpath(pxe.folder, "escape") == -EXDEV);
  CHECK(kiln::open_beneath_by_realpath(pxe.folder, "../secret") == -EXDEV);
  for (int fd : {kiln::open_beneath(pxe.folder, "default.ipxe"),
                 kiln::open_beneath_by_realpath(pxe.folder, "default.ipxe")}) {
    REQUIRE(fd >= 0);
    char buffer[256];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    CHECK(std::string(buffer, std::max<ssize_t>(n, 0)) == kBootScript);
    ::close(fd);
  }
}

TEST_CASE("the file server serves //boot.ipxe and ignores the query string") {
  PxeFolder pxe;
  write(pxe.folder / "nodes" / "worker.ipxe", kBootScript);
  RunningServer server(pxe.folder);
  std::string target =
      GENERATE(as<std::string>{}, "//boot.ipxe", "/boot.ipxe?mac=52:54:00:12:34:56",
               "/nodes//worker.ipxe", "/./nodes/worker.ipxe", "/boot%2Eipxe");
  CAPTURE(target);
  Reply reply = get(server.port(), target);
  CHECK(reply.status == 200);
  CHECK(reply.body == kBootScript);
}

TEST_CASE("the file server serves a folder's index.html and lists no folder") {
  PxeFolder pxe;
  write(pxe.folder / "index.html", "<h1>PXE</h1>\n");
  fs::create_directories(pxe.folder / "empty");
  RunningServer server(pxe.folder);

  Reply index = get(server.port(), "/");
  CHECK(index.status == 200);
  CHECK(index.body == "<h1>PXE</h1>\n");
  CHECK(index.header("content-type") == "text/html");

  CHECK(get(server.port(), "/empty/").status == 404);
  CHECK(get(server.port(), "/missing.ipxe").status == 404);
}

TEST_CASE("the file server serves a folder rebuilt in its place without a restart") {
  PxeFolder pxe;
  RunningServer server(pxe.folder);
  CHECK(get(server.port(), "/boot.ipxe").body == kBootScript);
  fs::rename(pxe.folder, pxe.temp.path() / "previous");
  write(pxe.folder / "boot.ipxe", "#!ipxe\nboot rebuilt\n");
  CHECK(get(server.port(), "/boot.ipxe").body == "#!ipxe\nboot rebuilt\n");
}

TEST_CASE("the file server refuses a malformed escape or an encoded NUL with 400") {
  PxeFolder pxe;
  RunningServer server(pxe.folder);
  std::string target =
      GENERATE(as<std::string>{}, "/boot%zzipxe", "/boot.ipxe%2", "/boot.ipxe%00.png", "boot.ipxe");
  CAPTURE(target);
  CHECK(get(server.port(), target).status == 400);
}

TEST_CASE("the file server answers a request head over 16 KiB with 431") {
  PxeFolder pxe;
  RunningServer server(pxe.folder);
  std::string raw =
      exchange(server.port(),
               "GET /boot.ipxe HTTP/1.1\r\nX-Padding: " + std::string(20000, 'a') + "\r\n\r\n");
  CHECK(take_reply(raw).status == 431);
}

TEST_CASE("the file server refuses POST with 405 and says GET and HEAD are allowed") {
  PxeFolder pxe;
  RunningServer server(pxe.folder);
  std::string raw = exchange(
      server.port(), "POST /boot.ipxe HTTP/1.1\r\nHost: pxe\r\nContent-Length: 5\r\n\r\nhello");
  Reply reply = take_reply(raw);
  CHECK(reply.status == 405);
  CHECK(reply.header("allow") == "GET, HEAD");
  CHECK(reply.header("connection") == "close");
  CHECK(fs::file_size(pxe.folder / "boot.ipxe") == kBootScript.size());
}

TEST_CASE("the file server answers pipelined requests on one kept-alive connection") {
  PxeFolder pxe;
  write(pxe.folder / "initrd.img", "0123456789");
  RunningServer server(pxe.folder);
  std::string raw = exchange(server.port(),
                             "GET /boot.ipxe HTTP/1.1\r\nHost: pxe\r\n\r\n"
                             "GET /initrd.img HTTP/1.1\r\nHost: pxe\r\nRange: bytes=1-2\r\n\r\n"
                             "GET /initrd.img HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n");
  Reply first = take_reply(raw);
  Reply second = take_reply(raw);
  Reply third = take_reply(raw);
  CHECK(first.header("connection") == "keep-alive");
  CHECK(first.body == kBootScript);
  CHECK(second.status == 206);
  CHECK(second.body == "12");
  CHECK(third.header("connection") == "close");
  CHECK(third.body == "0123456789");
  CHECK(raw.empty());
}

TEST_CASE("the file server gives 8 simultaneous clients byte-identical 20 MB downloads") {
  PxeFolder pxe;
  const std::string image = pseudo_random_bytes(20 << 20);
  const std::string expected = kiln::sha256_hex(image);
  write(pxe.folder / "rootfs.img", image);
  RunningServer server(pxe.folder);

  constexpr int kClients = 8;
  std::vector<std::string> digests(kClients), lengths(kClients);
  std::vector<int> statuses(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      int fd = connect_to(server.port());
      std::string request = "GET /rootfs.img HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n";
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
      std::string raw = receive_until_close(fd);
      ::close(fd);
      size_t head_end = raw.find("\r\n\r\n");
      if (head_end == std::string::npos) return;
      statuses[i] = std::stoi(raw.substr(9, 3));
      std::smatch length;
      std::string head = raw.substr(0, head_end);
      if (std::regex_search(head, length, std::regex("Content-Length: (\\d+)"))) {
        lengths[i] = length[1];
      }
      digests[i] = kiln::sha256_hex(std::string_view(raw).substr(head_end + 4));
    });
  }
  for (auto& client : clients) client.join();
  for (int i = 0; i < kClients; ++i) {
    CAPTURE(i);
    CHECK(statuses[i] == 200);
    CHECK(lengths[i] == std::to_string(image.size()));
    CHECK(digests[i] == expected);
  }
}

TEST_CASE("the file server answers 503 to connections beyond its cap") {
  PxeFolder pxe;
  RunningServer server(pxe.folder, /*max_connections=*/1);
  // A kept-alive connection holds the only slot...
  int holder = connect_to(server.port());
  send_text(holder, "GET /boot.ipxe HTTP/1.1\r\nHost: pxe\r\n\r\n");
  std::string held;
  char buffer[4096];
  while (held.find(kBootScript) == std::string::npos) {
    ssize_t n = ::recv(holder, buffer, sizeof buffer, 0);
    REQUIRE(n > 0);
    held.append(buffer, n);
  }
  // ...so the next one is turned away, and served once the slot is free again.
  Reply turned_away = get(server.port(), "/boot.ipxe");
  CHECK(turned_away.status == 503);
  CHECK(turned_away.header("retry-after") == "1");
  ::close(holder);
  Reply served;
  for (int attempt = 0; attempt < 100; ++attempt) {
    // Until the server has let go of the two connections above, one more is past twice the
    // cap and closed unanswered, by design: only a reply counts.
    std::string raw = exchange(server.port(),
                               "GET /boot.ipxe HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n");
    if (!raw.empty()) served = take_reply(raw);
    if (served.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(served.status == 200);
  CHECK(served.body == kBootScript);
}

namespace {

double process_cpu_milliseconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

const std::string kGet = "GET /boot.ipxe HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n";

/// A GET for /boot.ipxe from `source`, retried while the server is busy (503 or closed
/// unanswered) until `patience` runs out; the last reply, status 0 if none came.
Reply get_when_served(int port, const std::string& source, std::chrono::milliseconds patience) {
  auto until = std::chrono::steady_clock::now() + patience;
  Reply reply;
  while (true) {
    int fd = connect_to(port, "127.0.0.1", source);
    // A connection closed unanswered may refuse the request with a reset: not a failure.
    ::send(fd, kGet.data(), kGet.size(), MSG_NOSIGNAL);
    std::string raw = receive_until_close(fd);
    ::close(fd);
    if (!raw.empty()) reply = take_reply(raw);
    if (reply.status == 200 || std::chrono::steady_clock::now() >= until) return reply;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

/// Connections that send a request head one byte per `interval` and never finish it, as a
/// slowloris client does; with `reconnect`, each one the server answers or closes is opened
/// again at once.
class TricklingClients {
 public:
  TricklingClients(int port, std::vector<std::string> sources, std::chrono::milliseconds interval,
                   bool reconnect)
      : port_(port), sources_(std::move(sources)), reconnect_(reconnect) {
    for (std::size_t i = 0; i < sources_.size(); ++i) fds_.push_back(open(i));
    thread_ = std::thread([this, interval] { trickle(interval); });
  }
  ~TricklingClients() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_) ::close(fd);
  }
  /// Connections the server answered or closed so far.
  int ended() const { return ended_; }

 private:
  /// A connection from sources_[i] with the head's first byte sent; -1 when refused.
  int open(std::size_t i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in from{}, to{};
    from.sin_family = to.sin_family = AF_INET;
    ::inet_pton(AF_INET, sources_[i].c_str(), &from.sin_addr);
    ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons(port_);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      ::close(fd);
      return -1;
    }
    ::send(fd, "G", 1, MSG_NOSIGNAL);
    return fd;
  }
  void trickle(std::chrono::milliseconds interval) {
    const std::string head = "ET /boot.ipxe HTTP/1.1\r\nX-Slow: " + std::string(4096, 'a');
    for (std::size_t sent = 0; !stop_; sent = (sent + 1) % head.size()) {
      for (auto waited = std::chrono::milliseconds(0); waited < interval && !stop_;
           waited += std::chrono::milliseconds(10)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      for (std::size_t i = 0; i < fds_.size() && !stop_; ++i) {
        if (fds_[i] < 0) continue;
        char scratch[512];
        ssize_t answered = ::recv(fds_[i], scratch, sizeof scratch, MSG_DONTWAIT);
        if (answered >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||
            ::send(fds_[i], &head[sent], 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
          ::close(fds_[i]);
          ++ended_;
          fds_[i] = reconnect_ ? open(i) : -1;
        }
      }
    }
  }

  int port_;
  std::vector<std::string> sources_;
  bool reconnect_;
  std::atomic<int> ended_{0};
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("a request head of 16 KiB of line feeds costs the server under 10 ms of CPU") {
  PxeFolder pxe;
  RunningServer server(pxe.folder);
  int fd = connect_to(server.port());
  double cpu_before = process_cpu_milliseconds();
  send_text(fd, std::string(16 * 1024, '\n') + "GET /boot.ipxe HTTP/1.1\r\nHost: pxe\r\n\r\n");
  std::string raw = receive_until_close(fd);
  double cpu_used = process_cpu_milliseconds() - cpu_before;
  ::close(fd);
  // Leading empty lines count toward the head's size cap.
  CHECK(take_reply(raw).status == 431);
  CAPTURE(cpu_used);
  CHECK(cpu_used < 10.0);
}

TEST_CASE("200 connections trickling a byte a second do not keep another client from a file") {
  PxeFolder pxe;
  RunningServer server(pxe.folder);
  TricklingClients slowloris(server.port(), std::vector<std::string>(200, "127.0.0.1"),
                             std::chrono::seconds(1), /*reconnect=*/true);
  Reply reply = get_when_served(server.port(), "127.0.0.2", std::chrono::seconds(10));
  CHECK(reply.status == 200);
  CHECK(reply.body == kBootScript);
}

TEST_CASE("connections trickling from many addresses lose their slots at the head deadline") {
  PxeFolder pxe;
  RunningServer server(pxe.folder, [](FileServerOptions& options) {
    options.max_connections = 16;
    options.timeouts.request_head = std::chrono::seconds(1);
  });
  // 8 addresses with 4 connections each: under the per-client limit, twice the global cap.
  std::vector<std::string> sources;
  for (int i = 0; i < 32; ++i) sources.push_back("127.0.1." + std::to_string(1 + i % 8));
  TricklingClients slowloris(server.port(), sources, std::chrono::milliseconds(200),
                             /*reconnect=*/false);
  Reply reply = get_when_served(server.port(), "127.0.0.2", std::chrono::seconds(10));
  CHECK(reply.status == 200);
  CHECK(reply.body == kBootScript);
  // Every trickling connection was cut, though none finished its head.
  for (int wait = 0; wait < 100 && slowloris.ended() < 32; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(slowloris.ended() == 32);
}

TEST_CASE("a head trickled a byte every 200 ms is answered 408 at the head deadline") {
  PxeFolder pxe;
  RunningServer server(pxe.folder, [](FileServerOptions& options) {
    options.timeouts.request_head = std::chrono::seconds(1);
  });
  const std::string head =
      "GET /boot.ipxe HTTP/1.1\r\nHost: pxe\r\nX-Slow: " + std::string(40, 'a');
  auto connected = std::chrono::steady_clock::now();
  int fd = connect_to(server.port());
  std::string raw;
  for (char c : head) {
    if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) break;
    if (n > 0) {
      raw.append(buffer, n);
      break;
    }
  }
  raw += receive_until_close(fd);
  auto elapsed = std::chrono::steady_clock::now() - connected;
  ::close(fd);
  CAPTURE(std::chrono::duration<double>(elapsed).count());
  // The 40 bytes would take 8 s; the server gives up after its 1 s (a 200 ms step late at most).
  CHECK(elapsed < std::chrono::seconds(3));
  REQUIRE(!raw.empty());
  CHECK(take_reply(raw).status == 408);
  CHECK(server.log() == std::vector<std::string>{"127.0.0.1 - - 408 20"});
}

TEST_CASE("one client address gets its connection limit; another address is still served") {
  PxeFolder pxe;
  RunningServer server(pxe.folder,
                       [](FileServerOptions& options) { options.max_connections_per_client = 2; });
  // Two unfinished requests hold 127.0.0.1's two connections...
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(connect_to(server.port()));
    send_text(held.back(), "GET /boot.ipxe HTTP/1.1\r\n");
  }
  // ...so a third from it is turned away, while 127.0.0.2 is served.
  std::string raw =
      exchange(server.port(), "GET /boot.ipxe HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n");
  REQUIRE(!raw.empty());
  Reply turned_away = take_reply(raw);
  CHECK(turned_away.status == 503);
  CHECK(turned_away.header("retry-after") == "1");
  Reply served = get_when_served(server.port(), "127.0.0.2", std::chrono::seconds(0));
  CHECK(served.status == 200);
  CHECK(served.body == kBootScript);
  // The slots are 127.0.0.1's again once its connections end.
  for (int fd : held) ::close(fd);
  CHECK(get_when_served(server.port(), "127.0.0.1", std::chrono::seconds(5)).status == 200);
}

TEST_CASE("the file server logs each request's client, method, path, status and bytes") {
  PxeFolder pxe;
  RunningServer server(pxe.folder);
  get(server.port(), "/boot.ipxe");
  get(server.port(), "/missing");
  get(server.port(), "/boot.ipxe", "Range: bytes=0-5\r\n");
  request(server.port(), "HEAD", "/boot.ipxe");
  std::vector<std::string> expected = {
      "127.0.0.1 GET /boot.ipxe 200 " + std::to_string(kBootScript.size()),
      "127.0.0.1 GET /missing 404 14",  // "404 Not Found\n"
      "127.0.0.1 GET /boot.ipxe 206 6",
      "127.0.0.1 HEAD /boot.ipxe 200 0",
  };
  CHECK(server.log() == expected);
}

TEST_CASE("the file server listens on IPv6 loopback when asked") {
  PxeFolder pxe;
  std::unique_ptr<RunningServer> server;
  try {
    server = std::make_unique<RunningServer>(pxe.folder, 64, "::1");
  } catch (const kiln::Error& e) {
    WARN("no IPv6 loopback here: " << e.what());
    return;
  }
  Reply reply = request(server->port(), "GET", "/boot.ipxe", "", "::1");
  CHECK(reply.status == 200);
  CHECK(reply.body == kBootScript);
}

TEST_CASE("the file server refuses a port in use and a folder that is not a directory") {
  PxeFolder pxe;
  RunningServer first(pxe.folder);
  FileServerOptions options;
  options.folder = pxe.folder;
  options.listen = {"127.0.0.1", first.port()};
  CHECK_THROWS_WITH(
      FileServer(options),
      "cannot listen on 127.0.0.1:" + std::to_string(first.port()) + ": Address already in use");
  options.listen.port = 0;
  options.folder = pxe.temp.path() / "nowhere";
  CHECK_THROWS_WITH(FileServer(options), options.folder.string() + ": no such directory");
  options.folder = pxe.secret;
  CHECK_THROWS_WITH(FileServer(options), pxe.secret.string() + ": not a directory");
}

TEST_CASE("the server's listen address is HOST:PORT with IPv6 in brackets") {
  auto v4 = kiln::parse_listen_address("0.0.0.0:8080");
  CHECK((v4.host == "0.0.0.0" && v4.port == 8080));
  auto v6 = kiln::parse_listen_address("[::1]:0");
  CHECK((v6.host == "::1" && v6.port == 0));
  CHECK(v6.to_string() == "[::1]:0");
  struct Case {
    const char* text;
    const char* message;
  };
  auto [text, message] = GENERATE(values<Case>({
      {"8080", "'8080' is not HOST:PORT (like 127.0.0.1:8080 or [::1]:8080)"},
      {"localhost:8080", "'localhost' in 'localhost:8080' is not an IPv4 address"},
      {"::1:8080", "'::1:8080': an IPv6 address goes in brackets, like [::1]:8080"},
      {"[::1]8080", "'[::1]8080' is not HOST:PORT (like 127.0.0.1:8080 or [::1]:8080)"},
      {"[fe80::zz]:80", "'fe80::zz' in '[fe80::zz]:80' is not an IPv6 address"},
      {"127.0.0.1:65536", "'65536' in '127.0.0.1:65536' is not a port (0 to 65535)"},
      {"127.0.0.1:", "'' in '127.0.0.1:' is not a port (0 to 65535)"},
  }));
  CHECK_THROWS_WITH(kiln::parse_listen_address(text), message);
}

TEST_CASE("kiln serve prints its URL, serves the folder and exits 0 on SIGTERM") {
  PxeFolder pxe;
  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDERR_FILENO);
    ::execl(KILN_BINARY, KILN_BINARY, "serve", pxe.folder.c_str(), "--listen", "127.0.0.1:0",
            nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  // "kiln: serving DIR at http://127.0.0.1:PORT/", the port the kernel picked.
  const std::string prefix = "kiln: serving " + pxe.folder.string() + " at http://127.0.0.1:";
  bool printed = line.rfind(prefix, 0) == 0 && line.back() == '/';
  CHECK(printed);
  if (printed) {
    int port = std::stoi(line.substr(prefix.size()));
    Reply reply = get(port, "/boot.ipxe");
    CHECK(reply.status == 200);
    CHECK(reply.body == kBootScript);
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("kiln serve reports a missing folder and a bad --listen before serving") {
  TempDir temp;
  auto missing = kiln::test::run_command(std::string(KILN_BINARY) + " serve " +
                                         (temp.path() / "nowhere").string());
  CHECK(missing.exit_code == 1);
  CHECK(missing.output ==
        "kiln: error: " + (temp.path() / "nowhere").string() + ": no such directory\n");
  auto bad_listen = kiln::test::run_command(std::string(KILN_BINARY) + " serve " +
                                            temp.path().string() + " --listen 8080");
  CHECK(bad_listen.exit_code == 2);
  CHECK(bad_listen.output ==
        "kiln serve: error: --listen: '8080' is not HOST:PORT (like 127.0.0.1:8080 or "
        "[::1]:8080)\nRun 'kiln serve --help' for usage.\n");
}

TEST_CASE("kiln serve refuses connection limits below 1 and a head timeout that is no duration") {
  TempDir temp;
  struct Case {
    const char* flags;
    const char* message;
  };
  auto [flags, message] = GENERATE(values<Case>({
      {"--max-per-client 0", "--max-per-client '0': expected a number from 1 to 100000"},
      {"--max-connections 12x", "--max-connections '12x': expected a number from 1 to 100000"},
      {"--head-timeout 0s", "--head-timeout: must be at least 1s"},
      {"--head-timeout soon", "--head-timeout 'soon': expected a duration like 30m, 2h or 14d"},
  }));
  auto result = kiln::test::run_command(std::string(KILN_BINARY) + " serve " +
                                        temp.path().string() + " " + flags);
  CHECK(result.exit_code == 2);
  CHECK(result.output ==
        std::string("kiln serve: error: ") + message + "\nRun 'kiln serve --help' for usage.\n");
}

TEST_CASE("a client reading a file slower than the minimum rate loses its connection") {
  PxeFolder pxe;
  const std::string image = pseudo_random_bytes(16 << 20);
  write(pxe.folder / "rootfs.img", image);
  RunningServer server(pxe.folder, [](FileServerOptions& options) {
    options.timeouts.send_stall = std::chrono::seconds(1);
    options.timeouts.min_send_rate = 4 << 20;  // 16 MiB: due within 1 s + 4 s
  });
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 64 * 1024;  // so the kernel's buffers cannot take the file off the server's hands
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server.port());
  ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  send_text(fd, "GET /rootfs.img HTTP/1.1\r\nHost: pxe\r\nConnection: close\r\n\r\n");
  // 16 KiB every 100 ms would take 100 s for the whole file; after 7 s, read the rest.
  std::string raw;
  char buffer[16 * 1024];
  for (int step = 0; step < 70; ++step) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) raw.append(buffer, n);
  }
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  raw += receive_until_close(fd);
  ::close(fd);
  CHECK(raw.rfind("HTTP/1.1 200 ", 0) == 0);
  CAPTURE(raw.size());
  CHECK(raw.size() < image.size());  // the server gave up part way
  std::vector<std::string> log = server.log();
  REQUIRE(log.size() == 1);
  CHECK(log[0].rfind("127.0.0.1 GET /rootfs.img 200 ", 0) == 0);
  CHECK(log[0] != "127.0.0.1 GET /rootfs.img 200 " + std::to_string(image.size()));
}
