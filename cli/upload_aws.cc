// kiln upload aws DIR: a built image folder to a registered AMI, through the EBS direct APIs.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/disk/gpt.h"
#include "builder/fetch/cache.h"
#include "builder/upload/aws_client.h"
#include "builder/upload/aws_credentials.h"
#include "builder/upload/ebs_snapshot.h"
#include "builder/upload/ec2_image.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/sha256.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/upload_common.h"

namespace kiln::cli {
namespace fs = std::filesystem;

namespace {

const std::vector<Flag> kAwsFlags = {
    {"--name", "NAME", "the AMI's name (required; unique in the account and region)"},
    {"--region", "REGION", "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)"},
    {"--profile", "NAME", "profile in ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE)"},
    {"--arch", "ARCH", "x86_64 or arm64 (default: the image's architecture)"},
    {"--boot-mode", "MODE",
     "uefi, legacy-bios or uefi-preferred (default: uefi-preferred for x86_64 images that also "
     "boot by BIOS, else uefi)"},
    {"--description", "TEXT", "the AMI's and snapshot's description"},
    {"--tags", "LIST", "key=value,... set on the snapshot and the AMI"},
    {"--public-regions", "LIST",
     "region,... to copy the AMI to and make public there (the upload's own region, when "
     "listed, is made public without a copy)"},
    {"--jobs", "N", "blocks uploaded at once (default 8)"},
    {"--dry-run", "", "print every request it would send (no credentials are read), send none"},
    {"--json", "", "print the result as one JSON document"},
};

/// The raw disk's journal: one per image file, region, endpoint and name.
std::filesystem::path aws_journal(const BuiltImage& image, const aws::AwsSettings& settings,
                                  const std::string& name) {
  return journal_path("aws", image.raw,
                      fmt::format("{}\n{}\n{}", settings.region, settings.endpoint("ebs"), name));
}

void show_progress(const aws::UploadProgress& p) {
  show_transfer(p.scanned, p.size, p.sent, p.seconds);
}

/// --public-regions: AWS region names, checked, without repeats, in the order given.
std::vector<std::string> parse_regions(const std::string& text) {
  std::vector<std::string> regions;
  for (const auto& region : split_list(text)) {
    bool plain =
        !region.empty() && region.size() <= 32 &&
        region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
    if (!plain) throw UsageError("--public-regions: '" + region + "' is not an AWS region name");
    if (std::find(regions.begin(), regions.end(), region) == regions.end())
      regions.push_back(region);
  }
  return regions;
}

/// Copies the AMI into each region (the home region keeps its own) and makes each public,
/// journaling every step so that running the command again continues where it stopped.
std::map<std::string, std::string> publish(const aws::AwsSettings& home,
                                           const std::string& image_id,
                                           const aws::ImageRequest& request,
                                           const std::vector<std::string>& regions,
                                           const aws::UploadJournal& journal,
                                           const fs::path& journal_file) {
  std::map<std::string, std::string> published;
  for (const auto& region : regions) {
    aws::AwsSettings there = home;
    there.region = region;
    aws::Client client(there);
    std::string id = image_id;
    if (region != home.region) {
      if (auto it = journal.copies.find(region); it != journal.copies.end()) {
        id = it->second;
      } else {
        id = aws::copy_image(client, home.region, image_id, request,
                             sha256_hex(image_id + " " + region).substr(0, 32), say);
        aws::journal_append(journal_file, "copy " + region + " " + id);
        say(fmt::format("copying {} to {} as {}", image_id, region, id));
      }
    }
    if (!journal.public_in.count(region)) {
      aws::wait_for_image(client, id, std::chrono::hours(2), say);
      aws::make_public(client, id, say);
      aws::journal_append(journal_file, "public " + region);
      say(fmt::format("{} is public in {}", id, region));
    }
    published[region] = id;
  }
  return published;
}

ExitCode dry_run(const BuiltImage& image, const aws::AwsSettings& settings,
                 const aws::ImageRequest& request, const aws::SnapshotUpload& upload,
                 const std::vector<std::string>& public_regions) {
  std::uint64_t size = fs::file_size(image.raw);
  std::uint64_t gib = aws::ebs_volume_gib(size);
  nlohmann::json start = {{"VolumeSize", gib},
                          {"Description", upload.description},
                          {"ClientToken", "<random, kept in the upload journal>"},
                          {"Timeout", 4320}};
  std::printf("%s", aws::describe(settings, {.service = "ebs",
                                             .method = "POST",
                                             .path = "/snapshots",
                                             .body = start.dump(),
                                             .content_type = "application/json"})
                        .c_str());
  std::printf(
      "PUT %s/snapshots/SNAPSHOT_ID/blocks/INDEX for each 512 KiB block of %s that is "
      "not all zeros, %d at a time\n  x-amz-Data-Length: 524288\n  x-amz-Checksum: "
      "<base64 SHA-256 of the block>\n  x-amz-Checksum-Algorithm: SHA256\n",
      settings.endpoint("ebs").c_str(), image.raw.string().c_str(), upload.jobs);
  std::printf(
      "POST %s/snapshots/completion/SNAPSHOT_ID\n  x-amz-ChangedBlocksCount: <blocks "
      "sent>\n  x-amz-Checksum: <SHA-256 of the blocks' SHA-256s>\n  "
      "x-amz-Checksum-Algorithm: SHA256\n  x-amz-Checksum-Aggregation-Method: LINEAR\n",
      settings.endpoint("ebs").c_str());
  std::printf("POST %s/ Action=DescribeSnapshots until the snapshot is completed\n",
              settings.endpoint("ec2").c_str());
  aws::ImageRequest shown = request;
  shown.snapshot_id = "SNAPSHOT_ID";
  std::printf("%s", aws::describe(settings, aws::register_image_call(shown)).c_str());
  for (const auto& region : public_regions) {
    aws::AwsSettings there = settings;
    there.region = region;
    if (region != settings.region) {
      std::printf(
          "POST %s/ Action=CopyImage SourceRegion=%s SourceImageId=AMI_ID Name=%s "
          "CopyImageTags=true\n",
          there.endpoint("ec2").c_str(), settings.region.c_str(), request.name.c_str());
    }
    std::printf(
        "POST %s/ Action=DescribeImages until available, then Action=ModifyImageAttribute "
        "LaunchPermission.Add.1.Group=all\n",
        there.endpoint("ec2").c_str());
  }
  return ExitCode::ok;
}

}  // namespace

ExitCode run_upload_aws(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kAwsFlags);
  const std::string synopsis = "kiln upload aws DIR --name NAME [options]";
  if (parsed.help) {
    std::printf("%s", render_help(synopsis,
                                  "Uploads DIR's raw disk (from kiln build) as an EBS snapshot "
                                  "through the EBS direct APIs, skipping all-zero blocks, and "
                                  "registers it as an AMI. Credentials, region and endpoints are "
                                  "read as AWS's SDKs read them (see the README); none is ever "
                                  "printed. An interrupted upload resumes when the same command "
                                  "runs again.",
                                  kAwsFlags)
                          .c_str());
    return ExitCode::ok;
  }
  if (parsed.positional.size() != 1) throw UsageError("expected one folder: " + synopsis);
  if (!parsed.has("name")) throw UsageError("--name is required: the AMI's name");
  BuiltImage image = read_built_image(parsed.positional[0]);
  if (image.raw.empty()) {
    throw UsageError(fmt::format("{} has no {}.raw: build with --outputs raw (or ami)",
                                 parsed.positional[0], image.name));
  }

  aws::ImageRequest request;
  request.name = parsed.get("name");
  if (request.name.size() < 3 || request.name.size() > 128)
    throw UsageError("--name: an AMI name has 3 to 128 characters");
  request.architecture = parsed.get("arch", image.arch == "arm64" ? "arm64" : "x86_64");
  if (request.architecture != "x86_64" && request.architecture != "arm64")
    throw UsageError("--arch: expected x86_64 or arm64");
  if ((request.architecture == "arm64") != (image.arch == "arm64")) {
    throw UsageError(fmt::format("--arch {}: the image in {} is built for {}", request.architecture,
                                 parsed.positional[0], image.arch));
  }
  std::string default_mode = image.boots_by_bios ? "uefi-preferred" : "uefi";
  request.boot_mode = parsed.get("boot-mode", default_mode);
  if (request.boot_mode != "uefi" && request.boot_mode != "legacy-bios" &&
      request.boot_mode != "uefi-preferred")
    throw UsageError("--boot-mode: expected uefi, legacy-bios or uefi-preferred");
  if (request.boot_mode != "uefi" && !image.boots_by_bios) {
    throw UsageError("--boot-mode " + request.boot_mode +
                     ": this image boots by UEFI only (no BIOS boot partition)");
  }
  request.description = parsed.get(
      "description", fmt::format("kiln {} {} ({})", image.name, image.version, image.arch));
  if (parsed.has("tags")) request.tags = parse_key_values(parsed.get("tags"), "--tags");
  std::vector<std::string> public_regions;
  if (parsed.has("public-regions")) public_regions = parse_regions(parsed.get("public-regions"));

  aws::SnapshotUpload upload;
  upload.raw = image.raw;
  upload.description = request.description;
  upload.tags = request.tags;
  upload.jobs = parse_jobs(parsed);

  const bool dry = parsed.has("dry-run");
  aws::AwsSettings settings = aws::resolve_settings(
      {.region = parsed.get("region"), .profile = parsed.get("profile"), .need_credentials = !dry},
      aws::process_environment());
  if (dry) return dry_run(image, settings, request, upload, public_regions);

  upload.journal = aws_journal(image, settings, request.name);
  aws::UploadJournal journal;
  if (fs::exists(upload.journal)) journal = aws::parse_journal(read_file(upload.journal));
  log::Stage stage(fmt::format("upload {} to AWS {} as {}", image.raw.filename().string(),
                               settings.region, request.name));
  aws::obtain_credentials(settings, say);
  log::info("    credentials from {}; region from {}", settings.credentials.source,
            settings.region_source);
  aws::SnapshotResult snapshot;
  std::string image_id = journal.image_id;
  aws::Client client(settings);
  if (image_id.empty()) {
    if (journal.snapshot_id.empty()) {
      if (std::string existing = aws::find_image(client, request.name, say); !existing.empty()) {
        throw aws::CloudRefusal(
            fmt::format("an image named '{}' already exists in {} ({}): give another --name",
                        request.name, settings.region, existing));
      }
    }
    snapshot = aws::upload_snapshot(settings, upload, show_progress, say);
    aws::wait_for_snapshot(client, snapshot.snapshot_id, std::chrono::hours(2), say);
    request.snapshot_id = snapshot.snapshot_id;
    image_id = aws::register_image(client, request, say);
    aws::journal_append(upload.journal, "image " + image_id);
    say(fmt::format("registered {} ({}, {})", image_id, request.architecture, request.boot_mode));
  } else {
    snapshot.snapshot_id = journal.snapshot_id;
    say(fmt::format("already uploaded and registered as {}", image_id));
  }
  auto published = publish(settings, image_id, request, public_regions, journal, upload.journal);
  std::uint64_t size = fs::file_size(image.raw);
  if (parsed.has("json")) {
    nlohmann::json doc = {{"cloud", "aws"},
                          {"region", settings.region},
                          {"imageId", image_id},
                          {"snapshotId", snapshot.snapshot_id},
                          {"name", request.name},
                          {"architecture", request.architecture},
                          {"bootMode", request.boot_mode},
                          {"imageBytes", size},
                          {"bytesSent", snapshot.bytes_sent},
                          {"blocksSent", snapshot.blocks_sent},
                          {"blocksResumed", snapshot.blocks_resumed},
                          {"seconds", snapshot.seconds},
                          {"publicImages", published}};
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("%s\n", image_id.c_str());
  }
  if (snapshot.blocks_sent) {
    log::info("    sent {} of {} ({:.1f}%) in {:.1f} s", log::human_bytes(snapshot.bytes_sent),
              log::human_bytes(size), 100.0 * snapshot.bytes_sent / size, snapshot.seconds);
  }
  return ExitCode::ok;
}

}  // namespace kiln::cli
