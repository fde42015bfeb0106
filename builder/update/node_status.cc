#include "builder/update/node_status.h"

#include <nlohmann/json.hpp>

namespace kiln {

std::optional<std::string> reported_kubelet_version(std::string_view node_json) {
  if (node_json.size() > (1u << 20)) return std::nullopt;
  auto node = nlohmann::json::parse(node_json.begin(), node_json.end(), nullptr,
                                    /*allow_exceptions=*/false);
  const nlohmann::json* at = &node;
  for (const char* key : {"status", "nodeInfo", "kubeletVersion"}) {
    if (!at->is_object()) return std::nullopt;
    auto it = at->find(key);
    if (it == at->end()) return std::nullopt;
    at = &*it;
  }
  if (!at->is_string()) return std::nullopt;
  // It is quoted in the journal: a version, not a paragraph or control characters.
  const std::string& version = at->get_ref<const std::string&>();
  if (version.empty() || version.size() > 64) return std::nullopt;
  for (char c : version)
    if (c <= ' ' || c >= 0x7f) return std::nullopt;
  return version;
}

}  // namespace kiln
