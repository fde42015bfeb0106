#pragma once

// Azure Resource Manager, as far as making a managed image from an uploaded VHD needs it:
// a Microsoft Entra access token for a service principal, and Microsoft.Compute/images.
#include <functional>
#include <map>
#include <string>

#include "builder/upload/azure_settings.h"
#include "builder/upload/rest_session.h"

namespace kiln::azure {

/// The Resource Manager API version kiln speaks for Microsoft.Compute/images.
inline constexpr char kComputeApiVersion[] = "2024-03-01";

struct ImageRequest {
  std::string subscription, resource_group, name, location;
  std::string blob_url;
  std::string hyper_v_generation = "V2";  ///< V2 boots by UEFI, V1 by BIOS
  std::map<std::string, std::string> tags;
};

/// /subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/images/N
std::string image_resource_path(const ImageRequest& request);

/// The PUT body: a generalized Linux OS disk from the blob, its Hyper-V generation, tags.
std::string create_image_body(const ImageRequest& request);

/// The form body of the client-credentials token request for `scope`; `redact` puts
/// "<secret>" where the client secret or federated token would be (for --dry-run).
std::string token_request_body(const EntraSettings& entra, const std::string& scope, bool redact);

/// The error code and message of a Resource Manager or Entra answer:
/// {"error": {"code", "message"}} or {"error", "error_description"}; printable, capped.
std::pair<std::string, std::string> arm_error(const std::string& body);

/// What Resource Manager says of an image: its provisioning state and id.
struct ImageState {
  bool exists = false;
  std::string id, provisioning_state, blob_url;
};

/// Reads an image document (a GET or PUT answer). Bounded: the body is capped by the caller.
ImageState parse_image_state(const std::string& body);

/// Talks to Resource Manager with a token from Microsoft Entra ID, over one connection.
class ResourceManager {
 public:
  ResourceManager(const EntraSettings& entra, std::string endpoint,
                  std::function<void(const std::string&)> say);
  ImageState get_image(const ImageRequest& request);
  /// Creates the image and waits until Resource Manager reports it Succeeded (or throws
  /// with the error it reports).
  ImageState create_image(const ImageRequest& request);

 private:
  upload::RestReply call(const std::string& method, const std::string& url, const std::string& body,
                         const std::string& what);
  void authenticate();
  EntraSettings entra_;
  std::string endpoint_;
  std::function<void(const std::string&)> say_;
  upload::RestSession session_;
  std::string token_;
};

}  // namespace kiln::azure
