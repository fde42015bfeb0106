#pragma once

#include <optional>
#include <string>

namespace kiln::firstboot {

/// The value of `name=value` on a kernel command line (the last one wins, as with the
/// kernel's own parameters); nullopt when absent. Values are not quoted by kiln's loaders.
std::optional<std::string> kernel_argument(const std::string& cmdline, const std::string& name);

/// The SHA-256 digest given as `name=HEX` (kiln.join_sha256, kiln.install_sha256), in the
/// lowercase that kiln's own digests use; uppercase hex is accepted. nullopt when absent or
/// not 64 hex digits.
std::optional<std::string> sha256_argument(const std::string& cmdline, const std::string& name);

/// This boot's command line, from /proc/cmdline ("" when unreadable).
std::string read_kernel_cmdline();

}  // namespace kiln::firstboot
