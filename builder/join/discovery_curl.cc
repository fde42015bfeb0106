#include "builder/fetch/http.h"
#include "builder/join/discovery.h"

namespace kiln {

// Kept apart from discovery.cc so the static first-boot agent, which brings its own
// transport, does not link libcurl.
DiscoveredCluster discover_cluster(const JoinConfig& config, long timeout_seconds) {
  return discover_cluster(config, http::request, timeout_seconds);
}

}  // namespace kiln
