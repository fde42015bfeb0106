#pragma once

#include <filesystem>
#include <string>

namespace kiln {

/// The first-boot agent and its unit, built with kiln and installed into every image.
struct FirstbootPayload {
  std::filesystem::path agent;  ///< static kiln-firstboot binary
  std::filesystem::path unit;   ///< kiln-firstboot.service
  std::string digest;           ///< SHA-256 over both, for the rootfs cache key
};

/// Looks in $KILN_FIRSTBOOT_DIR, else beside the running kiln executable (where the build
/// puts them). Throws kiln::Error saying how to build them when absent.
const FirstbootPayload& firstboot_payload();

}  // namespace kiln
