// What kiln upload azure and kiln upload gce compute before any request: SharedKey's string to
// sign, the storage and Entra settings from the environment, CRC32C and the part plan, the
// service account's JWT, the request bodies, and the bounded readers of answers and journals.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "builder/upload/azure_blob.h"
#include "builder/upload/azure_image.h"
#include "builder/upload/azure_settings.h"
#include "builder/upload/gce_image.h"
#include "builder/upload/gcs_object.h"
#include "builder/upload/google_credentials.h"
#include "builder/util/base64.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace {

using json = nlohmann::json;

kiln::Environment env_of(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

template <typename F>
std::string error_of(F&& call) {
  try {
    call();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("SharedKey signs the verb, the signed headers in order, x-ms-* sorted and the resource",
          "[unit][upload][azure]") {
  kiln::azure::BlobCall call{.method = "PUT",
                             .path = "/images/kiln.vhd",
                             .query = {{"comp", "page"}},
                             .headers = {{"x-ms-version", "2021-08-06"},
                                         {"Content-MD5", "md5=="},
                                         {"x-ms-date", "Wed, 02 Dec 2026 10:00:00 GMT"},
                                         {"x-ms-range", "bytes=0-511"}},
                             .body = std::string(512, 'x'),
                             .content_type = "application/octet-stream"};
  CHECK(kiln::azure::shared_key_string_to_sign("acct", "/devstoreaccount1/images/kiln.vhd", call) ==
        "PUT\n\n\n512\nmd5==\napplication/octet-stream\n\n\n\n\n\n\n"
        "x-ms-date:Wed, 02 Dec 2026 10:00:00 GMT\nx-ms-range:bytes=0-511\n"
        "x-ms-version:2021-08-06\n/acct/devstoreaccount1/images/kiln.vhd\ncomp:page");
  call.body.clear();  // a zero length is signed as an empty field
  CHECK(kiln::azure::shared_key_string_to_sign("acct", "/c/b", call).rfind("PUT\n\n\n\nmd5==", 0) ==
        0);
}

TEST_CASE("Azure storage settings come from flags, AZURE_STORAGE_* and a connection string",
          "[unit][upload][azure]") {
  using kiln::azure::resolve_storage;
  const std::string connection =
      "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5==;"
      "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;";
  CHECK(kiln::azure::connection_string_field(connection, "accountkey") == "a2V5==");

  auto from_string =
      resolve_storage("", "", env_of({{"AZURE_STORAGE_CONNECTION_STRING", connection}}));
  CHECK(from_string.account == "devstoreaccount1");
  CHECK(from_string.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1");
  CHECK(from_string.account_key == "a2V5==");
  CHECK(from_string.source == "AZURE_STORAGE_CONNECTION_STRING");

  auto by_key = resolve_storage("kilnimages", "", env_of({{"AZURE_STORAGE_KEY", "c2VjcmV0"}}));
  CHECK(by_key.blob_endpoint == "https://kilnimages.blob.core.windows.net");
  CHECK(by_key.account_key == "c2VjcmV0");

  auto by_sas = resolve_storage("kilnimages", "https://edge.example/",
                                env_of({{"AZURE_STORAGE_SAS_TOKEN", "?sv=2021&sig=abc"}}));
  CHECK(by_sas.sas_token == "sv=2021&sig=abc");
  CHECK(by_sas.blob_endpoint == "https://edge.example");

  CHECK(error_of([] {
          resolve_storage("", "", env_of({}));
        }).find("--storage-account is required") != std::string::npos);
  CHECK(error_of([] {
          resolve_storage("Kiln_Images", "", env_of({{"AZURE_STORAGE_KEY", "k"}}));
        }).find("is not a storage account name") != std::string::npos);
  CHECK(error_of([] {
          resolve_storage("kilnimages", "", env_of({}));
        }).find("set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or") != std::string::npos);
  CHECK(resolve_storage("kilnimages", "", env_of({}), false).account_key.empty());  // dry run
}

TEST_CASE("an Entra service principal needs a tenant, a client and a secret or federated token",
          "[unit][upload][azure]") {
  kiln::test::TempDir dir;
  CHECK(error_of([] {
          kiln::azure::resolve_entra(env_of({{"AZURE_TENANT_ID", "t"}}));
        }).find("--blob-only") != std::string::npos);
  auto entra = kiln::azure::resolve_entra(env_of({{"AZURE_TENANT_ID", "tenant"},
                                                  {"AZURE_CLIENT_ID", "client"},
                                                  {"AZURE_CLIENT_SECRET", "s&cret="}}));
  CHECK(kiln::azure::token_request_body(entra, "https://management.azure.com/.default", false) ==
        "grant_type=client_credentials&client_id=client&scope=https%3A%2F%2Fmanagement.azure.com%"
        "2F.default&client_secret=s%26cret%3D");
  CHECK(kiln::azure::token_request_body(entra, "s", true).find("client_secret=<secret>") !=
        std::string::npos);

  kiln::write_file_atomic(dir.path() / "token", "eyJ.federated.jwt\n");
  auto federated = kiln::azure::resolve_entra(
      env_of({{"AZURE_TENANT_ID", "tenant"},
              {"AZURE_CLIENT_ID", "client"},
              {"AZURE_FEDERATED_TOKEN_FILE", (dir.path() / "token").string()}}));
  std::string body = kiln::azure::token_request_body(federated, "s", false);
  CHECK(body.find("&client_assertion=eyJ.federated.jwt") != std::string::npos);
  CHECK(body.find("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%"
                  "3Ajwt-bearer") != std::string::npos);
}

TEST_CASE("the managed image request is a generalized Linux disk from the blob",
          "[unit][upload][azure]") {
  kiln::azure::ImageRequest request{.subscription = "sub",
                                    .resource_group = "rg",
                                    .name = "kiln",
                                    .location = "westeurope",
                                    .blob_url = "https://a.blob.core.windows.net/c/kiln.vhd",
                                    .hyper_v_generation = "V1",
                                    .tags = {{"team", "platform"}}};
  CHECK(kiln::azure::image_resource_path(request) ==
        "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/images/kiln");
  auto body = json::parse(kiln::azure::create_image_body(request));
  CHECK(body["properties"]["hyperVGeneration"] == "V1");
  CHECK(body["properties"]["storageProfile"]["osDisk"]["blobUri"] == request.blob_url);
  CHECK(body["properties"]["storageProfile"]["osDisk"]["osState"] == "Generalized");
  CHECK(body["tags"]["team"] == "platform");

  auto state = kiln::azure::parse_image_state(
      R"({"id":"/x","properties":{"provisioningState":"Creating","storageProfile":{"osDisk":{"blobUri":"u"}}}})");
  CHECK(state.exists);
  CHECK(state.provisioning_state == "Creating");
  CHECK(state.blob_url == "u");
  CHECK(kiln::azure::arm_error(R"({"error":{"code":"Conflict","message":"busy"}})") ==
        std::pair<std::string, std::string>{"Conflict", "busy"});
  CHECK(kiln::azure::arm_error(
            R"({"error":"invalid_client","error_description":"AADSTS1: no\r\nTrace"})") ==
        std::pair<std::string, std::string>{"invalid_client", "AADSTS1: no"});
}

TEST_CASE("journals keep what the last upload wrote and ignore a line cut short",
          "[unit][upload][azure][gce]") {
  auto blob = kiln::azure::parse_page_blob_journal(
      "upload old\nblock 1\nblock 2\nupload new\nblock 7\nblock x\nblock 8\nblock 9");
  CHECK(blob.token == "new");
  CHECK(blob.blocks == std::set<std::uint64_t>{7, 8});
  CHECK(!blob.complete);
  CHECK(kiln::azure::parse_page_blob_journal("upload t\ncomplete\n").complete);

  auto object = kiln::google::parse_object_journal(
      "upload t1\npart 0 AAAAAA==\npart 1 BBBBBB==\nupload t2\npart 3 CCCCCC==\npart 4 DD");
  CHECK(object.token == "t2");
  CHECK(object.parts == std::map<std::uint64_t, std::string>{{3, "CCCCCC=="}});
}

TEST_CASE("CRC32C and the part plan match Cloud Storage's", "[unit][upload][gce]") {
  CHECK(kiln::google::crc32c(0, "123456789") == 0xE3069283u);  // the standard check value
  CHECK(kiln::google::crc32c(kiln::google::crc32c(0, "1234"), "56789") == 0xE3069283u);
  CHECK(kiln::google::crc32c_base64(0xE3069283u) == "4waSgw==");
  CHECK(kiln::google::part_size_for(1) == (32u << 20));
  CHECK(kiln::google::part_size_for(320ull << 20) == (32u << 20));
  std::uint64_t ten_gib = 10ull << 30;
  CHECK(kiln::google::part_size_for(ten_gib) == (320ull << 20));
  CHECK(kiln::google::part_size_for(ten_gib + 1) * 32 >= ten_gib + 1);

  CHECK(kiln::google::parse_object_info(R"({"name":"o","size":"42","crc32c":"x"})").size == 42);
  CHECK(kiln::google::parse_object_info(R"({"name":"o","size":42})").size == 42);
  CHECK(!kiln::google::parse_object_info(R"({"name":"o","size":"-1"})").valid);
}

TEST_CASE("a service account's JWT is RS256-signed for the token endpoint and the scope",
          "[unit][upload][gce]") {
  kiln::test::TempDir dir;
  REQUIRE(kiln::test::run_command("openssl genrsa -out '" + (dir.path() / "k.pem").string() +
                                  "' 2048 2>/dev/null")
              .exit_code == 0);
  json file = {{"type", "service_account"},
               {"project_id", "p"},
               {"private_key_id", "kid1"},
               {"private_key", kiln::read_file(dir.path() / "k.pem")},
               {"client_email", "up@p.iam.gserviceaccount.com"},
               {"token_uri", "https://oauth2.googleapis.com/token"}};
  auto credentials = kiln::google::parse_credentials_file(file.dump(), "key.json");
  CHECK(credentials.project_id == "p");
  std::string jwt =
      kiln::google::service_account_assertion(credentials, "https://scope.example", 1764669600);
  auto first = jwt.find('.'), second = jwt.rfind('.');
  auto header = json::parse(*kiln::base64url_decode(jwt.substr(0, first)));
  auto claims = json::parse(*kiln::base64url_decode(jwt.substr(first + 1, second - first - 1)));
  CHECK(header == json({{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "kid1"}}));
  CHECK(claims == json({{"iss", "up@p.iam.gserviceaccount.com"},
                        {"scope", "https://scope.example"},
                        {"aud", "https://oauth2.googleapis.com/token"},
                        {"iat", 1764669600},
                        {"exp", 1764673200}}));
  // The signature verifies with the key's public half.
  std::string signature = *kiln::base64url_decode(jwt.substr(second + 1));
  std::unique_ptr<BIO, void (*)(BIO*)> bio(
      BIO_new_mem_buf(credentials.private_key.data(), int(credentials.private_key.size())),
      BIO_free_all);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  REQUIRE(EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1);
  std::string input = jwt.substr(0, second);
  CHECK(EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                         input.size()) == 1);
  CHECK(kiln::google::token_request_body(credentials, "s", 0, true) ==
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<JWT signed "
        "with the key of up@p.iam.gserviceaccount.com>");
}

TEST_CASE("credential files name the field they lack and refuse kinds kiln does not speak",
          "[unit][upload][gce]") {
  using kiln::google::parse_credentials_file;
  CHECK(error_of([] { parse_credentials_file(R"({"type":"service_account"})", "k.json"); }) ==
        "k.json: a service_account file needs \"client_email\"");
  CHECK(error_of([] {
          parse_credentials_file(R"({"type":"external_account"})", "k.json");
        }).find("credentials of type 'external_account' are not supported") != std::string::npos);
  auto user = parse_credentials_file(
      R"({"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"})",
      "adc.json");
  CHECK(user.token_uri == "https://oauth2.googleapis.com/token");
  CHECK(kiln::google::token_request_body(user, "s", 0, true) ==
        "grant_type=refresh_token&client_id=c&client_secret=<secret>&refresh_token=<secret>");
  CHECK(
      error_of([] {
        parse_credentials_file(
            R"({"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r","token_uri":"http://evil.example/t"})",
            "adc.json");
      }).find("token_uri must be an https:// URL") != std::string::npos);
}

TEST_CASE("images.insert carries the guest OS features, the source and the architecture",
          "[unit][upload][gce]") {
  kiln::google::ImageRequest request{.project = "p",
                                     .name = "kiln",
                                     .family = "kiln",
                                     .source_url = "https://storage.googleapis.com/b/o.tar.gz",
                                     .architecture = "ARM64"};
  auto body = json::parse(kiln::google::insert_image_body(request));
  CHECK(body["rawDisk"]["source"] == request.source_url);
  CHECK(body["architecture"] == "ARM64");
  CHECK(body["family"] == "kiln");
  CHECK(body["guestOsFeatures"] ==
        json::parse(
            R"([{"type":"UEFI_COMPATIBLE"},{"type":"VIRTIO_SCSI_MULTIQUEUE"},{"type":"GVNIC"}])"));
  auto operation = kiln::google::parse_operation(
      R"({"name":"op-1","status":"DONE","error":{"errors":[{"code":"QUOTA_EXCEEDED","message":"Quota 'IMAGES' exceeded."}]}})");
  CHECK(operation.status == "DONE");
  CHECK(operation.error == "QUOTA_EXCEEDED: Quota 'IMAGES' exceeded.");
  CHECK(kiln::google::error_text(
            R"({"error":{"code":403,"status":"PERMISSION_DENIED","message":"no"}})") ==
        "PERMISSION_DENIED: no");
}
