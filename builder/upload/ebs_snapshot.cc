#include "builder/upload/ebs_snapshot.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "builder/upload/aws_client.h"
#include "builder/upload/data_blocks.h"
#include "builder/util/base64.h"
#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln::aws {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxJournalLine = 256;

std::string raw_sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

std::string start_snapshot(Client& client, const SnapshotUpload& upload, std::uint64_t gib,
                           const std::string& token,
                           const std::function<void(const std::string&)>& say) {
  nlohmann::json request = {{"VolumeSize", gib},
                            {"Description", upload.description},
                            {"ClientToken", token},
                            // Minutes a pending snapshot waits for its blocks: the most EBS
                            // allows, so that an interrupted upload can resume days later.
                            {"Timeout", 4320}};
  if (!upload.tags.empty()) {
    nlohmann::json tags = nlohmann::json::array();
    for (const auto& [key, value] : upload.tags) tags.push_back({{"Key", key}, {"Value", value}});
    request["Tags"] = tags;
  }
  Reply reply = client.send({.service = "ebs",
                             .method = "POST",
                             .path = "/snapshots",
                             .body = request.dump(),
                             .content_type = "application/json",
                             .what = "StartSnapshot"},
                            8, say);
  if (!reply.ok()) throw_reply_error(reply);
  auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (!doc.is_object() || !doc.contains("SnapshotId") || !doc["SnapshotId"].is_string())
    throw Error("StartSnapshot: the answer names no SnapshotId");
  std::string id = doc["SnapshotId"];
  if (id.size() > 64 || id.rfind("snap-", 0) != 0)
    throw Error("StartSnapshot: unexpected snapshot id '" + id.substr(0, 64) + "'");
  return id;
}

}  // namespace

UploadJournal parse_journal(const std::string& text) {
  UploadJournal journal;
  upload::for_each_journal_line(
      text, kMaxJournalLine, [&](std::string_view key, std::string_view value) {
        if (key == "token") {
          journal.client_token = value;
        } else if (key == "snapshot") {
          journal.snapshot_id = value;
        } else if (key == "completed") {
          journal.completed = true;
        } else if (key == "image") {
          journal.image_id = value;
        } else if (key == "copy") {  // "copy REGION ami-…"
          std::size_t gap = value.find(' ');
          if (gap != std::string_view::npos && gap > 0)
            journal.copies[std::string(value.substr(0, gap))] = value.substr(gap + 1);
        } else if (key == "public" && !value.empty()) {
          journal.public_in.insert(std::string(value));
        } else if (key == "block") {  // "block N CHECKSUM"
          std::size_t gap = value.find(' ');
          auto number = upload::journal_number(value.substr(0, gap));
          if (gap != std::string_view::npos && number)
            journal.blocks[*number] = value.substr(gap + 1);
        }
      });
  return journal;
}

void journal_append(const fs::path& journal, const std::string& line) {
  append_line_synced(journal, line);
}

SnapshotResult upload_snapshot(const AwsSettings& settings, const SnapshotUpload& upload,
                               const std::function<void(const UploadProgress&)>& on_progress,
                               const std::function<void(const std::string&)>& say) {
  const auto started = std::chrono::steady_clock::now();
  UploadJournal journal;
  std::error_code ec;
  if (fs::exists(upload.journal, ec)) {
    if (fs::file_size(upload.journal) > (64u << 20))
      throw Error(upload.journal.string() + " is too large to be an upload journal");
    journal = parse_journal(read_file(upload.journal));
  }
  upload::JournalWriter writer(upload.journal);
  SnapshotResult result;
  const std::uint64_t size = fs::file_size(upload.raw);
  result.volume_gib = ebs_volume_gib(size);
  result.blocks_total = result.volume_gib * ((1ull << 30) / kEbsBlockSize);

  Client client(settings);
  if (journal.snapshot_id.empty()) {
    if (journal.client_token.empty()) {
      journal.client_token = upload::random_token();
      writer.append("token " + journal.client_token);
    }
    journal.snapshot_id =
        start_snapshot(client, upload, result.volume_gib, journal.client_token, say);
    writer.append("snapshot " + journal.snapshot_id);
    say(fmt::format("started snapshot {} ({} GiB)", journal.snapshot_id, result.volume_gib));
  } else {
    say(fmt::format("resuming snapshot {}: {} blocks were acknowledged before", journal.snapshot_id,
                    journal.blocks.size()));
  }
  result.snapshot_id = journal.snapshot_id;
  result.blocks_resumed = journal.blocks.size();

  if (!journal.completed) {
    std::mutex checksums_mutex;
    std::map<std::uint64_t, std::string> checksums = journal.blocks;
    upload::DataBlocks blocks{
        .file = upload.raw,
        .block_size = kEbsBlockSize,
        .jobs = upload.jobs,
        .already_sent = [&](std::uint64_t index) { return journal.blocks.count(index) > 0; },
        .make_sender = [&]() -> upload::BlockSender {
          auto own = std::make_shared<Client>(settings);
          return [&, own](std::uint64_t index, const std::string& block,
                          std::uint64_t& bytes_sent) -> std::optional<upload::BlockFailure> {
            std::string checksum = base64_encode(raw_sha256(block));
            Reply reply = own->send(
                {.service = "ebs",
                 .method = "PUT",
                 .path = fmt::format("/snapshots/{}/blocks/{}", journal.snapshot_id, index),
                 .headers = {fmt::format("x-amz-Data-Length: {}", kEbsBlockSize),
                             "x-amz-Checksum: " + checksum, "x-amz-Checksum-Algorithm: SHA256"},
                 .body = block,
                 .content_type = "application/octet-stream",
                 .what = fmt::format("PutSnapshotBlock {}", index)},
                8, say);
            if (!reply.ok())
              return upload::BlockFailure{reply.error, reply.status >= 400 && reply.status < 500};
            writer.append(fmt::format("block {} {}", index, checksum));
            std::lock_guard lock(checksums_mutex);
            checksums[index] = checksum;
            bytes_sent = kEbsBlockSize;
            return std::nullopt;
          };
        },
        .on_progress = on_progress};
    upload::DataBlocksResult sent = upload::send_data_blocks(blocks);
    result.blocks_sent = sent.blocks_sent;
    result.bytes_sent = sent.bytes_sent;

    // The linear aggregate: SHA-256 over every block's SHA-256, in block order.
    std::string digests;
    for (const auto& [index, checksum] : checksums) {
      auto raw = base64_decode(checksum);
      if (!raw || raw->size() != SHA256_DIGEST_LENGTH)
        throw Error(upload.journal.string() + " holds a damaged checksum for block " +
                    std::to_string(index) + "; remove it to upload from the start");
      digests += *raw;
    }
    Reply reply =
        client.send({.service = "ebs",
                     .method = "POST",
                     .path = "/snapshots/completion/" + journal.snapshot_id,
                     .headers = {fmt::format("x-amz-ChangedBlocksCount: {}", checksums.size()),
                                 "x-amz-Checksum: " + base64_encode(raw_sha256(digests)),
                                 "x-amz-Checksum-Algorithm: SHA256",
                                 "x-amz-Checksum-Aggregation-Method: LINEAR"},
                     .content_type = "application/json",
                     .what = "CompleteSnapshot"},
                    8, say);
    if (!reply.ok()) throw_reply_error(reply);
    writer.append("completed");
    say(fmt::format("completed snapshot {}: {} blocks of {} hold data ({} sent now)",
                    journal.snapshot_id, checksums.size(), result.blocks_total,
                    result.blocks_sent));
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace kiln::aws
