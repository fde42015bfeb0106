#include "builder/upload/azure_image.h"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln::azure {

namespace {

constexpr std::size_t kMaxFederatedToken = 16 << 10;

std::string string_at(const nlohmann::json& doc, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &doc;
  for (const char* key : path) {
    if (!at->is_object()) return "";
    auto it = at->find(key);
    if (it == at->end()) return "";
    at = &*it;
  }
  return at->is_string() ? at->get<std::string>() : "";
}

[[noreturn]] void throw_arm_failure(const std::string& what, const upload::RestReply& reply) {
  if (!reply.answered()) throw Error(what + ": " + reply.transport_error);
  auto [code, message] = arm_error(reply.body);
  std::string text = fmt::format("{}: HTTP {}", what, reply.status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  if (reply.status >= 400 && reply.status < 500) throw upload::CloudRefusal(text);
  throw Error(text);
}

}  // namespace

std::string image_resource_path(const ImageRequest& request) {
  return fmt::format("/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/images/{}",
                     request.subscription, request.resource_group, request.name);
}

std::string create_image_body(const ImageRequest& request) {
  nlohmann::json body = {{"location", request.location},
                         {"properties",
                          {{"hyperVGeneration", request.hyper_v_generation},
                           {"storageProfile",
                            {{"osDisk",
                              {{"osType", "Linux"},
                               {"osState", "Generalized"},
                               {"blobUri", request.blob_url},
                               {"caching", "ReadWrite"}}}}}}}};
  if (!request.tags.empty()) body["tags"] = request.tags;
  return body.dump();
}

std::string token_request_body(const EntraSettings& entra, const std::string& scope, bool redact) {
  std::string body =
      "grant_type=client_credentials&client_id=" + upload::form_encode(entra.client_id) +
      "&scope=" + upload::form_encode(scope);
  if (!entra.client_secret.empty() || (redact && entra.federated_token_file.empty())) {
    return body +
           "&client_secret=" + (redact ? "<secret>" : upload::form_encode(entra.client_secret));
  }
  std::string assertion = "<token in " + entra.federated_token_file + ">";
  if (!redact) {
    assertion = read_file_prefix(entra.federated_token_file, kMaxFederatedToken);
    while (!assertion.empty() && (assertion.back() == '\n' || assertion.back() == '\r'))
      assertion.pop_back();
    if (assertion.empty())
      throw Error("AZURE_FEDERATED_TOKEN_FILE " + entra.federated_token_file + " is empty");
    assertion = upload::form_encode(assertion);
  }
  return body +
         "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
         "&client_assertion=" +
         assertion;
}

std::pair<std::string, std::string> arm_error(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  std::string code, message;
  if (doc.is_object()) {
    code = string_at(doc, {"error", "code"});
    message = string_at(doc, {"error", "message"});
    if (code.empty()) code = string_at(doc, {"error"});
    if (message.empty()) {  // Entra: the first line of error_description ("AADSTS7000215: …")
      message = string_at(doc, {"error_description"});
      message = message.substr(0, message.find_first_of("\r\n"));
    }
  }
  return {upload::printable(code, 100), upload::printable(message)};
}

ImageState parse_image_state(const std::string& body) {
  ImageState state;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return state;
  state.exists = true;
  state.id = string_at(doc, {"id"});
  state.provisioning_state = string_at(doc, {"properties", "provisioningState"});
  state.blob_url = string_at(doc, {"properties", "storageProfile", "osDisk", "blobUri"});
  return state;
}

ResourceManager::ResourceManager(const EntraSettings& entra, std::string endpoint,
                                 std::function<void(const std::string&)> say)
    : entra_(entra),
      endpoint_(std::move(endpoint)),
      say_(std::move(say)),
      session_(upload::TlsSettings{}, {"retry-after", "x-ms-request-id"}) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

void ResourceManager::authenticate() {
  upload::RestRequest request{
      .method = "POST",
      .url = fmt::format("{}/{}/oauth2/v2.0/token", entra_.authority_host, entra_.tenant_id),
      .body = token_request_body(entra_, endpoint_ + "/.default", false),
      .content_type = "application/x-www-form-urlencoded",
      .what = "Microsoft Entra token",
      .timeout_seconds = 60};
  auto reply = upload::send_with_retries(session_, request, 5, say_);
  if (!reply.success()) throw_arm_failure("Microsoft Entra token (" + entra_.source + ")", reply);
  auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  token_ = doc.is_object() ? string_at(doc, {"access_token"}) : "";
  bool printable = !token_.empty() && token_.size() < (16 << 10) &&
                   token_.find_first_of("\r\n") == std::string::npos;
  if (!printable) throw Error("Microsoft Entra answered without a usable access_token");
}

upload::RestReply ResourceManager::call(const std::string& method, const std::string& url,
                                        const std::string& body, const std::string& what) {
  if (token_.empty()) authenticate();
  for (int pass = 0;; ++pass) {
    upload::RestRequest request{.method = method,
                                .url = url,
                                .headers = {"Authorization: Bearer " + token_},
                                .body = body,
                                .what = what,
                                .timeout_seconds = 120};
    auto reply = upload::send_with_retries(session_, request, 5, say_);
    // An expired token is refused once; a second refusal is the answer.
    if (reply.status == 401 && pass == 0) {
      authenticate();
      continue;
    }
    return reply;
  }
}

ImageState ResourceManager::get_image(const ImageRequest& request) {
  std::string url = fmt::format("{}{}?api-version={}", endpoint_, image_resource_path(request),
                                kComputeApiVersion);
  auto reply = call("GET", url, "", "read image " + request.name);
  if (reply.status == 404) return {};
  if (!reply.success()) throw_arm_failure("read image " + request.name, reply);
  return parse_image_state(reply.body);
}

ImageState ResourceManager::create_image(const ImageRequest& request) {
  std::string url = fmt::format("{}{}?api-version={}", endpoint_, image_resource_path(request),
                                kComputeApiVersion);
  auto reply = call("PUT", url, create_image_body(request), "create image " + request.name);
  if (!reply.success()) throw_arm_failure("create image " + request.name, reply);
  ImageState state = parse_image_state(reply.body);
  // Resource Manager finishes the image in the background: poll the resource until its
  // provisioning state is terminal (30 minutes at most).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
  while (state.provisioning_state != "Succeeded") {
    if (state.provisioning_state == "Failed" || state.provisioning_state == "Canceled")
      throw Error(fmt::format("create image {}: Resource Manager reports it {}", request.name,
                              state.provisioning_state));
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(fmt::format("create image {}: still {} after 30 minutes", request.name,
                              state.provisioning_state));
    std::this_thread::sleep_for(std::chrono::seconds(3));
    state = get_image(request);
    if (!state.exists) throw Error("create image " + request.name + ": the image disappeared");
  }
  return state;
}

}  // namespace kiln::azure
