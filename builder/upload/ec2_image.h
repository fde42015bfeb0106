#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "builder/upload/aws_client.h"

namespace kiln::aws {

/// What RegisterImage is asked for: an HVM image booting one gp3 root volume made from the
/// snapshot, with ENA, and IMDSv2 required.
struct ImageRequest {
  std::string name;
  std::string description;
  std::string architecture;  ///< x86_64 or arm64
  std::string boot_mode;     ///< uefi, legacy-bios or uefi-preferred
  std::string snapshot_id;
  std::vector<std::pair<std::string, std::string>> tags;  ///< on the image
};

/// The EC2 Query API request for RegisterImage (form-encoded, API version 2016-11-15).
Call register_image_call(const ImageRequest& request);

/// Waits until EC2 reports the snapshot `completed` (EBS finishes writing it after
/// CompleteSnapshot), saying its progress now and then; throws on `error` or the deadline.
void wait_for_snapshot(Client& client, const std::string& snapshot_id,
                       std::chrono::seconds deadline,
                       const std::function<void(const std::string&)>& say);

/// The id of this account's image named `name`, or "" when there is none.
std::string find_image(Client& client, const std::string& name,
                       const std::function<void(const std::string&)>& say);

/// Registers the image; returns its id (ami-…). Throws Error with EC2's code and message.
std::string register_image(Client& client, const ImageRequest& request,
                           const std::function<void(const std::string&)>& say);

/// Copies the home region's image `image_id` into `client`'s region (CopyImage, with its
/// tags); returns the copy's id. `token` makes the request idempotent across runs.
std::string copy_image(Client& client, const std::string& source_region,
                       const std::string& image_id, const ImageRequest& request,
                       const std::string& token,
                       const std::function<void(const std::string&)>& say);

/// Waits until the image is `available` (a copy takes minutes); throws on `failed` or the
/// deadline.
void wait_for_image(Client& client, const std::string& image_id, std::chrono::seconds deadline,
                    const std::function<void(const std::string&)>& say);

/// Lets every account launch the image (ModifyImageAttribute, launch permission group "all").
void make_public(Client& client, const std::string& image_id,
                 const std::function<void(const std::string&)>& say);

}  // namespace kiln::aws
