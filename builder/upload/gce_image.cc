#include "builder/upload/gce_image.h"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "builder/upload/google_credentials.h"
#include "builder/util/error.h"

namespace kiln::google {

namespace {

std::string text(const nlohmann::json& doc, const char* key) {
  if (!doc.is_object()) return "";
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string insert_image_body(const ImageRequest& request) {
  nlohmann::json features = nlohmann::json::array();
  for (const auto& feature : request.guest_os_features) features.push_back({{"type", feature}});
  nlohmann::json body = {{"name", request.name},
                         {"rawDisk", {{"source", request.source_url}}},
                         {"architecture", request.architecture},
                         {"guestOsFeatures", features}};
  if (!request.family.empty()) body["family"] = request.family;
  if (!request.description.empty()) body["description"] = request.description;
  if (!request.labels.empty()) body["labels"] = request.labels;
  if (!request.storage_locations.empty()) body["storageLocations"] = request.storage_locations;
  return body.dump();
}

ImageInfo parse_image_info(const std::string& body) {
  ImageInfo info;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return info;
  info.exists = true;
  info.id = text(doc, "id");
  info.status = text(doc, "status");
  info.self_link = text(doc, "selfLink");
  if (auto raw = doc.find("rawDisk"); raw != doc.end()) info.source_url = text(*raw, "source");
  return info;
}

OperationInfo parse_operation(const std::string& body) {
  OperationInfo operation;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object()) return operation;
  operation.name = text(doc, "name");
  operation.status = text(doc, "status");
  auto error = doc.find("error");
  if (error != doc.end() && error->is_object()) {
    auto errors = error->find("errors");
    if (errors != error->end() && errors->is_array() && !errors->empty()) {
      const auto& first = (*errors)[0];
      operation.error = upload::printable(text(first, "code") + ": " + text(first, "message"));
    } else {
      operation.error = "the operation failed";
    }
  }
  return operation;
}

ComputeClient::ComputeClient(std::string endpoint, std::string token,
                             std::function<void(const std::string&)> say)
    : endpoint_(std::move(endpoint)),
      token_(std::move(token)),
      say_(std::move(say)),
      session_(upload::TlsSettings{}, {}) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

upload::RestReply ComputeClient::send(const std::string& method, const std::string& path,
                                      const std::string& body, const std::string& what) {
  upload::RestRequest request{.method = method,
                              .url = endpoint_ + path,
                              .headers = {"Authorization: Bearer " + token_},
                              .body = body,
                              .what = what,
                              .timeout_seconds = 120};
  return upload::send_with_retries(session_, request, 6, say_);
}

ImageInfo ComputeClient::get_image(const std::string& project, const std::string& name) {
  auto reply = send("GET", fmt::format("/projects/{}/global/images/{}", project, name), "",
                    "read image " + name);
  if (reply.status == 404) return {};
  if (!reply.success()) throw_failure("read image " + name, reply);
  return parse_image_info(reply.body);
}

ImageInfo ComputeClient::insert_image(const ImageRequest& request) {
  auto reply = send("POST", fmt::format("/projects/{}/global/images", request.project),
                    insert_image_body(request), "images.insert " + request.name);
  if (!reply.success()) throw_failure("images.insert " + request.name, reply);
  OperationInfo operation = parse_operation(reply.body);
  if (operation.name.empty() || operation.name.find_first_not_of(
                                    "abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
    throw Error("images.insert: the answer names no operation");
  // Compute Engine reads and checks the tarball in the background: a few minutes.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
  while (operation.status != "DONE") {
    if (std::chrono::steady_clock::now() > deadline)
      throw Error("images.insert " + request.name + ": not done after an hour");
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::string path =
        fmt::format("/projects/{}/global/operations/{}", request.project, operation.name);
    auto polled = send("GET", path, "", "images.insert operation");
    if (!polled.success()) throw_failure("images.insert operation " + operation.name, polled);
    operation = parse_operation(polled.body);
    if (operation.name.empty()) throw Error("images.insert: the operation's answer is not one");
  }
  if (!operation.error.empty())
    throw upload::CloudRefusal("images.insert " + request.name + ": " + operation.error);
  return get_image(request.project, request.name);
}

}  // namespace kiln::google
