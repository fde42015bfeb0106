// kiln upload gce DIR: a built image folder to a Compute Engine image, through Cloud Storage.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/upload/gce_image.h"
#include "builder/upload/gcs_object.h"
#include "builder/upload/google_credentials.h"
#include "builder/util/error.h"
#include "builder/util/log.h"
#include "builder/util/time.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/upload_common.h"

namespace kiln::cli {
namespace fs = std::filesystem;

namespace {

const std::vector<Flag> kGceFlags = {
    {"--name", "NAME", "the image's name (required; lower-case letters, digits, hyphens)"},
    {"--bucket", "NAME", "the Cloud Storage bucket the tarball goes to (required)"},
    {"--project", "ID",
     "the project (default: CLOUDSDK_CORE_PROJECT, GOOGLE_CLOUD_PROJECT, the service account's)"},
    {"--object", "NAME", "the tarball's object name (default: NAME.tar.gz)"},
    {"--family", "NAME", "the image family"},
    {"--description", "TEXT", "the image's description"},
    {"--labels", "LIST", "key=value,... set on the image"},
    {"--storage-location", "LOCATION", "where the image is stored (a region or multi-region)"},
    {"--guest-os-features", "LIST",
     "feature,... (default UEFI_COMPATIBLE,VIRTIO_SCSI_MULTIQUEUE,GVNIC)"},
    {"--jobs", "N", "parts uploaded at once (default 4)"},
    {"--dry-run", "", "print every request it would send (no secret is read), send none"},
    {"--json", "", "print the result as one JSON document"},
};

bool lower_name(const std::string& name, std::size_t max, const char* extra) {
  return !name.empty() && name.size() <= max &&
         name.find_first_not_of(std::string("abcdefghijklmnopqrstuvwxyz0123456789-") + extra) ==
             std::string::npos;
}

std::string first_set(const Environment& environment, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (auto value = environment(name)) return *value;
  return "";
}

ExitCode dry_run(const google::Credentials& credentials, const google::StorageAccess& storage,
                 const std::string& compute, const google::ImageRequest& request,
                 const std::string& bucket, const std::string& object, const fs::path& tarball) {
  std::uint64_t size = fs::file_size(tarball);
  std::uint64_t part = google::part_size_for(size);
  std::uint64_t parts = std::max<std::uint64_t>(1, (size + part - 1) / part);
  if (credentials.kind == "service_account" || credentials.kind == "authorized_user") {
    std::printf("POST %s\n  Content-Type: application/x-www-form-urlencoded\n  %s\n",
                credentials.token_uri.c_str(),
                google::token_request_body(
                    credentials, "https://www.googleapis.com/auth/cloud-platform", unix_now(), true)
                    .c_str());
  } else if (credentials.kind == "metadata") {
    std::printf(
        "GET http://%s/computeMetadata/v1/instance/service-accounts/default/token\n"
        "  Metadata-Flavor: Google\n",
        credentials.metadata_host.c_str());
  }
  std::string auth = storage.token.empty() && storage.endpoint != "https://storage.googleapis.com"
                         ? ""
                         : "  Authorization: Bearer <token>\n";
  std::printf("GET %s/storage/v1/b/%s/o/%s\n%s", storage.endpoint.c_str(), bucket.c_str(),
              upload::form_encode(object).c_str(), auth.c_str());
  std::printf(
      "POST %s/upload/storage/v1/b/%s/o?uploadType=media&name=%s.kiln-part-TOKEN-NN\n%s"
      "  <each of %ju parts of %ju bytes of %s>\n",
      storage.endpoint.c_str(), bucket.c_str(), upload::form_encode(object).c_str(), auth.c_str(),
      std::uintmax_t(parts), std::uintmax_t(part), tarball.string().c_str());
  std::printf("POST %s/storage/v1/b/%s/o/%s/compose\n%s  {\"sourceObjects\": [the parts]}\n",
              storage.endpoint.c_str(), bucket.c_str(), upload::form_encode(object).c_str(),
              auth.c_str());
  std::printf("DELETE each part\n");
  std::printf("GET %s/projects/%s/global/images/%s\n  Authorization: Bearer <token>\n",
              compute.c_str(), request.project.c_str(), request.name.c_str());
  std::printf("POST %s/projects/%s/global/images\n  Authorization: Bearer <token>\n  %s\n",
              compute.c_str(), request.project.c_str(), google::insert_image_body(request).c_str());
  std::printf("GET %s/projects/%s/global/operations/OPERATION until it is DONE\n", compute.c_str(),
              request.project.c_str());
  return ExitCode::ok;
}

}  // namespace

ExitCode run_upload_gce(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kGceFlags);
  const std::string synopsis = "kiln upload gce DIR --name NAME --bucket B [--project P] [options]";
  if (parsed.help) {
    std::printf("%s", render_help(synopsis,
                                  "Uploads DIR's gce.tar.gz from kiln build to a Cloud Storage "
                                  "bucket (in parts, each checked by CRC32C, then composed), "
                                  "then makes a Compute Engine image of it with the guest OS "
                                  "features kiln images have. Credentials are found as Google's "
                                  "libraries find them: GOOGLE_APPLICATION_CREDENTIALS, gcloud's "
                                  "application default credentials, or the metadata server. No "
                                  "secret is ever printed. Running the same command again "
                                  "finishes an interrupted upload.",
                                  kGceFlags)
                          .c_str());
    return ExitCode::ok;
  }
  if (parsed.positional.size() != 1) throw UsageError("expected one folder: " + synopsis);
  if (!parsed.has("name")) throw UsageError("--name is required: the image's name");
  if (!parsed.has("bucket")) throw UsageError("--bucket is required: the Cloud Storage bucket");
  BuiltImage image = read_built_image(parsed.positional[0]);
  fs::path tarball = image.output("gce.tar.gz");
  if (tarball.empty()) {
    throw UsageError(fmt::format("{} has no {}.gce.tar.gz: build with --outputs gce",
                                 parsed.positional[0], image.name));
  }
  google::ImageRequest request;
  request.name = parsed.get("name");
  if (!lower_name(request.name, 63, "") || request.name.front() < 'a' || request.name.back() == '-')
    throw UsageError(
        "--name: an image name is 1 to 63 lower-case letters, digits and hyphens, "
        "starting with a letter");
  std::string bucket = parsed.get("bucket");
  if (!lower_name(bucket, 222, "_.") || bucket.size() < 3)
    throw UsageError("--bucket: '" + bucket + "' is not a bucket name");
  std::string object = parsed.get("object", request.name + ".tar.gz");
  if (object.empty() || object.size() > 900 ||
      object.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") !=
          std::string::npos)
    throw UsageError("--object: use letters, digits, '.', '_', '-' and '/' only");
  request.architecture = image.arch == "arm64" ? "ARM64" : "X86_64";
  request.family = parsed.get("family");
  if (!request.family.empty() && !lower_name(request.family, 63, ""))
    throw UsageError("--family: lower-case letters, digits and hyphens only");
  request.description =
      parsed.get("description", fmt::format("kiln image {} {}", image.name, image.version));
  if (parsed.has("storage-location")) request.storage_locations = {parsed.get("storage-location")};
  if (parsed.has("guest-os-features")) {
    request.guest_os_features = split_list(parsed.get("guest-os-features"));
    for (const auto& feature : request.guest_os_features) {
      if (feature.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string::npos)
        throw UsageError("--guest-os-features: '" + feature + "' is not a feature name");
    }
  }
  request.labels = {{"kiln-image", image.name}};
  if (parsed.has("labels")) {
    for (auto& [key, value] : parse_key_values(parsed.get("labels"), "--labels", 63))
      request.labels[key] = value;
  }
  int jobs = parsed.has("jobs") ? parse_jobs(parsed) : 4;

  const Environment environment = process_environment();
  const bool dry = parsed.has("dry-run");
  google::Credentials credentials = google::find_credentials(environment);
  request.project = parsed.get(
      "project", first_set(environment, {"CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_PROJECT"}));
  if (request.project.empty()) request.project = credentials.project_id;
  if (request.project.empty())
    throw UsageError("--project is required (or CLOUDSDK_CORE_PROJECT or GOOGLE_CLOUD_PROJECT)");
  if (!lower_name(request.project, 63, ":."))
    throw UsageError("--project: '" + request.project + "' is not a project id");
  google::StorageAccess storage;
  if (auto emulator = environment("STORAGE_EMULATOR_HOST")) {
    storage.endpoint =
        emulator->find("://") == std::string::npos ? "http://" + *emulator : *emulator;
    while (storage.endpoint.back() == '/') storage.endpoint.pop_back();
  }
  std::string compute = first_set(environment, {"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE"});
  if (compute.empty()) compute = "https://compute.googleapis.com/compute/v1";
  while (!compute.empty() && compute.back() == '/') compute.pop_back();
  request.source_url = "https://storage.googleapis.com/" + bucket + "/" + object;
  if (dry) return dry_run(credentials, storage, compute, request, bucket, object, tarball);

  log::Stage stage(
      fmt::format("upload {} to Google Cloud as {}", tarball.filename().string(), request.name));
  upload::RestSession auth_session(upload::TlsSettings{}, {});
  std::string token = google::access_token(auth_session, credentials, say);
  say(fmt::format("authenticated ({}{})", credentials.source,
                  credentials.client_email.empty() ? "" : ", " + credentials.client_email));
  if (!environment("STORAGE_EMULATOR_HOST")) storage.token = token;

  google::ComputeClient client(compute, token, say);
  google::ImageInfo existing = client.get_image(request.project, request.name);
  if (existing.exists && existing.source_url != request.source_url) {
    throw upload::CloudRefusal(
        fmt::format("an image named '{}' already exists in project {}: give another --name",
                    request.name, request.project));
  }
  fs::path journal =
      journal_path("gce", tarball, fmt::format("{}\n{}\n{}", storage.endpoint, bucket, object));
  google::ObjectResult uploaded;
  google::ImageInfo made = existing;
  if (existing.exists) {
    say(fmt::format("image {} already exists from gs://{}/{}", request.name, bucket, object));
  } else {
    uploaded = google::upload_object(
        storage,
        {.file = tarball,
         .bucket = bucket,
         .object = object,
         .metadata = {{"kiln-image", image.name}, {"kiln-version", image.version}},
         .journal = journal,
         .jobs = jobs},
        [](const upload::UploadProgress& p) {
          show_transfer(p.scanned, p.size, p.sent, p.seconds);
        },
        say);
    if (!uploaded.already_uploaded) {
      say(fmt::format("uploaded gs://{}/{} ({} parts, {} resumed; CRC32C {} verified)", bucket,
                      object, uploaded.parts, uploaded.parts_resumed, uploaded.crc32c));
    }
    made = client.insert_image(request);
    say(fmt::format("created image {} ({}, {})", request.name, request.architecture,
                    fmt::join(request.guest_os_features, " ")));
  }
  if (parsed.has("json")) {
    nlohmann::json doc = {{"cloud", "gce"},
                          {"imageId", made.id},
                          {"name", request.name},
                          {"project", request.project},
                          {"selfLink", made.self_link},
                          {"source", request.source_url},
                          {"imageBytes", uploaded.size},
                          {"bytesSent", uploaded.bytes_sent},
                          {"partsResumed", uploaded.parts_resumed},
                          {"guestOsFeatures", request.guest_os_features}};
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("%s\n", made.self_link.empty() ? request.name.c_str() : made.self_link.c_str());
  }
  return ExitCode::ok;
}

}  // namespace kiln::cli
