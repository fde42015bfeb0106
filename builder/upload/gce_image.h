#pragma once

// Compute Engine's images.insert from a gce.tar.gz in Cloud Storage, and the wait for its
// global operation.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "builder/upload/rest_session.h"

namespace kiln::google {

struct ImageRequest {
  std::string project, name, family, description;
  std::string source_url;               ///< https://storage.googleapis.com/BUCKET/OBJECT
  std::string architecture = "X86_64";  ///< or ARM64
  std::vector<std::string> guest_os_features = {"UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE",
                                                "GVNIC"};
  std::vector<std::string> storage_locations;
  std::map<std::string, std::string> labels;
};

/// The images.insert body.
std::string insert_image_body(const ImageRequest& request);

/// What an image resource says: whether it exists, its id, status and source.
struct ImageInfo {
  bool exists = false;
  std::string id, status, source_url, self_link;
};
ImageInfo parse_image_info(const std::string& body);

/// A global operation: its name, whether it is DONE, and the first error it reports.
struct OperationInfo {
  std::string name, status, error;
};
OperationInfo parse_operation(const std::string& body);

/// Talks to the Compute Engine API at `endpoint` (https://compute.googleapis.com/compute/v1,
/// or CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE) with a bearer token.
class ComputeClient {
 public:
  ComputeClient(std::string endpoint, std::string token,
                std::function<void(const std::string&)> say);
  ImageInfo get_image(const std::string& project, const std::string& name);
  /// Inserts the image and waits (an hour at most) for its operation to finish.
  ImageInfo insert_image(const ImageRequest& request);

 private:
  upload::RestReply send(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& what);
  std::string endpoint_, token_;
  std::function<void(const std::string&)> say_;
  upload::RestSession session_;
};

}  // namespace kiln::google
