#include "builder/upload/google_credentials.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "builder/util/base64.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/time.h"

namespace kiln::google {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxCredentialsFile = 64 << 10;
constexpr char kCloudPlatform[] = "https://www.googleapis.com/auth/cloud-platform";

std::string field(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

bool usable_token(const std::string& token) {
  if (token.empty() || token.size() > (8 << 10)) return false;
  for (char c : token)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

}  // namespace

Credentials parse_credentials_file(const std::string& json, const std::string& source) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (!doc.is_object()) throw Error(source + " is not a JSON object");
  Credentials credentials;
  credentials.source = source;
  credentials.kind = field(doc, "type");
  if (!field(doc, "token_uri").empty()) credentials.token_uri = field(doc, "token_uri");
  auto require = [&](const char* key, std::string& into) {
    into = field(doc, key);
    if (into.empty())
      throw Error(fmt::format("{}: a {} file needs \"{}\"", source, credentials.kind, key));
  };
  if (credentials.kind == "service_account") {
    require("client_email", credentials.client_email);
    require("private_key", credentials.private_key);
    credentials.private_key_id = field(doc, "private_key_id");
    credentials.project_id = field(doc, "project_id");
  } else if (credentials.kind == "authorized_user") {
    require("client_id", credentials.client_id);
    require("client_secret", credentials.client_secret);
    require("refresh_token", credentials.refresh_token);
  } else {
    throw Error(fmt::format(
        "{}: credentials of type '{}' are not supported; use a service account key, an "
        "authorized user file (gcloud auth application-default login) or the metadata server",
        source, credentials.kind.substr(0, 40)));
  }
  if (credentials.token_uri.rfind("https://", 0) != 0 &&
      credentials.token_uri.rfind("http://127.", 0) != 0 &&
      credentials.token_uri.rfind("http://localhost", 0) != 0)
    throw Error(source + ": token_uri must be an https:// URL");
  return credentials;
}

Credentials find_credentials(const Environment& environment) {
  if (auto token = environment("CLOUDSDK_AUTH_ACCESS_TOKEN")) {
    if (!usable_token(*token)) throw Error("CLOUDSDK_AUTH_ACCESS_TOKEN is not a usable token");
    return {.kind = "access_token", .source = "CLOUDSDK_AUTH_ACCESS_TOKEN", .access_token = *token};
  }
  fs::path file;
  std::string source;
  if (auto path = environment("GOOGLE_APPLICATION_CREDENTIALS")) {
    file = *path;
    source = "GOOGLE_APPLICATION_CREDENTIALS (" + file.string() + ")";
    if (!fs::exists(file)) throw Error(source + " does not exist");
  } else if (auto config = environment("CLOUDSDK_CONFIG")
                               .value_or(environment("HOME").value_or("") + "/.config/gcloud");
             config != "/.config/gcloud") {
    // gcloud auth application-default login writes it into gcloud's configuration folder.
    fs::path well_known = fs::path(config) / "application_default_credentials.json";
    if (fs::exists(well_known)) {
      file = well_known;
      source = well_known.string();
    }
  }
  if (!file.empty()) {
    if (fs::file_size(file) > kMaxCredentialsFile) throw Error(source + " is too large");
    std::string text = read_file(file);
    Credentials credentials = parse_credentials_file(text, source);
    std::fill(text.begin(), text.end(), '\0');
    return credentials;
  }
  Credentials metadata{.kind = "metadata", .source = "the metadata server"};
  if (auto host = environment("GCE_METADATA_HOST")) metadata.metadata_host = *host;
  return metadata;
}

std::string service_account_assertion(const Credentials& credentials, const std::string& scope,
                                      long long now) {
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!credentials.private_key_id.empty()) header["kid"] = credentials.private_key_id;
  nlohmann::json claims = {{"iss", credentials.client_email},
                           {"scope", scope},
                           {"aud", credentials.token_uri},
                           {"iat", now},
                           {"exp", now + 3600}};
  std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
  std::unique_ptr<BIO, void (*)(BIO*)> bio(
      BIO_new_mem_buf(credentials.private_key.data(), int(credentials.private_key.size())),
      BIO_free_all);
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr, EVP_PKEY_free);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
    throw Error(credentials.source + ": private_key is not an unencrypted PEM RSA key");
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t length = 0;
  auto data = reinterpret_cast<const unsigned char*>(input.data());
  if (!context ||
      EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) != 1)
    throw Error(credentials.source + ": cannot sign with private_key");
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     data, input.size()) != 1)
    throw Error(credentials.source + ": cannot sign with private_key");
  signature.resize(length);
  return input + "." + base64url_encode(signature);
}

std::string token_request_body(const Credentials& credentials, const std::string& scope,
                               long long now, bool redact) {
  if (credentials.kind == "service_account") {
    return "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" +
           (redact ? std::string("<JWT signed with the key of ") + credentials.client_email + ">"
                   : service_account_assertion(credentials, scope, now));
  }
  return "grant_type=refresh_token&client_id=" + upload::form_encode(credentials.client_id) +
         "&client_secret=" +
         (redact ? "<secret>" : upload::form_encode(credentials.client_secret)) +
         "&refresh_token=" + (redact ? "<secret>" : upload::form_encode(credentials.refresh_token));
}

std::string access_token(upload::RestSession& session, const Credentials& credentials,
                         const std::function<void(const std::string&)>& say) {
  if (credentials.kind == "access_token") return credentials.access_token;
  upload::RestRequest request;
  if (credentials.kind == "metadata") {
    request = {.url = fmt::format("http://{}/computeMetadata/v1/instance/service-accounts/"
                                  "default/token",
                                  credentials.metadata_host),
               .headers = {"Metadata-Flavor: Google"},
               .what = "token from the metadata server",
               .timeout_seconds = 10,
               .connect_timeout_seconds = 2};
  } else {
    request = {.method = "POST",
               .url = credentials.token_uri,
               .body = token_request_body(credentials, kCloudPlatform, unix_now(), false),
               .content_type = "application/x-www-form-urlencoded",
               .what = "OAuth token",
               .timeout_seconds = 60};
  }
  auto reply = upload::send_with_retries(session, request, 4, say);
  std::fill(request.body.begin(), request.body.end(), '\0');
  if (!reply.success()) {
    if (credentials.kind == "metadata" && !reply.answered()) {
      throw Error(
          "no Google Cloud credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service account "
          "key, run 'gcloud auth application-default login', or run on a VM or pod with a "
          "service account (" +
          reply.transport_error + ")");
    }
    throw_failure(request.what + " (" + credentials.source + ")", reply);
  }
  auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  std::string token = doc.is_object() ? field(doc, "access_token") : "";
  if (!usable_token(token)) throw Error(request.what + ": the answer holds no usable access_token");
  return token;
}

std::string error_text(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return upload::printable(body, 200);
  auto error = doc.find("error");
  if (error != doc.end() && error->is_object()) {
    std::string status = field(*error, "status"), message = field(*error, "message");
    return upload::printable(status.empty() ? message : status + ": " + message);
  }
  if (error != doc.end() && error->is_string()) {
    std::string description = field(doc, "error_description");
    return upload::printable(error->get<std::string>() +
                             (description.empty() ? "" : ": " + description));
  }
  return "";
}

void throw_failure(const std::string& what, const upload::RestReply& reply) {
  if (!reply.answered()) throw Error(what + ": " + reply.transport_error);
  std::string words = error_text(reply.body);
  std::string message =
      fmt::format("{}: HTTP {}{}", what, reply.status, words.empty() ? "" : ": " + words);
  if (reply.status >= 400 && reply.status < 500) throw upload::CloudRefusal(message);
  throw Error(message);
}

}  // namespace kiln::google
