#include "builder/util/environment.h"

#include <cstdlib>

namespace kiln {

Environment process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value || !*value) return std::nullopt;
    return std::string(value);
  };
}

}  // namespace kiln
