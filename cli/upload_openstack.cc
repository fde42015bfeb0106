// kiln upload openstack DIR: a built image folder to a Glance image Nova can boot.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "builder/fetch/cache.h"
#include "builder/upload/glance.h"
#include "builder/upload/keystone.h"
#include "builder/upload/openstack_settings.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/upload_common.h"

namespace kiln::cli {
namespace fs = std::filesystem;

namespace {

const std::vector<Flag> kOpenStackFlags = {
    {"--name", "NAME", "the image's name (required; kiln refuses one the project already has)"},
    {"--cloud", "NAME",
     "the cloud's entry in clouds.yaml (default: OS_CLOUD; else OS_* variables)"},
    {"--format", "FORMAT", "qcow2 or raw: which of the build's disks to upload (default: qcow2)"},
    {"--firmware", "TYPE", "uefi or bios: how Nova boots it (default uefi)"},
    {"--visibility", "V", "private, shared, community or public (default private)"},
    {"--property", "LIST", "key=value,... more image properties (override kiln's)"},
    {"--tags", "LIST", "tag,... Glance tags"},
    {"--dry-run", "", "print every request it would send (no secret is read), send none"},
    {"--json", "", "print the result as one JSON document"},
};

constexpr int kUploadAttempts = 5;

/// The file's MD5 (Glance's `checksum`) and SHA-512 (its `os_hash_value`), in one read.
std::pair<std::string, std::string> file_digests(const fs::path& file) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md5(EVP_MD_CTX_new(), EVP_MD_CTX_free),
      sha512(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(md5.get(), EVP_md5(), nullptr);
  EVP_DigestInit_ex(sha512.get(), EVP_sha512(), nullptr);
  for_each_piece(file, [&](std::string_view piece) {
    EVP_DigestUpdate(md5.get(), piece.data(), piece.size());
    EVP_DigestUpdate(sha512.get(), piece.data(), piece.size());
  });
  auto hex = [](EVP_MD_CTX* context) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context, digest, &length);
    std::string out;
    for (unsigned int i = 0; i < length; ++i) out += fmt::format("{:02x}", digest[i]);
    return out;
  };
  return {hex(md5.get()), hex(sha512.get())};
}

/// The disk's size as a guest sees it: a raw file's length, a qcow2's header field.
std::uint64_t virtual_size(const fs::path& file, const std::string& format) {
  if (format == "raw") return fs::file_size(file);
  std::string header = read_at(file, 0, 32);
  if (header.compare(0, 4, "QFI\xfb") != 0) throw Error(file.string() + " is not a qcow2 image");
  std::uint64_t size = 0;
  for (int i = 24; i < 32; ++i) size = (size << 8) | static_cast<unsigned char>(header[i]);
  return size;
}

/// The properties Nova and the clouds' image catalogs read, from what the manifest says.
std::map<std::string, std::string> boot_properties(const BuiltImage& image,
                                                   const std::string& firmware) {
  bool arm64 = image.arch == "arm64";
  std::map<std::string, std::string> properties = {
      {"architecture", arm64 ? "aarch64" : "x86_64"},
      {"hw_firmware_type", firmware},
      {"hw_machine_type", arm64 ? "virt" : (firmware == "uefi" ? "q35" : "pc")},
      {"hw_disk_bus", "virtio"},
      {"hw_vif_model", "virtio"},
      {"os_type", "linux"},
      {"kiln_image", image.name},
      {"kiln_version", image.version},
  };
  if (!image.distribution.empty()) properties["os_distro"] = image.distribution;
  static const std::map<std::string, std::string> kDebianVersions = {
      {"bookworm", "12"}, {"trixie", "13"}, {"forky", "14"}};
  if (auto it = kDebianVersions.find(image.suite);
      image.distribution == "debian" && it != kDebianVersions.end())
    properties["os_version"] = it->second;
  if (!image.kubernetes_version.empty())
    properties["kiln_kubernetes_version"] = image.kubernetes_version;
  return properties;
}

ExitCode dry_run(const openstack::CloudSettings& settings, const openstack::ImageRequest& request,
                 const fs::path& file) {
  std::string image_url = openstack::image_url_without_catalog(settings);
  if (image_url.empty()) image_url = "<the catalog's image endpoint>";
  if (settings.auth.type != "none") {
    std::printf("POST %s/auth/tokens\n  Content-Type: application/json\n  %s\n",
                openstack::identity_url(settings.auth).c_str(),
                openstack::token_request_body(settings.auth, true).c_str());
  }
  std::printf("GET %s/images?name=%s\n  X-Auth-Token: <token>\n", image_url.c_str(),
              request.name.c_str());
  std::printf("POST %s/images\n  X-Auth-Token: <token>\n  Content-Type: application/json\n  %s\n",
              image_url.c_str(), openstack::create_image_body(request).c_str());
  std::printf(
      "PUT %s/images/IMAGE_ID/file\n  X-Auth-Token: <token>\n  Content-Type: "
      "application/octet-stream\n  <%ju bytes of %s>\n",
      image_url.c_str(), std::uintmax_t(fs::file_size(file)), file.string().c_str());
  std::printf("GET %s/images/IMAGE_ID until it is active, then its checksum is compared\n",
              image_url.c_str());
  return ExitCode::ok;
}

/// Waits while another request still holds the image in "saving" (Glance puts it back to
/// "queued" when an upload breaks off).
std::optional<openstack::GlanceImage> settle(openstack::ImageClient& client,
                                             const std::string& id) {
  auto image = client.get(id);
  for (int i = 0; i < 60 && image && image->status == "saving"; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    image = client.get(id);
  }
  return image;
}

bool matches(const openstack::GlanceImage& image, const std::string& md5,
             const std::string& sha512) {
  if (image.hash_algo == "sha512" && !image.hash_value.empty()) return image.hash_value == sha512;
  return !image.checksum.empty() && image.checksum == md5;
}

struct UploadOutcome {
  std::uint64_t bytes_sent = 0;
  int attempts = 0;
};

/// PUTs the file until Glance has it, retrying a dropped connection or a 5xx: Glance has no
/// partial uploads, so each attempt sends the whole file again.
UploadOutcome upload_data(openstack::ImageClient& client, const std::string& id,
                          const fs::path& file, const std::string& md5, const std::string& sha512) {
  UploadOutcome outcome;
  std::uint64_t size = fs::file_size(file);
  auto started = std::chrono::steady_clock::now();
  std::uint64_t sent_before = 0, attempt_sent = 0;
  auto progress = [&](std::uint64_t sent) {
    attempt_sent = sent;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    show_transfer(sent, size, sent_before + sent, seconds);
  };
  upload::FileBody body{.path = file, .size = size, .on_progress = progress};
  std::mt19937 random(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    outcome.attempts = attempt;
    attempt_sent = 0;
    upload::RestReply reply = client.put_file(id, body);
    if (reply.success()) {
      outcome.bytes_sent = sent_before + size;
      return outcome;
    }
    bool retry = !reply.answered() || reply.status == 429 || reply.status >= 500;
    if (!retry || attempt == kUploadAttempts) openstack::throw_failure("upload image data", reply);
    sent_before += attempt_sent;
    auto image = settle(client, id);
    if (image && image->status == "active" && matches(*image, md5, sha512)) {
      outcome.bytes_sent = sent_before;
      return outcome;  // the answer was lost, not the data
    }
    if (!image || image->status != "queued") {
      throw Error(fmt::format("upload image data: the upload broke off and image {} is now {}", id,
                              image ? image->status : "gone"));
    }
    double wait = upload::backoff_seconds(attempt, random);
    say(fmt::format("upload image data: {}; sending the file again in {:.1f} s ({}/{})",
                    reply.answered() ? fmt::format("HTTP {}", reply.status) : reply.transport_error,
                    wait, attempt, kUploadAttempts - 1));
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  }
}

}  // namespace

ExitCode run_upload_openstack(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kOpenStackFlags);
  const std::string synopsis = "kiln upload openstack DIR --name NAME [options]";
  if (parsed.help) {
    std::printf("%s", render_help(synopsis,
                                  "Uploads DIR's qcow2 (or raw) disk from kiln build to Glance, "
                                  "with the properties Nova needs to boot it, and checks Glance's "
                                  "checksum of it. The cloud is read as OpenStack's own clients "
                                  "read it: clouds.yaml and secure.yaml, or the OS_* variables "
                                  "(see the README); no secret is ever printed. Running the same "
                                  "command again finishes an interrupted upload.",
                                  kOpenStackFlags)
                          .c_str());
    return ExitCode::ok;
  }
  if (parsed.positional.size() != 1) throw UsageError("expected one folder: " + synopsis);
  if (!parsed.has("name")) throw UsageError("--name is required: the image's name");
  BuiltImage image = read_built_image(parsed.positional[0]);

  openstack::ImageRequest request;
  request.name = parsed.get("name");
  if (request.name.empty() || request.name.size() > 255)
    throw UsageError("--name: an image name has 1 to 255 characters");
  std::string format =
      parsed.get("format", image.output("qcow2").empty() && !image.raw.empty() ? "raw" : "qcow2");
  if (format != "qcow2" && format != "raw") throw UsageError("--format: expected qcow2 or raw");
  fs::path file = image.output(format);
  if (file.empty()) {
    throw UsageError(fmt::format("{} has no {}.{}: build with --outputs {}", parsed.positional[0],
                                 image.name, format, format));
  }
  request.disk_format = format;
  request.visibility = parsed.get("visibility", "private");
  if (request.visibility != "private" && request.visibility != "shared" &&
      request.visibility != "community" && request.visibility != "public")
    throw UsageError("--visibility: expected private, shared, community or public");
  std::string firmware = parsed.get("firmware", "uefi");
  if (firmware != "uefi" && firmware != "bios")
    throw UsageError("--firmware: expected uefi or bios");
  if (firmware == "bios" && !image.boots_by_bios) {
    throw UsageError("--firmware bios: this image boots by UEFI only (no BIOS boot partition" +
                     std::string(image.raw.empty() ? "; build raw too so kiln can tell" : "") +
                     ")");
  }
  request.min_disk_gib = (virtual_size(file, format) + (1ull << 30) - 1) >> 30;
  request.properties = boot_properties(image, firmware);
  if (parsed.has("property")) {
    for (auto& [key, value] : parse_key_values(parsed.get("property"), "--property", 255))
      request.properties[key] = value;
  }
  if (parsed.has("tags")) request.tags = split_list(parsed.get("tags"));

  const bool dry = parsed.has("dry-run");
  openstack::CloudSettings settings =
      openstack::resolve_cloud(parsed.get("cloud"), process_environment(), !dry);
  if (dry) return dry_run(settings, request, file);

  log::Stage stage(
      fmt::format("upload {} to OpenStack as {}", file.filename().string(), request.name));
  std::string target =
      settings.auth.type == "none" ? settings.auth.endpoint : settings.auth.auth_url;
  fs::path journal_file = journal_path(
      "openstack", file,
      fmt::format("{}\n{}\n{}\n{}\n{}\n{}", target, settings.image_endpoint_override,
                  settings.auth.project_id + settings.auth.project_name,
                  settings.auth.application_credential_id, settings.region, request.name));
  openstack::UploadJournal journal;
  if (fs::exists(journal_file))
    journal = openstack::parse_journal(read_file_prefix(journal_file, 64 << 10));
  auto started = std::chrono::steady_clock::now();
  say("reading " + file.filename().string() + " for its checksums");
  auto [md5, sha512] = file_digests(file);

  openstack::ImageClient client(settings, say);
  say(fmt::format("authenticated ({}); image service {}", settings.source,
                  client.access().image_url));
  std::optional<openstack::GlanceImage> uploaded;
  if (!journal.image_id.empty()) {
    auto earlier = settle(client, journal.image_id);
    if (earlier && earlier->status == "active" && matches(*earlier, md5, sha512)) {
      say(fmt::format("already uploaded as {}", earlier->id));
      uploaded = earlier;
    } else if (earlier && earlier->status == "queued") {
      say(fmt::format("resuming: image {} from an earlier run is waiting for its data",
                      earlier->id));
    } else {
      say(fmt::format("image {} from an earlier run is {}; starting afresh", journal.image_id,
                      earlier ? earlier->status : "gone"));
      journal.image_id.clear();
    }
  }
  UploadOutcome outcome;
  if (!uploaded) {
    std::string id = journal.image_id;
    if (id.empty()) {
      auto same_name = client.find_by_name(request.name);
      if (!same_name.empty()) {
        throw upload::CloudRefusal(
            fmt::format("an image named '{}' already exists ({}): give another --name",
                        request.name, same_name.front().id));
      }
      id = client.create(request).id;
      append_line_synced(journal_file, "image " + id);
      say(fmt::format("created image {} ({}, {})", id, request.disk_format,
                      request.properties["architecture"]));
    }
    outcome = upload_data(client, id, file, md5, sha512);
    uploaded = settle(client, id);
    if (!uploaded || uploaded->status != "active") {
      throw Error(fmt::format("image {} is {} after its upload, not active", id,
                              uploaded ? uploaded->status : "gone"));
    }
    if (!matches(*uploaded, md5, sha512)) {
      throw Error(fmt::format(
          "image {}: Glance's checksum of the upload differs from {}'s: the data was changed "
          "on the way; delete the image and run again",
          id, file.filename().string()));
    }
    append_line_synced(journal_file, "verified");
    say(fmt::format(
        "uploaded and verified ({} {})", uploaded->hash_algo.empty() ? "md5" : uploaded->hash_algo,
        (uploaded->hash_value.empty() ? uploaded->checksum : uploaded->hash_value).substr(0, 16)));
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::uint64_t size = fs::file_size(file);
  if (parsed.has("json")) {
    nlohmann::json doc = {{"cloud", "openstack"},
                          {"imageId", uploaded->id},
                          {"name", request.name},
                          {"diskFormat", request.disk_format},
                          {"imageService", client.access().image_url},
                          {"imageBytes", size},
                          {"bytesSent", outcome.bytes_sent},
                          {"attempts", outcome.attempts},
                          {"sha512", sha512},
                          {"seconds", seconds}};
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("%s\n", uploaded->id.c_str());
  }
  return ExitCode::ok;
}

}  // namespace kiln::cli
