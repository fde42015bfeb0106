#include "builder/upload/aws_client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "builder/fetch/http.h"
#include "builder/util/error.h"
#include "builder/util/scan.h"

namespace kiln::aws {

namespace {

// Error documents and API answers are small; a block is 512 KiB.
constexpr std::size_t kMaxReplyBytes = 4 << 20;
constexpr std::size_t kMaxErrorScan = 64 << 10;
constexpr long kRequestTimeoutSeconds = 300;

struct Headers {
  std::string error_type, request_id;
};

bool starts_with_nocase(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

size_t read_header(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<Headers*>(user);
  std::string_view line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  auto value = [&](std::string_view name) {
    return std::string(scan::trim(line.substr(name.size())));
  };
  if (starts_with_nocase(line, "x-amzn-errortype:"))
    headers->error_type = value("x-amzn-errortype:");
  if (starts_with_nocase(line, "x-amzn-requestid:"))
    headers->request_id = value("x-amzn-requestid:");
  if (starts_with_nocase(line, "x-amz-request-id:"))
    headers->request_id = value("x-amz-request-id:");
  return size * count;
}

std::string printable(std::string_view text, std::size_t limit = 300) {
  std::string out;
  for (char c : text.substr(0, limit)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  if (text.size() > limit) out += "…";
  return out;
}

}  // namespace

struct Client::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl) curl_easy_cleanup(curl);
  }
};

std::string xml_value(const std::string& xml, const std::string& tag) {
  std::string_view text(xml.data(), std::min(xml.size(), kMaxErrorScan));
  std::string open = "<" + tag + ">", close = "</" + tag + ">";
  std::size_t start = text.find(open);
  if (start == std::string_view::npos) return "";
  start += open.size();
  std::size_t end = text.find(close, start);
  if (end == std::string_view::npos) return "";
  return std::string(text.substr(start, end - start));
}

std::pair<std::string, std::string> parse_error(const std::string& body,
                                                const std::string& error_type_header) {
  std::string code, message;
  if (!body.empty() && body.size() <= kMaxErrorScan && body.front() == '{') {
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_object()) {
      for (const char* key : {"message", "Message"}) {
        if (auto it = doc.find(key); it != doc.end() && it->is_string()) message = *it;
      }
      for (const char* key : {"__type", "code", "Code"}) {
        if (auto it = doc.find(key); it != doc.end() && it->is_string()) code = *it;
      }
    }
  } else {
    code = xml_value(body, "Code");
    message = xml_value(body, "Message");
  }
  if (code.empty()) code = error_type_header;
  // "ValidationException:http://internal.amazon.com/..." and "aws.protocols#Code" forms.
  code = code.substr(0, code.find(':'));
  if (auto hash = code.rfind('#'); hash != std::string::npos) code = code.substr(hash + 1);
  return {printable(code, 100), printable(message)};
}

void throw_reply_error(const Reply& reply) {
  if (reply.status >= 400 && reply.status < 500) throw CloudRefusal(reply.error);
  throw Error(reply.error);
}

bool retryable(const Reply& reply) {
  if (reply.ok()) return false;
  if (reply.status == 0 || reply.status == 429 || reply.status >= 500) return true;
  static const char* kThrottling[] = {
      "Throttling", "ThrottlingException",       "RequestLimitExceeded", "RequestThrottled",
      "SlowDown",   "RequestThrottledException", "InternalError",        "ServiceUnavailable"};
  return std::any_of(std::begin(kThrottling), std::end(kThrottling),
                     [&](const char* code) { return reply.error_code == code; });
}

std::string describe(const AwsSettings& settings, const Call& call) {
  std::string out =
      fmt::format("{} {}{}\n", call.method, settings.endpoint(call.service), call.path);
  for (const auto& header : call.headers) out += "  " + header + "\n";
  if (!call.content_type.empty()) out += "  Content-Type: " + call.content_type + "\n";
  bool text = call.content_type != "application/octet-stream";
  if (!call.body.empty())
    out += text ? "  " + call.body + "\n" : fmt::format("  <{} bytes>\n", call.body.size());
  return out;
}

Client::Client(const AwsSettings& settings) : settings_(settings), handle_(new Handle) {
  http::global_init();
}

Client::~Client() = default;

Reply Client::send_once(const Call& call) {
  if (!handle_->curl) handle_->curl = curl_easy_init();
  CURL* curl = handle_->curl;
  curl_easy_reset(curl);
  Reply reply;
  std::string url = settings_.endpoint(call.service) + call.path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, kRequestTimeoutSeconds);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  std::string scope = fmt::format("aws:amz:{}:{}", settings_.region, call.service);
  curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, scope.c_str());
  // The key pair goes to libcurl's signer only: never a URL, an argument or a header.
  curl_easy_setopt(curl, CURLOPT_USERNAME, settings_.credentials.access_key_id.c_str());
  curl_easy_setopt(curl, CURLOPT_PASSWORD, settings_.credentials.secret_access_key.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(nullptr, curl_slist_free_all);
  auto add = [&](const std::string& header) {
    headers.reset(curl_slist_append(headers.release(), header.c_str()));
  };
  for (const auto& header : call.headers) add(header);
  if (!settings_.credentials.session_token.empty())
    add("X-Amz-Security-Token: " + settings_.credentials.session_token);
  if (call.method != "GET") {
    add("Content-Type: " +
        (call.content_type.empty() ? std::string("application/json") : call.content_type));
  }
  add("Expect:");  // no 100-continue round trip per block
  if (call.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(call.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  http::CappedSink sink{&reply.body, kMaxReplyBytes};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http::write_capped);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  Headers answer;
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &answer);
  CURLcode code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  reply.request_id = answer.request_id;
  if (sink.over) {
    reply.error = fmt::format("{}: the answer is larger than {} bytes", call.what, kMaxReplyBytes);
  } else if (code != CURLE_OK) {
    reply.status = 0;
    reply.error = fmt::format("{}: {} ({})", call.what, curl_easy_strerror(code), url);
  } else if (reply.status < 200 || reply.status >= 300) {
    auto [error_code, message] = parse_error(reply.body, answer.error_type);
    reply.error_code = error_code;
    reply.error = fmt::format(
        "{}: HTTP {}{}{}{}", call.what, reply.status, error_code.empty() ? "" : " " + error_code,
        message.empty() ? "" : ": " + message,
        reply.request_id.empty() ? "" : " (request " + reply.request_id + ")");
  }
  return reply;
}

Reply Client::send(const Call& call, int attempts,
                   const std::function<void(const std::string&)>& on_retry) {
  std::mt19937 jitter(std::random_device{}());
  Reply reply;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    reply = send_once(call);
    if (!retryable(reply) || attempt == attempts) break;
    double wait = upload::backoff_seconds(attempt, jitter);
    if (on_retry)
      on_retry(fmt::format("{}; retrying in {:.1f} s ({}/{})", reply.error, wait, attempt,
                           attempts - 1));
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  }
  return reply;
}

}  // namespace kiln::aws
