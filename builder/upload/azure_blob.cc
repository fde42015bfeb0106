#include "builder/upload/azure_blob.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "builder/upload/aws_client.h"
#include "builder/util/base64.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"
#include "builder/util/time.h"

namespace kiln::azure {
namespace fs = std::filesystem;

namespace {

// Blocks are what the journal records; within one, only the 64 KiB runs holding data are
// written, so the zeros between partitions and files are never sent.
constexpr std::uint64_t kBlockSize = 4 << 20;  // the most one Put Page takes
constexpr std::uint64_t kRunGranule = 64 << 10;
constexpr std::size_t kMaxJournalLine = 256;

std::string lower(std::string_view text) {
  std::string out;
  for (char c : text) out += scan::to_lower(c);
  return out;
}

std::string hmac_sha256_base64(const std::string& base64_key, const std::string& text) {
  auto key = base64_decode(base64_key);
  if (!key || key->empty()) throw Error("the storage account key is not base64");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), key->data(), int(key->size()),
            reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest, &length))
    throw Error("OpenSSL: HMAC-SHA256 failed");
  return base64_encode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string md5_base64(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr);
  return base64_encode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string header_value(const BlobCall& call, std::string_view name) {
  for (const auto& [key, value] : call.headers)
    if (lower(key) == name) return value;
  return "";
}

}  // namespace

std::string shared_key_string_to_sign(const std::string& account, const std::string& url_path,
                                      const BlobCall& call) {
  // https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
  std::string length = call.body.empty() ? "" : std::to_string(call.body.size());
  std::string text = call.method + "\n" + header_value(call, "content-encoding") + "\n" +
                     header_value(call, "content-language") + "\n" + length + "\n" +
                     header_value(call, "content-md5") + "\n" + call.content_type + "\n" +
                     "\n" +  // Date: x-ms-date is sent instead
                     header_value(call, "if-modified-since") + "\n" +
                     header_value(call, "if-match") + "\n" + header_value(call, "if-none-match") +
                     "\n" + header_value(call, "if-unmodified-since") + "\n" +
                     header_value(call, "range") + "\n";
  std::vector<std::pair<std::string, std::string>> canonical;
  for (const auto& [key, value] : call.headers) {
    std::string name = lower(key);
    if (name.rfind("x-ms-", 0) == 0) canonical.emplace_back(name, std::string(scan::trim(value)));
  }
  std::sort(canonical.begin(), canonical.end());
  for (const auto& [name, value] : canonical) text += name + ":" + value + "\n";
  text += "/" + account + url_path;
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [key, value] : call.query) query.emplace_back(lower(key), value);
  std::sort(query.begin(), query.end());
  for (const auto& [key, value] : query) text += "\n" + key + ":" + value;
  return text;
}

std::pair<std::string, std::string> storage_error(const upload::RestReply& reply) {
  std::string code, message;
  if (auto it = reply.headers.find("x-ms-error-code"); it != reply.headers.end()) code = it->second;
  if (code.empty()) code = aws::xml_value(reply.body, "Code");
  message = aws::xml_value(reply.body, "Message");
  // Storage messages carry "RequestId:…\nTime:…" after the sentence: keep the sentence.
  message = message.substr(0, message.find('\n'));
  return {upload::printable(code, 100), upload::printable(message)};
}

std::string describe_failure(const std::string& what, const upload::RestReply& reply) {
  if (!reply.answered()) return what + ": " + reply.transport_error;
  auto [code, message] = storage_error(reply);
  std::string text = fmt::format("{}: HTTP {}", what, reply.status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  if (reply.status == 403) text += " (check the storage account's key or SAS token)";
  return text;
}

BlobClient::BlobClient(const StorageSettings& settings)
    : settings_(settings),
      session_(upload::TlsSettings{}, {"content-length", "x-ms-blob-type", "x-ms-meta-kilnupload",
                                       "x-ms-error-code", "x-ms-request-id"}) {
  std::size_t scheme = settings.blob_endpoint.find("://");
  std::size_t slash = settings.blob_endpoint.find('/', scheme + 3);
  if (slash != std::string::npos) endpoint_path_ = settings.blob_endpoint.substr(slash);
}

std::string BlobClient::url(const std::string& path) const {
  return settings_.blob_endpoint + path;
}

upload::RestReply BlobClient::send(const BlobCall& call, int attempts,
                                   const std::function<void(const std::string&)>& on_retry) {
  std::string query;
  for (const auto& [key, value] : call.query)
    query += (query.empty() ? "?" : "&") + key + "=" + upload::form_encode(value);
  upload::RestRequest request{.method = call.method,
                              .url = url(call.path) + query,
                              .body = call.body,
                              .content_type = call.content_type,
                              .what = call.what,
                              .timeout_seconds = 120};
  if (!settings_.sas_token.empty()) request.secret_query = settings_.sas_token;
  // The date is signed, so a retry signs afresh: a request older than 15 minutes is refused.
  std::mt19937 random(std::random_device{}());
  upload::RestReply reply;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    BlobCall signed_call = call;
    signed_call.headers.emplace_back("x-ms-date", http_date(unix_now()));
    signed_call.headers.emplace_back("x-ms-version", kStorageVersion);
    request.headers.clear();
    for (const auto& [key, value] : signed_call.headers)
      request.headers.push_back(key + ": " + value);
    if (!settings_.account_key.empty()) {
      std::string signature = hmac_sha256_base64(
          settings_.account_key,
          shared_key_string_to_sign(settings_.account, endpoint_path_ + call.path, signed_call));
      request.headers.push_back("Authorization: SharedKey " + settings_.account + ":" + signature);
    }
    reply = session_.send_once(request);
    bool again = !reply.answered() || reply.status == 429 || reply.status >= 500;
    if (!again || attempt == attempts) break;
    double wait = upload::backoff_seconds(attempt, random);
    if (on_retry) {
      auto [code, message] = storage_error(reply);
      std::string why = !reply.answered() ? reply.transport_error
                        : code.empty()    ? fmt::format("HTTP {}", reply.status)
                                          : fmt::format("HTTP {} {}", reply.status, code);
      on_retry(fmt::format("{}: {}; retrying in {:.1f} s ({}/{})", call.what, why, wait, attempt,
                           attempts - 1));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  }
  return reply;
}

PageBlobJournal parse_page_blob_journal(const std::string& text) {
  PageBlobJournal journal;
  upload::for_each_journal_line(
      text, kMaxJournalLine, [&](std::string_view key, std::string_view value) {
        if (key == "upload") {  // a new blob: what was written to an older one does not count
          journal = PageBlobJournal{};
          journal.token = value;
        } else if (key == "complete") {
          journal.complete = true;
        } else if (auto number = upload::journal_number(value); key == "block" && number) {
          journal.blocks.insert(*number);
        }
      });
  return journal;
}

PageBlobResult upload_page_blob(
    const StorageSettings& settings, const PageBlobUpload& upload,
    const std::function<void(const upload::UploadProgress&)>& on_progress,
    const std::function<void(const std::string&)>& say) {
  const auto started = std::chrono::steady_clock::now();
  PageBlobResult result;
  result.size = fs::file_size(upload.vhd);
  if (result.size % 512 != 0)
    throw Error(upload.vhd.string() + " is not a whole number of 512-byte pages");
  const std::string path = "/" + upload.container + "/" + upload.blob;
  result.url = settings.blob_endpoint + path;
  PageBlobJournal journal;
  if (fs::exists(upload.journal))
    journal = parse_page_blob_journal(read_file_prefix(upload.journal, 4 << 20));

  BlobClient client(settings);
  auto head =
      client.send({.method = "HEAD", .path = path, .what = "read the blob's properties"}, 5, say);
  bool ours = false;
  if (head.success()) {
    auto token = head.headers.find("x-ms-meta-kilnupload");
    auto length = head.headers.find("content-length");
    ours = !journal.token.empty() && token != head.headers.end() &&
           token->second == journal.token && length != head.headers.end() &&
           length->second == std::to_string(result.size);
    if (!ours) {
      throw upload::CloudRefusal(fmt::format(
          "a blob named '{}' already exists in container '{}' and this upload did not write it: "
          "give another --blob-name, or delete it",
          upload.blob, upload.container));
    }
  } else if (head.answered() && head.status != 404) {
    std::string message = describe_failure("read the blob's properties", head);
    if (head.status < 500) throw upload::CloudRefusal(message);
    throw Error(message);
  } else if (!head.answered()) {
    throw Error(describe_failure("read the blob's properties", head));
  }

  upload::JournalWriter writer(upload.journal);
  if (ours && journal.complete) {
    say(fmt::format("already uploaded: {}", result.url));
    result.already_uploaded = true;
    return result;
  }
  if (ours) {
    say(fmt::format("resuming {}: {} blocks were written before", result.url,
                    journal.blocks.size()));
  } else {
    journal = PageBlobJournal{};
    journal.token = upload::random_token();
    BlobCall create{.method = "PUT",
                    .path = path,
                    .headers = {{"x-ms-blob-type", "PageBlob"},
                                {"x-ms-blob-content-length", std::to_string(result.size)},
                                {"x-ms-blob-content-type", "application/octet-stream"},
                                {"x-ms-meta-kilnupload", journal.token}},
                    .content_type = "application/octet-stream",
                    .what = "create page blob"};
    for (const auto& [key, value] : upload.metadata)
      create.headers.emplace_back("x-ms-meta-" + key, value);
    auto reply = client.send(create, 5, say);
    if (reply.status == 404 && storage_error(reply).first == "ContainerNotFound") {
      auto made = client.send({.method = "PUT",
                               .path = "/" + upload.container,
                               .query = {{"restype", "container"}},
                               .content_type = "application/octet-stream",
                               .what = "create container"},
                              5, say);
      if (!made.success() && storage_error(made).first != "ContainerAlreadyExists") {
        std::string message = describe_failure("create container " + upload.container, made);
        if (made.answered() && made.status < 500) throw upload::CloudRefusal(message);
        throw Error(message);
      }
      say(fmt::format("created container {} (private)", upload.container));
      reply = client.send(create, 5, say);
    }
    if (!reply.success()) {
      std::string message = describe_failure("create page blob", reply);
      if (reply.answered() && reply.status < 500) throw upload::CloudRefusal(message);
      throw Error(message);
    }
    writer.append("upload " + journal.token);
    say(fmt::format("created page blob {} ({} bytes)", result.url, result.size));
  }
  result.blocks_resumed = journal.blocks.size();

  const std::uint64_t size = result.size;
  upload::DataBlocks blocks{
      .file = upload.vhd,
      .block_size = kBlockSize,
      .jobs = upload.jobs,
      .already_sent = [&](std::uint64_t index) { return journal.blocks.count(index) > 0; },
      .make_sender = [&]() -> upload::BlockSender {
        auto own = std::make_shared<BlobClient>(settings);
        return [&, own](std::uint64_t index, const std::string& block,
                        std::uint64_t& bytes_sent) -> std::optional<upload::BlockFailure> {
          const std::uint64_t base = index * kBlockSize;
          const std::uint64_t end = std::min<std::uint64_t>(kBlockSize, size - base);
          auto zero = [&](std::uint64_t at) {
            std::string_view granule(block.data() + at, std::min(kRunGranule, end - at));
            return granule.find_first_not_of('\0') == std::string_view::npos;
          };
          for (std::uint64_t at = 0; at < end;) {
            if (zero(at)) {
              at += kRunGranule;
              continue;
            }
            std::uint64_t stop = at;
            while (stop < end && !zero(stop)) stop += kRunGranule;
            stop = std::min(stop, end);
            std::string_view run(block.data() + at, stop - at);
            std::string range = fmt::format("bytes={}-{}", base + at, base + stop - 1);
            auto reply = own->send({.method = "PUT",
                                    .path = path,
                                    .query = {{"comp", "page"}},
                                    .headers = {{"x-ms-page-write", "update"},
                                                {"x-ms-range", range},
                                                {"Content-MD5", md5_base64(run)}},
                                    .body = std::string(run),
                                    .content_type = "application/octet-stream",
                                    .what = "put pages " + range.substr(6)},
                                   8, say);
            if (!reply.success()) {
              return upload::BlockFailure{describe_failure("put pages " + range.substr(6), reply),
                                          reply.answered() && reply.status < 500};
            }
            bytes_sent += run.size();
            at = stop;
          }
          writer.append(fmt::format("block {}", index));
          return std::nullopt;
        };
      },
      .on_progress = on_progress};
  upload::DataBlocksResult sent = upload::send_data_blocks(blocks);
  result.bytes_sent = sent.bytes_sent;
  writer.append("complete");
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace kiln::azure
