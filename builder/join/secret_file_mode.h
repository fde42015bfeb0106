#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace kiln {

/// A warning for a file holding a secret (`holds`: a bootstrap token, a signing key) that
/// group or others can read, naming the file, its mode and the `chmod 600` that fixes it;
/// nothing when only its owner can read it.
std::optional<std::string> readable_secret_warning(const std::filesystem::path& file,
                                                   const char* holds = "a bootstrap token");

}  // namespace kiln
