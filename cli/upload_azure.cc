// kiln upload azure DIR: a built image folder to a page blob and a managed image made from it.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/upload/azure_blob.h"
#include "builder/upload/azure_image.h"
#include "builder/upload/azure_settings.h"
#include "builder/util/error.h"
#include "builder/util/log.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/upload_common.h"

namespace kiln::cli {
namespace fs = std::filesystem;

namespace {

const std::vector<Flag> kAzureFlags = {
    {"--name", "NAME", "the managed image's name (required)"},
    {"--storage-account", "NAME",
     "the storage account the VHD goes to (default: AZURE_STORAGE_ACCOUNT or the connection "
     "string's)"},
    {"--container", "NAME", "the blob container (required; created, private, when missing)"},
    {"--blob-name", "NAME", "the page blob's name (default: NAME.vhd)"},
    {"--resource-group", "NAME", "the image's resource group (required unless --blob-only)"},
    {"--location", "REGION", "the image's region, e.g. westeurope (required unless --blob-only)"},
    {"--subscription", "ID", "the subscription (default: AZURE_SUBSCRIPTION_ID)"},
    {"--hyper-v-generation", "GEN",
     "V2 (UEFI, the default) or V1 (BIOS, for images with a BIOS boot partition)"},
    {"--tags", "LIST", "key=value,... set on the image"},
    {"--blob-only", "", "upload the VHD and print its URL; make no image"},
    {"--blob-endpoint", "URL", "Blob storage's endpoint (another cloud, Azurite)"},
    {"--management-endpoint", "URL",
     "Resource Manager's endpoint (default https://management.azure.com)"},
    {"--jobs", "N", "page writes in flight (default 8)"},
    {"--dry-run", "", "print every request it would send (no secret is read), send none"},
    {"--json", "", "print the result as one JSON document"},
};

// Container names: 3 to 63 lower-case letters, digits and single hyphens, not at the ends.
bool valid_container(const std::string& name) {
  if (name.size() < 3 || name.size() > 63 || name.front() == '-' || name.back() == '-' ||
      name.find("--") != std::string::npos)
    return false;
  return name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

// Blob names kiln writes: letters, digits and . _ - /, so that no URL escaping is needed.
bool valid_blob(const std::string& name) {
  return !name.empty() && name.size() <= 1024 && name.front() != '/' &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789."
             "_-/") == std::string::npos;
}

// Resource names: letters, digits, . _ - (and ( ) for groups), up to 80 characters.
void check_resource_name(const std::string& name, const std::string& flag, const char* extra) {
  bool plain = !name.empty() && name.size() <= 80 &&
               name.find_first_not_of(std::string("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                                                  "VWXYZ0123456789._-") +
                                      extra) == std::string::npos;
  if (!plain) throw UsageError(flag + ": '" + name + "' is not an Azure resource name");
}

void print_request(const std::string& method, const std::string& url,
                   const std::vector<std::string>& headers, const std::string& body) {
  std::printf("%s %s\n", method.c_str(), url.c_str());
  for (const auto& header : headers) std::printf("  %s\n", header.c_str());
  if (!body.empty()) std::printf("  %s\n", body.c_str());
}

ExitCode dry_run(const azure::StorageSettings& storage, const azure::EntraSettings* entra,
                 const std::string& management, const azure::ImageRequest& request,
                 const std::string& blob_path, const fs::path& vhd) {
  std::string auth = storage.sas_token.empty() ? "" : "?<SAS token>";
  std::vector<std::string> signed_headers = {
      "x-ms-date: <now>", "x-ms-version: " + std::string(azure::kStorageVersion)};
  if (storage.sas_token.empty())
    signed_headers.push_back("Authorization: SharedKey " + storage.account + ":<signature>");
  std::string blob = storage.blob_endpoint + blob_path;
  print_request("HEAD", blob + auth, signed_headers, "");
  auto create = signed_headers;
  create.insert(create.begin(), {"x-ms-blob-type: PageBlob",
                                 fmt::format("x-ms-blob-content-length: {}", fs::file_size(vhd)),
                                 "x-ms-meta-kilnupload: <random, kept in the upload journal>"});
  print_request("PUT", blob + auth, create, "");
  auto page = signed_headers;
  page.insert(page.begin(), {"x-ms-page-write: update", "x-ms-range: bytes=START-END",
                             "Content-MD5: <the pages' MD5>"});
  print_request("PUT", blob + "?comp=page" + (auth.empty() ? "" : "&<SAS token>"), page,
                "<each run of 64 KiB pages of " + vhd.string() + " that holds data, up to 4 MiB>");
  if (!entra) return ExitCode::ok;
  print_request("POST",
                fmt::format("{}/{}/oauth2/v2.0/token", entra->authority_host,
                            entra->tenant_id.empty() ? "<AZURE_TENANT_ID>" : entra->tenant_id),
                {"Content-Type: application/x-www-form-urlencoded"},
                azure::token_request_body(*entra, management + "/.default", true));
  std::string image_url =
      fmt::format("{}{}?api-version={}", management, azure::image_resource_path(request),
                  azure::kComputeApiVersion);
  print_request("GET", image_url, {"Authorization: Bearer <token>"}, "");
  print_request("PUT", image_url,
                {"Authorization: Bearer <token>", "Content-Type: application/json"},
                azure::create_image_body(request));
  std::printf("GET %s until its provisioningState is Succeeded\n", image_url.c_str());
  return ExitCode::ok;
}

}  // namespace

ExitCode run_upload_azure(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kAzureFlags);
  const std::string synopsis =
      "kiln upload azure DIR --name NAME --container C --resource-group G --location L [options]";
  if (parsed.help) {
    std::printf("%s",
                render_help(synopsis,
                            "Uploads DIR's fixed VHD from kiln build to Azure Blob storage "
                            "as a page blob, writing only the pages that hold data, then "
                            "makes a managed image of it with Resource Manager. Storage "
                            "credentials come from AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN "
                            "or AZURE_STORAGE_CONNECTION_STRING; the image needs a "
                            "service principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, "
                            "AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE). No secret "
                            "is ever printed. Running the same command again finishes an "
                            "interrupted upload.",
                            kAzureFlags)
                    .c_str());
    return ExitCode::ok;
  }
  if (parsed.positional.size() != 1) throw UsageError("expected one folder: " + synopsis);
  if (!parsed.has("name")) throw UsageError("--name is required: the image's name");
  if (!parsed.has("container")) throw UsageError("--container is required: the blob container");
  BuiltImage image = read_built_image(parsed.positional[0]);
  fs::path vhd = image.output("vhd");
  if (vhd.empty()) {
    throw UsageError(fmt::format("{} has no {}.vhd: build with --outputs vhd", parsed.positional[0],
                                 image.name));
  }
  azure::ImageRequest request;
  request.name = parsed.get("name");
  check_resource_name(request.name, "--name", "");
  std::string container = parsed.get("container");
  if (!valid_container(container))
    throw UsageError("--container: '" + container +
                     "' is not a container name (3 to 63 lower-case letters, digits, hyphens)");
  std::string blob = parsed.get("blob-name", request.name + ".vhd");
  if (!valid_blob(blob))
    throw UsageError("--blob-name: use letters, digits, '.', '_', '-' and '/' only");
  const bool blob_only = parsed.has("blob-only");
  const bool dry = parsed.has("dry-run");
  request.hyper_v_generation = parsed.get("hyper-v-generation", "V2");
  if (request.hyper_v_generation != "V1" && request.hyper_v_generation != "V2")
    throw UsageError("--hyper-v-generation: expected V1 or V2");
  if (request.hyper_v_generation == "V1" && !image.boots_by_bios)
    throw UsageError("--hyper-v-generation V1 boots by BIOS, and this image boots by UEFI only");
  if (!blob_only && image.arch == "arm64") {
    throw UsageError(
        "Azure makes Arm64 VMs only from Azure Compute Gallery image versions, not managed "
        "images: pass --blob-only and create the gallery image version from the blob");
  }
  if (!blob_only) {
    for (const char* flag : {"resource-group", "location"}) {
      if (!parsed.has(flag))
        throw UsageError(
            fmt::format("--{} is required to make the image (or pass --blob-only)", flag));
    }
    request.resource_group = parsed.get("resource-group");
    check_resource_name(request.resource_group, "--resource-group", "()");
    request.location = parsed.get("location");
    check_resource_name(request.location, "--location", "");
    request.subscription =
        parsed.get("subscription", process_environment()("AZURE_SUBSCRIPTION_ID").value_or(""));
    if (request.subscription.empty() && !dry)
      throw UsageError("--subscription is required (or AZURE_SUBSCRIPTION_ID)");
    if (request.subscription.empty()) {
      request.subscription = "<AZURE_SUBSCRIPTION_ID>";  // a dry run's placeholder
    } else {
      check_resource_name(request.subscription, "--subscription", "");
    }
    request.tags = {{"kiln-image", image.name}, {"kiln-version", image.version}};
    if (parsed.has("tags")) {
      for (auto& [key, value] : parse_key_values(parsed.get("tags"), "--tags", 512))
        request.tags[key] = value;
    }
  }
  int jobs = parse_jobs(parsed);
  std::string management = parsed.get("management-endpoint", "https://management.azure.com");
  while (!management.empty() && management.back() == '/') management.pop_back();

  azure::StorageSettings storage = azure::resolve_storage(
      parsed.get("storage-account"), parsed.get("blob-endpoint"), process_environment(), !dry);
  std::optional<azure::EntraSettings> entra;
  if (!blob_only) entra = azure::resolve_entra(process_environment(), !dry);
  const std::string blob_path = "/" + container + "/" + blob;
  request.blob_url = storage.blob_endpoint + blob_path;
  if (dry) return dry_run(storage, entra ? &*entra : nullptr, management, request, blob_path, vhd);

  log::Stage stage(fmt::format("upload {} to Azure{}", vhd.filename().string(),
                               blob_only ? "" : " as image " + request.name));
  fs::path journal =
      journal_path("azure", vhd, fmt::format("{}\n{}\n{}", storage.blob_endpoint, container, blob));
  say(fmt::format("storage account {} ({})", storage.account, storage.source));
  // Resource Manager first: refused credentials or a taken name end the run before the upload.
  std::optional<azure::ResourceManager> arm;
  azure::ImageState state;
  if (!blob_only) {
    arm.emplace(*entra, management, say);
    state = arm->get_image(request);
    say(fmt::format("authenticated ({})", entra->source));
    if (state.exists && state.blob_url != request.blob_url) {
      throw upload::CloudRefusal(fmt::format(
          "an image named '{}' already exists in resource group {} (made from {}): give "
          "another --name",
          request.name, request.resource_group, upload::printable(state.blob_url, 200)));
    }
  }
  azure::PageBlobResult uploaded;
  if (state.exists && state.provisioning_state == "Succeeded") {
    say(fmt::format("image {} already exists from {}", request.name, request.blob_url));
    uploaded.url = request.blob_url;
    uploaded.size = fs::file_size(vhd);
    uploaded.already_uploaded = true;
  } else {
    uploaded = azure::upload_page_blob(
        storage,
        {.vhd = vhd,
         .container = container,
         .blob = blob,
         .journal = journal,
         .metadata = {{"kilnimage", image.name}, {"kilnversion", image.version}},
         .jobs = jobs},
        [](const upload::UploadProgress& p) {
          show_transfer(p.scanned, p.size, p.sent, p.seconds);
        },
        say);
    if (!uploaded.already_uploaded) {
      say(fmt::format("uploaded {}: {:.0f} MiB of {:.0f} MiB sent ({} blocks resumed)",
                      uploaded.url, uploaded.bytes_sent / 1048576.0, uploaded.size / 1048576.0,
                      uploaded.blocks_resumed));
    }
    if (arm) {
      state = arm->create_image(request);
      say(fmt::format("created image {} ({}, Hyper-V {})", request.name, request.location,
                      request.hyper_v_generation));
    }
  }
  if (parsed.has("json")) {
    nlohmann::json doc = {{"cloud", "azure"},
                          {"blobUrl", uploaded.url},
                          {"imageBytes", uploaded.size},
                          {"bytesSent", uploaded.bytes_sent},
                          {"blocksResumed", uploaded.blocks_resumed},
                          {"seconds", uploaded.seconds}};
    if (!blob_only) {
      doc["imageId"] = state.id;
      doc["name"] = request.name;
      doc["location"] = request.location;
      doc["hyperVGeneration"] = request.hyper_v_generation;
    }
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("%s\n", blob_only ? uploaded.url.c_str() : state.id.c_str());
  }
  return ExitCode::ok;
}

}  // namespace kiln::cli
