#pragma once

#include <filesystem>
#include <string>

namespace kiln::test {

/// `kiln serve DIR` on an ephemeral loopback port for the lifetime of the object, as a lab
/// PXE server. Guests under qemu user networking reach it at 10.0.2.2.
class ServedFolder {
 public:
  explicit ServedFolder(const std::filesystem::path& dir);
  ~ServedFolder();
  ServedFolder(const ServedFolder&) = delete;
  ServedFolder& operator=(const ServedFolder&) = delete;

  int port() const { return port_; }
  /// The folder's URL as a guest sees it, without a trailing slash (as iPXE's ${cwduri}).
  std::string base_url() const;
  /// The URL of `path` (relative to the folder) as a guest sees it.
  std::string guest_url(const std::string& path) const;
  /// What the server logged (one line per request).
  std::string log() const;

 private:
  int pid_ = -1;
  int port_ = 0;
  std::filesystem::path log_;
};

/// The kernel arguments a kiln PXE folder's boot.ipxe passes, with iPXE's variables filled
/// in as iPXE does for a script served at `base_url`, and `extra` as ${kiln-args}. For
/// booting the folder's kernel and initrd directly, as a PXE loader would.
std::string boot_ipxe_cmdline(const std::filesystem::path& folder, const std::string& base_url,
                              const std::string& extra = "");

}  // namespace kiln::test
