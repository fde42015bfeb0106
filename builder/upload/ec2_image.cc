#include "builder/upload/ec2_image.h"

#include <fmt/format.h>

#include <thread>

#include "builder/util/error.h"

namespace kiln::aws {

namespace {

constexpr const char* kApiVersion = "2016-11-15";

Call query(const std::string& action,
           const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body = "Action=" + action + "&Version=" + kApiVersion;
  for (const auto& [key, value] : params) body += "&" + form_encode(key) + "=" + form_encode(value);
  return {.service = "ec2",
          .method = "POST",
          .path = "/",
          .body = body,
          .content_type = "application/x-www-form-urlencoded; charset=utf-8",
          .what = action};
}

/// AWS ids are short and plain; anything else in an answer is not one.
bool is_aws_id(const std::string& id, const std::string& prefix) {
  return id.size() <= 64 && id.rfind(prefix, 0) == 0 &&
         id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

}  // namespace

Call register_image_call(const ImageRequest& r) {
  std::vector<std::pair<std::string, std::string>> params = {
      {"Name", r.name},
      {"Description", r.description},
      {"Architecture", r.architecture},
      {"BootMode", r.boot_mode},
      {"VirtualizationType", "hvm"},
      {"EnaSupport", "true"},
      {"ImdsSupport", "v2.0"},
      {"RootDeviceName", "/dev/xvda"},
      {"BlockDeviceMapping.1.DeviceName", "/dev/xvda"},
      {"BlockDeviceMapping.1.Ebs.SnapshotId", r.snapshot_id},
      {"BlockDeviceMapping.1.Ebs.VolumeType", "gp3"},
      {"BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"},
  };
  if (!r.tags.empty()) params.push_back({"TagSpecification.1.ResourceType", "image"});
  for (std::size_t i = 0; i < r.tags.size(); ++i) {
    params.push_back({fmt::format("TagSpecification.1.Tag.{}.Key", i + 1), r.tags[i].first});
    params.push_back({fmt::format("TagSpecification.1.Tag.{}.Value", i + 1), r.tags[i].second});
  }
  return query("RegisterImage", params);
}

void wait_for_snapshot(Client& client, const std::string& snapshot_id,
                       std::chrono::seconds deadline,
                       const std::function<void(const std::string&)>& say) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::string last_progress;
  for (;;) {
    Reply reply = client.send(query("DescribeSnapshots", {{"SnapshotId.1", snapshot_id}}), 8, say);
    if (!reply.ok()) throw_reply_error(reply);
    std::string status = xml_value(reply.body, "status");
    if (status == "completed") return;
    if (status == "error")
      throw Error("snapshot " + snapshot_id + " failed in EBS (status error): upload it again");
    std::string progress = xml_value(reply.body, "progress");
    if (progress != last_progress) {
      say(fmt::format("snapshot {}: {} {}", snapshot_id, status.empty() ? "pending" : status,
                      progress));
      last_progress = progress;
    }
    if (std::chrono::steady_clock::now() > until)
      throw Error(
          fmt::format("snapshot {} was not completed within {} s; run the same command "
                      "again to keep waiting",
                      snapshot_id, deadline.count()));
    std::this_thread::sleep_for(std::chrono::seconds(5));
  }
}

std::string find_image(Client& client, const std::string& name,
                       const std::function<void(const std::string&)>& say) {
  Reply reply = client.send(
      query("DescribeImages",
            {{"Owner.1", "self"}, {"Filter.1.Name", "name"}, {"Filter.1.Value.1", name}}),
      8, say);
  if (!reply.ok()) throw_reply_error(reply);
  std::string id = xml_value(reply.body, "imageId");
  return is_aws_id(id, "ami-") ? id : "";
}

std::string register_image(Client& client, const ImageRequest& request,
                           const std::function<void(const std::string&)>& say) {
  Reply reply = client.send(register_image_call(request), 8, say);
  if (!reply.ok()) throw_reply_error(reply);
  std::string id = xml_value(reply.body, "imageId");
  if (!is_aws_id(id, "ami-")) throw Error("RegisterImage: the answer names no image id");
  return id;
}

std::string copy_image(Client& client, const std::string& source_region,
                       const std::string& image_id, const ImageRequest& request,
                       const std::string& token,
                       const std::function<void(const std::string&)>& say) {
  Reply reply = client.send(query("CopyImage", {{"SourceRegion", source_region},
                                                {"SourceImageId", image_id},
                                                {"Name", request.name},
                                                {"Description", request.description},
                                                {"CopyImageTags", "true"},
                                                {"ClientToken", token}}),
                            8, say);
  if (!reply.ok()) throw_reply_error(reply);
  std::string id = xml_value(reply.body, "imageId");
  if (!is_aws_id(id, "ami-")) throw Error("CopyImage: the answer names no image id");
  return id;
}

void wait_for_image(Client& client, const std::string& image_id, std::chrono::seconds deadline,
                    const std::function<void(const std::string&)>& say) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (bool said = false;; said = true) {
    Reply reply = client.send(query("DescribeImages", {{"ImageId.1", image_id}}), 8, say);
    if (!reply.ok()) throw_reply_error(reply);
    std::string state = xml_value(reply.body, "imageState");
    if (state == "available") return;
    if (state == "failed" || state == "error" || state == "invalid")
      throw Error(fmt::format("image {} is {} in {}", image_id, state, client.settings().region));
    if (!said)
      say(fmt::format("waiting for {} in {} to be available", image_id, client.settings().region));
    if (std::chrono::steady_clock::now() > until) {
      throw Error(
          fmt::format("image {} in {} was not available within {} s; run the same "
                      "command again to keep waiting",
                      image_id, client.settings().region, deadline.count()));
    }
    std::this_thread::sleep_for(std::chrono::seconds(10));
  }
}

void make_public(Client& client, const std::string& image_id,
                 const std::function<void(const std::string&)>& say) {
  Reply reply = client.send(query("ModifyImageAttribute",
                                  {{"ImageId", image_id}, {"LaunchPermission.Add.1.Group", "all"}}),
                            8, say);
  if (!reply.ok()) throw_reply_error(reply);
}

}  // namespace kiln::aws
