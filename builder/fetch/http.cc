#include "builder/fetch/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace kiln::http {
namespace {

using Easy = std::unique_ptr<CURL, void (*)(CURL*)>;

Easy make_easy(const std::string& url) {
  global_init();
  Easy easy(curl_easy_init(), curl_easy_cleanup);
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(easy.get(), CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  // A stalled transfer (under 1 KiB/s for 60 s) counts as failed and is retried with resume.
  curl_easy_setopt(easy.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(easy.get(), CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(easy.get(), CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
  return easy;
}

struct FileSink {
  FILE* file;
  long status = 0;
  CURL* easy;
};

size_t write_to_file(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<FileSink*>(user);
  // Only a successful body is kept; an error page must not be appended to a partial file.
  if (sink->status == 0) curl_easy_getinfo(sink->easy, CURLINFO_RESPONSE_CODE, &sink->status);
  if (sink->status != 200 && sink->status != 206) return size * count;
  return std::fwrite(data, size, count, sink->file) * size;
}

size_t write_to_string(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

/// `text` when it is short printable ASCII (safe to quote in a message), else "".
std::string printable(const char* text) {
  std::string out = text ? text : "";
  if (out.size() > 200) return "";
  for (char c : out)
    if (c < 0x21 || c > 0x7e) return "";
  return out;
}

struct ProgressState {
  const std::function<void(const Progress&)>* callback;
  std::uint64_t offset;
};

int on_transfer(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* state = static_cast<ProgressState*>(user);
  if (*state->callback) {
    (*state->callback)(
        {state->offset + std::uint64_t(now), total > 0 ? state->offset + std::uint64_t(total) : 0});
  }
  return 0;
}

}  // namespace

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

GetResult download(const std::string& url, const std::filesystem::path& file,
                   const std::function<void(const Progress&)>& on_progress) {
  std::error_code ec;
  std::uint64_t offset =
      std::filesystem::exists(file, ec) ? std::filesystem::file_size(file, ec) : 0;
  FILE* out = std::fopen(file.c_str(), "ab");
  if (!out) return {0, "cannot open " + file.string()};
  Easy easy = make_easy(url);
  FileSink sink{out, 0, easy.get()};
  ProgressState state{&on_progress, offset};
  curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, write_to_file);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(easy.get(), CURLOPT_XFERINFOFUNCTION, on_transfer);
  curl_easy_setopt(easy.get(), CURLOPT_XFERINFODATA, &state);
  curl_easy_setopt(easy.get(), CURLOPT_NOPROGRESS, 0L);
  if (offset > 0) curl_easy_setopt(easy.get(), CURLOPT_RESUME_FROM_LARGE, curl_off_t(offset));
  CURLcode code = curl_easy_perform(easy.get());
  std::fflush(out);
  std::fclose(out);
  long status = 0;
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
  GetResult result{status, {}};
  if (code == CURLE_RANGE_ERROR || status == 416 || (offset > 0 && status == 200)) {
    // The server ignored or refused the range: start again from zero next time.
    std::filesystem::remove(file, ec);
    result.error = "server does not support resuming; restarting";
  } else if (code != CURLE_OK) {
    result.error = curl_easy_strerror(code);
  } else if (status != 200 && status != 206) {
    result.error = "HTTP status " + std::to_string(status);
  }
  return result;
}

GetResult get_text(const std::string& url, std::string& body, long timeout_seconds) {
  Easy easy = make_easy(url);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, write_to_string);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT, timeout_seconds);
  CURLcode code = curl_easy_perform(easy.get());
  long status = 0;
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
  if (code != CURLE_OK) return {status, curl_easy_strerror(code)};
  if (status != 200) return {status, "HTTP status " + std::to_string(status)};
  return {status, {}};
}

size_t write_capped(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<CappedSink*>(user);
  if (size * count > sink->max - sink->body->size()) {
    sink->over = true;
    return 0;
  }
  sink->body->append(data, size * count);
  return size * count;
}

Response request(const Request& spec) {
  Easy easy = make_easy(spec.url);
  Response response;
  CURL* handle = easy.get();
  curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, spec.method.c_str());
  CappedSink sink{&response.body, spec.max_response_bytes};
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, write_capped);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(handle, CURLOPT_TIMEOUT, spec.timeout_seconds);
  // API calls answer in place, like the agent's own client: a redirect is not followed, so a
  // bearer token or client certificate never goes to a host the kubeconfig did not name.
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, std::min(spec.timeout_seconds, 10L));
  auto blob = [](const std::string& text) {
    return curl_blob{const_cast<char*>(text.data()), text.size(), CURL_BLOB_COPY};
  };
  curl_blob ca = blob(spec.ca_pem), cert = blob(spec.client_cert_pem),
            key = blob(spec.client_key_pem);
  if (spec.ca_pem.empty()) {
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 0L);
  } else {
    curl_easy_setopt(handle, CURLOPT_CAINFO_BLOB, &ca);
    curl_easy_setopt(handle, CURLOPT_CAPATH, nullptr);  // only the pinned CA, not the host's store
  }
  if (!spec.client_cert_pem.empty()) {
    curl_easy_setopt(handle, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(handle, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(handle, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(handle, CURLOPT_SSLKEYTYPE, "PEM");
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(nullptr, curl_slist_free_all);
  auto add_header = [&](const std::string& header) {
    headers.reset(curl_slist_append(headers.release(), header.c_str()));
  };
  add_header("Accept: application/json");
  if (!spec.body.empty()) {
    add_header("Content-Type: " + spec.content_type);
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, spec.body.c_str());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE, long(spec.body.size()));
  }
  // The bearer token rides in a header, never in the URL or a log line.
  if (!spec.bearer_token.empty()) add_header("Authorization: Bearer " + spec.bearer_token);
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  CURLcode code = curl_easy_perform(handle);
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
  if (sink.over) {
    response.error = "the response body is larger than the " +
                     std::to_string(spec.max_response_bytes) + " bytes this request accepts";
    return response;
  }
  bool credentials = !spec.bearer_token.empty() || !spec.client_cert_pem.empty();
  if (credentials && response.status >= 300 && response.status < 400) {
    const char* location = nullptr;
    curl_easy_getinfo(handle, CURLINFO_REDIRECT_URL, &location);
    std::string target = printable(location);
    response.error = "the server answered HTTP " + std::to_string(response.status) +
                     ", a redirect" + (target.empty() ? "" : " to " + target) +
                     ", which a request carrying credentials does not follow (use the final "
                     "address as the kubeconfig's server)";
    return response;
  }
  // An API server may close a refused request early; its status line is still the answer.
  if (code != CURLE_OK && (response.status == 0 || response.status < 400)) {
    response.error = curl_easy_strerror(code);
    curl_off_t connected_after_us = 0;  // 0: no connection was made
    curl_easy_getinfo(handle, CURLINFO_CONNECT_TIME_T, &connected_after_us);
    response.unreachable = code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_CONNECT ||
                           (code == CURLE_OPERATION_TIMEDOUT && connected_after_us == 0);
  }
  return response;
}

bool reachable(const std::string& url, long timeout_seconds, std::string* why) {
  Easy easy = make_easy(url);
  curl_easy_setopt(easy.get(), CURLOPT_NOBODY, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT, timeout_seconds);
  curl_easy_setopt(easy.get(), CURLOPT_CONNECTTIMEOUT, timeout_seconds);
  CURLcode code = curl_easy_perform(easy.get());
  if (code != CURLE_OK && why) *why = curl_easy_strerror(code);
  return code == CURLE_OK;
}

}  // namespace kiln::http
