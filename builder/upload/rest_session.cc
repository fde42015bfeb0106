#include "builder/upload/rest_session.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "builder/fetch/http.h"
#include "builder/util/error.h"
#include "builder/util/scan.h"

namespace kiln::upload {

namespace {

// Header lines of a well-formed answer are short; a longer one is cut, never buffered whole.
constexpr std::size_t kMaxHeaderValue = 8 << 10;
// A file upload may take long on a slow link, but not forever: it must keep moving, and the
// whole request has a deadline of at least 10 minutes, more for a large file (256 KiB/s).
constexpr long kStalledSeconds = 120;

struct HeaderSink {
  const std::vector<std::string>* kept;
  std::map<std::string, std::string>* out;
};

size_t read_header(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<HeaderSink*>(user);
  std::string_view line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  std::string name;
  for (char c : line.substr(0, colon)) name += scan::to_lower(c);
  if (std::find(sink->kept->begin(), sink->kept->end(), name) != sink->kept->end()) {
    std::string_view value = scan::trim(line.substr(colon + 1));
    // A value kiln may send back (a token) must not carry control characters into a request.
    bool printable =
        value.size() <= kMaxHeaderValue &&
        std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    if (printable) (*sink->out)[name] = std::string(value);
  }
  return size * count;
}

struct FileSource {
  int fd = -1;
  std::uint64_t sent = 0;
  const FileBody* file = nullptr;
};

size_t read_file_body(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<FileSource*>(user);
  ssize_t got = ::read(source->fd, buffer, size * count);
  if (got < 0) return CURL_READFUNC_ABORT;
  source->sent += std::uint64_t(got);
  return size_t(got);
}

int on_transfer(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t uploaded) {
  auto* source = static_cast<FileSource*>(user);
  if (source->file->on_progress) source->file->on_progress(std::uint64_t(uploaded));
  return 0;
}

}  // namespace

struct RestSession::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl) curl_easy_cleanup(curl);
  }
};

RestSession::RestSession(TlsSettings tls, std::vector<std::string> kept_headers)
    : handle_(new Handle), tls_(std::move(tls)), kept_headers_(std::move(kept_headers)) {
  http::global_init();
}

RestSession::~RestSession() = default;

RestReply RestSession::send_once(const RestRequest& request, std::size_t max_reply_bytes) {
  if (!handle_->curl) handle_->curl = curl_easy_init();
  CURL* curl = handle_->curl;
  curl_easy_reset(curl);
  RestReply reply;
  std::string url = request.url;
  if (!request.secret_query.empty())
    url += (url.find('?') == std::string::npos ? "?" : "&") + request.secret_query;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);  // a token never follows a redirect
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, request.connect_timeout_seconds);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (!tls_.verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!tls_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls_.ca_file.c_str());
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(nullptr, curl_slist_free_all);
  auto add = [&](const std::string& header) {
    headers.reset(curl_slist_append(headers.release(), header.c_str()));
  };
  add("Accept: application/json");
  add("Expect:");
  for (const auto& header : request.headers) add(header);

  FileSource source;
  std::unique_ptr<int, void (*)(int*)> fd_guard(&source.fd, [](int* fd) {
    if (*fd >= 0) ::close(*fd);
  });
  if (request.file) {
    source.file = request.file;
    source.fd = ::open(request.file->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (source.fd < 0) throw Error("cannot read " + request.file->path.string());
    add("Content-Type: application/octet-stream");
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_file_body);
    curl_easy_setopt(curl, CURLOPT_READDATA, &source);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.file->size));
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_transfer);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &source);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, kStalledSeconds);
    long deadline = std::max<long>(600, long(request.file->size / (256 << 10)));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, deadline);
  } else {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, request.timeout_seconds);
    if (request.method == "GET") {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
      add("Content-Type: " + request.content_type);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.size()));
    }
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  http::CappedSink sink{&reply.body, max_reply_bytes};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http::write_capped);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  HeaderSink header_sink{&kept_headers_, &reply.headers};
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &header_sink);
  CURLcode code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  if (sink.over) {
    reply.transport_error = fmt::format("the answer is larger than {} bytes", max_reply_bytes);
  } else if (code != CURLE_OK) {
    reply.status = 0;
    reply.transport_error = fmt::format("{} ({})", curl_easy_strerror(code), request.url);
  }
  return reply;
}

RestReply send_with_retries(RestSession& session, const RestRequest& request, int attempts,
                            const std::function<void(const std::string&)>& on_retry) {
  std::mt19937 random(std::random_device{}());
  RestReply reply;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    reply = session.send_once(request);
    bool again = !reply.answered() || reply.status == 429 || reply.status >= 500;
    if (!again || attempt == attempts) break;
    double wait = backoff_seconds(attempt, random);
    if (on_retry) {
      std::string why =
          reply.answered() ? fmt::format("HTTP {}", reply.status) : reply.transport_error;
      on_retry(fmt::format("{}: {}; retrying in {:.1f} s ({}/{})", request.what, why, wait, attempt,
                           attempts - 1));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  }
  return reply;
}

double backoff_seconds(int attempt, std::mt19937& random) {
  double cap = std::min(20.0, 0.5 * double(1 << std::clamp(attempt - 1, 0, 6)));
  return std::uniform_real_distribution<double>(cap / 2, cap)(random);
}

std::string form_encode(const std::string& value) {
  std::string out;
  for (unsigned char c : value) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string printable(std::string_view text, std::size_t limit) {
  std::string out;
  bool space = false;
  for (char c : text.substr(0, limit)) {
    bool visible = c > 0x20 && c < 0x7f;
    if (!visible) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  if (text.size() > limit) out += "…";
  return out;
}

}  // namespace kiln::upload
