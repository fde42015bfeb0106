#pragma once

#include <functional>
#include <optional>
#include <string>

namespace kiln {

/// Reads one environment variable (std::getenv in the CLI; a map in tests). An empty value
/// reads as unset, as the clouds' own clients treat it.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment.
Environment process_environment();

}  // namespace kiln
