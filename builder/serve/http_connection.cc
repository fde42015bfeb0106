#include "builder/serve/http_connection.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>
#include <optional>
#include <vector>

#include "builder/serve/open_beneath.h"
#include "builder/util/time.h"

namespace kiln {
namespace {

constexpr std::size_t kMaxHeadBytes = 16 * 1024;
constexpr std::size_t kChunkBytes = 1 << 20;
constexpr auto kLinger = std::chrono::seconds(2);
constexpr std::size_t kMaxLingerBytes = 1 << 20;

using Clock = std::chrono::steady_clock;

/// Waits until `socket` is readable or `until` passes; false on timeout or error.
bool wait_readable(int socket, Clock::time_point until) {
  while (true) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return false;
    pollfd ready{socket, POLLIN, 0};
    int polled = ::poll(&ready, 1, int(std::min<long long>(left, INT_MAX)));
    if (polled > 0) return true;
    if (polled < 0 && errno != EINTR) return false;
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

/// Waits until `socket` can take more bytes, for at most `stall` and never past `deadline`;
/// false when it cannot.
bool wait_writable(int socket, Clock::time_point deadline, std::chrono::milliseconds stall) {
  Clock::time_point until = std::min(deadline, Clock::now() + stall);
  while (true) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return false;
    pollfd ready{socket, POLLOUT, 0};
    int polled = ::poll(&ready, 1, int(std::min<long long>(left, INT_MAX)));
    if (polled > 0) return (ready.revents & POLLOUT) != 0;
    if (polled < 0 && errno != EINTR) return false;
  }
}

/// Where a response goes: the client's non-blocking socket, with the deadline the whole
/// response must meet and the longest the client may take no bytes at all.
struct Sink {
  int socket;
  Clock::time_point deadline;
  std::chrono::milliseconds stall;
};

bool send_all(const Sink& sink, std::string_view data, int flags = 0) {
  while (!data.empty()) {
    ssize_t sent =
        ::send(sink.socket, data.data(), data.size(), flags | MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      data.remove_prefix(sent);
    } else if (sent < 0 && errno == EINTR) {
      continue;
    } else if (sent < 0 && errno == EAGAIN) {
      if (!wait_writable(sink.socket, sink.deadline, sink.stall)) return false;
    } else {
      return false;
    }
  }
  return true;
}

/// Sends `length` bytes of `file` from `offset` without holding them in memory: sendfile(2),
/// or 1 MiB reads where the file system cannot sendfile. Returns the bytes sent, which are
/// fewer when the client went away, fell behind the sink's deadline, or the file shrank.
std::uint64_t send_file_range(const Sink& sink, int file, std::uint64_t offset,
                              std::uint64_t length) {
  off_t position = off_t(offset);
  std::uint64_t sent = 0;
  while (sent < length) {
    ssize_t n = ::sendfile(sink.socket, file, &position,
                           std::min<std::uint64_t>(length - sent, kChunkBytes));
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!wait_writable(sink.socket, sink.deadline, sink.stall)) return sent;
      continue;
    }
    if (n < 0 && (errno == EINVAL || errno == ENOSYS) && sent == 0) break;
    return sent;
  }
  if (sent == length) return sent;
  std::vector<char> chunk(kChunkBytes);
  while (sent < length) {
    ssize_t n = ::pread(file, chunk.data(), std::min<std::uint64_t>(length - sent, kChunkBytes),
                        off_t(offset + sent));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || !send_all(sink, std::string_view(chunk.data(), n))) break;
    sent += n;
  }
  return sent;
}

std::string response_head(int status, const std::string& fields, std::uint64_t content_length,
                          bool keep_alive) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nServer: kiln/{}\r\nDate: {}\r\n{}Content-Length: {}\r\nConnection: "
      "{}\r\n\r\n",
      status, reason_phrase(status), KILN_VERSION, http_date(std::time(nullptr)), fields,
      content_length, keep_alive ? "keep-alive" : "close");
}

bool has_token(const std::string& list, std::string_view token) {
  std::string lowered;
  for (char c : list) lowered += char(std::tolower(static_cast<unsigned char>(c)));
  size_t start = 0;
  while (start <= lowered.size()) {
    size_t end = std::min(lowered.find(',', start), lowered.size());
    std::string_view item = std::string_view(lowered).substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == token) return true;
    start = end + 1;
  }
  return false;
}

/// Control characters in a logged path could rewrite the operator's terminal.
std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

/// The status for an errno of open_beneath: 403 for a path that leaves the folder.
int refusal_for(int error) {
  switch (error) {
    case EXDEV:  // RESOLVE_BENEATH: a symlink or ".." points outside
    case ELOOP:  // a magic link, or a symlink loop
    case EACCES:
    case EPERM:
      return 403;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return 503;
    default:
      return 404;
  }
}

}  // namespace

HttpConnection::HttpConnection(ConnectionContext context) : context_(std::move(context)) {
  // Non-blocking, so every read and write waits in poll against its deadline instead of
  // blocking for as long as a slow client likes.
  int flags = ::fcntl(context_.client, F_GETFL);
  if (flags >= 0) ::fcntl(context_.client, F_SETFL, flags | O_NONBLOCK);
  // sendfile has no MSG_NOSIGNAL: a client that hangs up mid-body must give this thread EPIPE,
  // not kill the process with SIGPIPE.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
}

void HttpConnection::run() {
  for (bool first_request = true; !context_.stopping; first_request = false) {
    std::size_t head_end = 0;
    HeadRead read = read_head(head_end, first_request);
    if (read == HeadRead::closed) return;
    ParsedRequest parsed;
    Answer answered;
    if (read == HeadRead::too_large) {
      answered = send_status(431, false, false);
    } else if (read == HeadRead::timed_out) {
      answered = send_status(408, false, false);
    } else {
      parsed = parse_request_head(std::string_view(buffer_).substr(0, head_end));
      buffer_.erase(0, head_end);
      head_scanner_.reset();
      answered =
          parsed.refusal ? send_status(parsed.refusal, false, false) : answer(parsed.request);
    }
    bool understood = read == HeadRead::complete && parsed.refusal == 0;
    context_.log_request(fmt::format(
        "{} {} {} {} {}", context_.peer, understood ? printable(parsed.request.method) : "-",
        understood ? printable(parsed.request.target) : "-", answered.status, answered.body_bytes));
    if (!answered.keep_open) return linger();
  }
}

void HttpConnection::linger() {
  // Closing with unread request bytes (a POST body, a pipelined request) makes the kernel
  // send a reset, which can destroy the answer before the client has read it. Send FIN
  // instead and read what is still coming, briefly, the way nginx's lingering_close does.
  // The whole linger has one deadline, so a client trickling bytes cannot stretch it.
  ::shutdown(context_.client, SHUT_WR);
  Clock::time_point until = Clock::now() + kLinger;
  char chunk[8192];
  for (std::size_t drained = 0; drained < kMaxLingerBytes;) {
    if (!wait_readable(context_.client, until)) return;
    ssize_t n = ::recv(context_.client, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;
    drained += n;
  }
}

HttpConnection::HeadRead HttpConnection::read_head(std::size_t& head_end, bool first_request) {
  // One deadline for the whole head, not one per read: a client sending a byte now and then
  // would otherwise hold its connection slot for as long as it likes. A kept-alive
  // connection is idle, not mid-request, until its next request's first byte.
  std::optional<Clock::time_point> deadline;
  if (first_request) deadline = context_.accepted + context_.timeouts.request_head;
  const Clock::time_point idle_until = Clock::now() + context_.timeouts.idle;
  char chunk[8192];
  while (true) {
    head_end = head_scanner_.scan(buffer_);
    if (head_end > kMaxHeadBytes || (head_end == 0 && buffer_.size() > kMaxHeadBytes)) {
      return HeadRead::too_large;
    }
    if (head_end != 0) return HeadRead::complete;
    if (!deadline && !buffer_.empty()) deadline = Clock::now() + context_.timeouts.request_head;
    // Nothing sent at all is a connection to close quietly; part of a head earns a 408.
    if (!wait_readable(context_.client, deadline.value_or(idle_until))) {
      return buffer_.empty() ? HeadRead::closed : HeadRead::timed_out;
    }
    ssize_t n = ::recv(context_.client, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return HeadRead::closed;  // closed, reset, or the server stopping
    buffer_.append(chunk, n);
  }
}

HttpConnection::Answer HttpConnection::answer(const HttpRequest& request) {
  bool head_only = request.method == "HEAD";
  // A body on a GET is never read, so the connection cannot find where the next request
  // starts: answer, then close.
  bool has_body =
      !request.header("transfer-encoding").empty() ||
      (!request.header("content-length").empty() && request.header("content-length") != "0");
  bool keep_alive =
      request.minor_version >= 1 && !has_token(request.header("connection"), "close") && !has_body;
  if (context_.overloaded) return send_status(503, head_only, false, "Retry-After: 1\r\n");
  if (request.method != "GET" && !head_only) {
    return send_status(405, false, false, "Allow: GET, HEAD\r\n");
  }
  RequestPath path = resolve_request_path(request.target);
  if (path.refusal) return send_status(path.refusal, head_only, keep_alive);
  return send_file(request, path.relative, keep_alive);
}

HttpConnection::Answer HttpConnection::send_file(const HttpRequest& request,
                                                 const std::string& relative, bool keep_alive) {
  bool head_only = request.method == "HEAD";
  std::string name = relative;
  Fd file(open_beneath(context_.folder, name));
  struct stat status {};
  if (file.get() >= 0 && ::fstat(file.get(), &status) == 0 && S_ISDIR(status.st_mode)) {
    name = relative.empty() ? "index.html" : relative + "/index.html";
    file.reset(open_beneath(context_.folder, name));
    if (file.get() >= 0) ::fstat(file.get(), &status);
  }
  if (file.get() < 0) return send_status(refusal_for(-file.get()), head_only, keep_alive);
  // Folders without index.html, devices, FIFOs and sockets are not files to serve.
  if (!S_ISREG(status.st_mode)) return send_status(404, head_only, keep_alive);

  std::uint64_t size = status.st_size;
  // If-Range carries a validator this server never hands out, so it cannot match: send all.
  RangeDecision range = request.header("if-range").empty()
                            ? decide_range(request.header("range"), size)
                            : RangeDecision{};
  if (range.answer == RangeAnswer::unsatisfiable) {
    return send_status(416, head_only, keep_alive,
                       fmt::format("Accept-Ranges: bytes\r\nContent-Range: bytes */{}\r\n", size));
  }
  bool partial = range.answer == RangeAnswer::partial;
  ByteRange bytes = partial ? range.range : ByteRange{0, size - 1};
  std::uint64_t length = partial ? bytes.length() : size;
  int status_code = partial ? 206 : 200;
  std::string fields =
      fmt::format("Content-Type: {}\r\nAccept-Ranges: bytes\r\n", content_type_for(name));
  if (partial) {
    fields += fmt::format("Content-Range: bytes {}-{}/{}\r\n", bytes.first, bytes.last, size);
  }
  bool body_follows = !head_only && length > 0;
  std::string head = response_head(status_code, fields, length, keep_alive);
  Sink sink{context_.client, send_deadline(head.size() + (body_follows ? length : 0)),
            context_.timeouts.send_stall};
  // MSG_MORE lets the head share a packet with the body's start instead of waiting on Nagle.
  if (!send_all(sink, head, body_follows ? MSG_MORE : 0)) return {status_code, 0, false};
  if (!body_follows) return {status_code, 0, keep_alive};
  std::uint64_t sent = send_file_range(sink, file.get(), bytes.first, length);
  // Short of Content-Length the client must see the connection end, not a next response.
  return {status_code, sent, keep_alive && sent == length};
}

Clock::time_point HttpConnection::send_deadline(std::uint64_t bytes) const {
  // Capped so a file of any size cannot overflow the clock's arithmetic.
  double seconds = std::min(
      double(bytes) / double(std::max<std::uint64_t>(context_.timeouts.min_send_rate, 1)),
      30.0 * 24 * 3600);
  return Clock::now() + context_.timeouts.send_stall +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

HttpConnection::Answer HttpConnection::send_status(int status, bool head_only, bool keep_alive,
                                                   const std::string& extra_fields) {
  std::string body = fmt::format("{} {}\n", status, reason_phrase(status));
  std::string response =
      response_head(status, "Content-Type: text/plain\r\n" + extra_fields, body.size(), keep_alive);
  if (!head_only) response += body;
  bool sent = send_all(
      {context_.client, send_deadline(response.size()), context_.timeouts.send_stall}, response);
  return {status, sent && !head_only ? body.size() : 0, sent && keep_alive};
}

}  // namespace kiln
