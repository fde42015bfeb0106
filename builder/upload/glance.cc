#include "builder/upload/glance.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "builder/upload/data_blocks.h"
#include "builder/util/error.h"
#include "builder/util/scan.h"

namespace kiln::openstack {

namespace {

using json = nlohmann::json;

// Image ids are UUIDs; a digest is at most SHA-512's 128 hex digits.
bool valid_id(const std::string& id) {
  return id.size() <= 64 &&
         scan::all_of(id, [](char c) { return scan::is_alnum(c) || c == '-' || c == '_'; });
}

bool valid_hex(const std::string& text, std::size_t max) {
  return text.empty() || (text.size() <= max && scan::all_of(text, scan::is_hex_digit));
}

std::optional<GlanceImage> image_from(const json& doc) {
  if (!doc.is_object()) return std::nullopt;
  GlanceImage image;
  for (const auto& [key, value] : doc.items()) {
    if (value.is_string() && key.size() <= 255) image.properties[key] = value.get<std::string>();
  }
  auto text = [&](const char* key) {
    auto it = image.properties.find(key);
    return it == image.properties.end() ? std::string() : it->second;
  };
  image.id = text("id");
  image.name = text("name");
  image.status = text("status");
  image.disk_format = text("disk_format");
  image.container_format = text("container_format");
  image.visibility = text("visibility");
  image.checksum = text("checksum");
  image.hash_algo = text("os_hash_algo");
  image.hash_value = text("os_hash_value");
  if (auto size = doc.find("size"); size != doc.end() && size->is_number_unsigned())
    image.size = size->get<std::uint64_t>();
  if (image.id.empty() || !valid_id(image.id) || !valid_hex(image.checksum, 32) ||
      !valid_hex(image.hash_value, 128))
    return std::nullopt;
  return image;
}

std::string percent_encode(const std::string& value) {
  std::string out;
  for (unsigned char c : value) {
    if (scan::is_alnum(char(c)) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

std::optional<GlanceImage> parse_image(const std::string& body) {
  return image_from(json::parse(body, nullptr, false));
}

std::vector<GlanceImage> parse_image_list(const std::string& body) {
  std::vector<GlanceImage> out;
  json doc = json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("images") || !doc["images"].is_array()) return out;
  for (const json& entry : doc["images"]) {
    if (auto image = image_from(entry)) out.push_back(std::move(*image));
  }
  return out;
}

std::string create_image_body(const ImageRequest& request) {
  json body = {{"name", request.name},
               {"disk_format", request.disk_format},
               {"container_format", request.container_format},
               {"visibility", request.visibility}};
  if (request.min_disk_gib) body["min_disk"] = request.min_disk_gib;
  if (!request.tags.empty()) body["tags"] = request.tags;
  // Glance v2 takes custom properties as top-level string fields.
  for (const auto& [key, value] : request.properties) body[key] = value;
  return body.dump();
}

UploadJournal parse_journal(std::string_view text) {
  UploadJournal journal;
  upload::for_each_journal_line(text, 256, [&](std::string_view key, std::string_view value) {
    if (key == "image" && valid_id(std::string(value))) journal.image_id = value;
  });
  return journal;
}

ImageClient::ImageClient(const CloudSettings& settings, Say say)
    : settings_(settings),
      say_(std::move(say)),
      session_({.ca_file = settings.ca_file, .verify = settings.verify},
               {"x-subject-token", "x-openstack-request-id"}) {
  access_ = authenticate(session_, settings_, say_);
}

upload::RestReply ImageClient::call(upload::RestRequest request) {
  for (int attempt = 0;; ++attempt) {
    upload::RestRequest signed_request = request;
    if (!access_.token.empty()) signed_request.headers.push_back("X-Auth-Token: " + access_.token);
    upload::RestReply reply = request.file
                                  ? session_.send_once(signed_request)
                                  : upload::send_with_retries(session_, signed_request, 6, say_);
    // A token can expire during a long upload: authenticate once more, then give up.
    if (reply.status != 401 || access_.token.empty() || attempt > 0) return reply;
    say_(request.what + ": the token was refused; authenticating again");
    access_ = authenticate(session_, settings_, say_);
  }
}

std::vector<GlanceImage> ImageClient::find_by_name(const std::string& name) {
  auto reply = call({.url = access_.image_url + "/images?name=" + percent_encode(name),
                     .what = "list images named " + name});
  if (!reply.success()) throw_failure("list images", reply);
  return parse_image_list(reply.body);
}

std::optional<GlanceImage> ImageClient::get(const std::string& id) {
  auto reply = call(
      {.url = access_.image_url + "/images/" + percent_encode(id), .what = "show image " + id});
  if (reply.status == 404) return std::nullopt;
  if (!reply.success()) throw_failure("show image " + id, reply);
  auto image = parse_image(reply.body);
  if (!image) throw Error("show image " + id + ": Glance's answer is not an image document");
  return image;
}

GlanceImage ImageClient::create(const ImageRequest& request) {
  auto reply = call({.method = "POST",
                     .url = access_.image_url + "/images",
                     .body = create_image_body(request),
                     .what = "create image"});
  if (!reply.success()) throw_failure("create image", reply);
  auto image = parse_image(reply.body);
  if (!image) throw Error("create image: Glance's answer is not an image document");
  return *image;
}

upload::RestReply ImageClient::put_file(const std::string& id, const upload::FileBody& file) {
  return call({.method = "PUT",
               .url = access_.image_url + "/images/" + percent_encode(id) + "/file",
               .file = &file,
               .what = "upload image data"});
}

}  // namespace kiln::openstack
