#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln {

/// status.nodeInfo.kubeletVersion of a Node object as the API server sent it: nullopt when
/// the answer is not JSON, larger than 1 MiB, any level is missing or of another type, or the
/// version is not 1 to 64 printable characters without spaces.
/// Never throws, whatever the answer holds.
std::optional<std::string> reported_kubelet_version(std::string_view node_json);

}  // namespace kiln
