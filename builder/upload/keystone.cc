#include "builder/upload/keystone.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "builder/util/error.h"

namespace kiln::openstack {

namespace {

using json = nlohmann::json;

// A token document with a large catalog is tens of KiB; 4 MiB is far beyond any.
constexpr std::size_t kMaxTokenDocument = 4 << 20;

json named(const std::string& name, const std::string& id, const json& extra = json()) {
  json out = json::object();
  if (!id.empty()) {
    out["id"] = id;
  } else {
    out["name"] = name;
    if (!extra.is_null()) out["domain"] = extra;
  }
  return out;
}

json domain(const std::string& name, const std::string& id) {
  if (!id.empty()) return {{"id", id}};
  if (!name.empty()) return {{"name", name}};
  return json();
}

std::string string_at(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string token_request_body(const Auth& auth, bool redact) {
  auto secret = [&](const std::string& value) { return redact ? "<secret>" : value; };
  json identity;
  if (auth.type == "v3applicationcredential") {
    json credential = {{"secret", secret(auth.application_credential_secret)}};
    if (!auth.application_credential_id.empty()) {
      credential["id"] = auth.application_credential_id;
    } else {
      credential["name"] = auth.application_credential_name;
      credential["user"] =
          named(auth.username, auth.user_id, domain(auth.user_domain_name, auth.user_domain_id));
    }
    identity = {{"methods", {"application_credential"}}, {"application_credential", credential}};
    // An application credential carries its own project: Keystone refuses a scope with it.
    return json{{"auth", {{"identity", identity}}}}.dump();
  }
  if (auth.type == "token") {
    identity = {{"methods", {"token"}}, {"token", {{"id", secret(auth.token)}}}};
  } else {
    json user =
        named(auth.username, auth.user_id, domain(auth.user_domain_name, auth.user_domain_id));
    user["password"] = secret(auth.password);
    identity = {{"methods", {"password"}}, {"password", {{"user", user}}}};
  }
  json body = {{"auth", {{"identity", identity}}}};
  if (!auth.project_id.empty() || !auth.project_name.empty()) {
    body["auth"]["scope"]["project"] =
        named(auth.project_name, auth.project_id,
              domain(auth.project_domain_name, auth.project_domain_id));
  }
  return body.dump();
}

std::string image_endpoint_from_catalog(const std::string& token_document,
                                        const std::string& interface, const std::string& region) {
  if (token_document.size() > kMaxTokenDocument) throw Error("Keystone's answer is too large");
  json doc = json::parse(token_document, nullptr, false);
  if (!doc.is_object() || !doc.contains("token") || !doc["token"].is_object())
    throw Error("Keystone's answer holds no token document");
  const json& token = doc["token"];
  auto catalog = token.find("catalog");
  if (catalog == token.end() || !catalog->is_array())
    throw Error("Keystone's token has no service catalog (is the token scoped to a project?)");
  std::vector<std::string> regions_seen;
  for (const json& service : *catalog) {
    if (!service.is_object() || string_at(service, "type") != "image") continue;
    auto endpoints = service.find("endpoints");
    if (endpoints == service.end() || !endpoints->is_array()) continue;
    for (const json& endpoint : *endpoints) {
      if (!endpoint.is_object() || string_at(endpoint, "interface") != interface) continue;
      std::string endpoint_region = string_at(endpoint, "region_id");
      if (endpoint_region.empty()) endpoint_region = string_at(endpoint, "region");
      std::string url = string_at(endpoint, "url");
      if (url.empty()) continue;
      if (region.empty() || endpoint_region == region) return url;
      regions_seen.push_back(endpoint_region);
    }
  }
  if (!regions_seen.empty()) {
    std::string seen;
    for (const auto& name : regions_seen) seen += (seen.empty() ? "" : ", ") + name;
    throw Error(fmt::format("the catalog has no {} image endpoint in region '{}' (it has: {})",
                            interface, upload::printable(region, 64),
                            upload::printable(seen, 200)));
  }
  throw Error(fmt::format("the catalog has no {} endpoint of type 'image' (Glance)", interface));
}

std::string image_api_base(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  auto last = url.rfind('/');
  std::string tail = last == std::string::npos ? "" : url.substr(last + 1);
  if (tail == "v2" || tail.starts_with("v2.")) return url.substr(0, last) + "/v2";
  return url + "/v2";
}

std::string identity_url(const Auth& auth) {
  std::string url = auth.auth_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url.ends_with("/v3") ? url : url + "/v3";
}

std::string image_url_without_catalog(const CloudSettings& settings) {
  if (!settings.image_endpoint_override.empty())
    return image_api_base(settings.image_endpoint_override);
  if (settings.auth.type == "none") return image_api_base(settings.auth.endpoint);
  return "";
}

std::string error_text(const std::string& body) {
  std::string_view text(body.data(), std::min<std::size_t>(body.size(), 64 << 10));
  if (!text.empty() && text.front() == '{') {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_object()) {
      const json& error = doc.contains("error") && doc["error"].is_object() ? doc["error"] : doc;
      std::string title = string_at(error, "title"), message = string_at(error, "message");
      if (message.empty()) message = string_at(error, "detail");
      std::string joined = title.empty()     ? message
                           : message.empty() ? title
                                             : title + ": " + message;
      if (!joined.empty()) return upload::printable(joined);
    }
  }
  // Glance answers with webob's plain text or a small HTML page: drop tags, keep the words.
  std::string words;
  bool in_tag = false;
  for (char c : text) {
    if (words.size() > 600) break;
    if (c == '<') {
      in_tag = true;
      words += ' ';
    } else if (c == '>') {
      in_tag = false;
    } else if (!in_tag) {
      words += c;
    }
  }
  return upload::printable(words);
}

void throw_failure(const std::string& what, const upload::RestReply& reply) {
  if (!reply.answered()) throw Error(what + ": " + reply.transport_error);
  std::string words = error_text(reply.body);
  std::string message =
      fmt::format("{}: HTTP {}{}", what, reply.status, words.empty() ? "" : ": " + words);
  auto request_id = reply.headers.find("x-openstack-request-id");
  if (request_id != reply.headers.end())
    message += " (request " + upload::printable(request_id->second, 80) + ")";
  if (reply.status >= 400 && reply.status < 500) throw upload::CloudRefusal(message);
  throw Error(message);
}

ImageAccess authenticate(upload::RestSession& session, const CloudSettings& settings,
                         const std::function<void(const std::string&)>& say) {
  ImageAccess access;
  access.image_url = image_url_without_catalog(settings);
  if (settings.auth.type == "none") return access;
  upload::RestRequest request{.method = "POST",
                              .url = identity_url(settings.auth) + "/auth/tokens",
                              .body = token_request_body(settings.auth, false),
                              .what = "Keystone authentication",
                              .timeout_seconds = 60};
  upload::RestReply reply = upload::send_with_retries(session, request, 5, say);
  if (!reply.success()) throw_failure("Keystone authentication (" + settings.source + ")", reply);
  auto token = reply.headers.find("x-subject-token");
  if (token == reply.headers.end() || token->second.empty())
    throw Error("Keystone answered without an X-Subject-Token header");
  access.token = token->second;
  if (access.image_url.empty()) {
    access.image_url = image_api_base(
        image_endpoint_from_catalog(reply.body, settings.interface, settings.region));
  }
  return access;
}

}  // namespace kiln::openstack
