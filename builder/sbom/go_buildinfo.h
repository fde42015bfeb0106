#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// One module a Go binary was built from, as its build information records it.
struct GoModule {
  std::string path;
  std::string version;  ///< "(devel)" for the main module of a local build
  std::string sum;      ///< "h1:..." go.sum hash; empty when not recorded
};

/// What `go version -m` prints: the toolchain and the modules, read from the binary itself.
struct GoBuildInfo {
  std::string go_version;  ///< "go1.24.4"
  std::string package;     ///< the main package's import path ("k8s.io/kubernetes/cmd/kubelet")
  GoModule main;
  std::vector<GoModule> deps;  ///< replacements applied: the module actually compiled in
};

/// Reads the build information Go (1.18 and newer) embeds in every binary (the
/// "\xff Go buildinf:" blob with inline strings). nullopt for anything else. Bounded: one
/// scan for the marker, lengths checked against the data.
std::optional<GoBuildInfo> read_go_buildinfo(std::string_view binary);

/// Parses the module text of the build information (path/mod/dep/=>/build lines).
GoBuildInfo parse_go_modinfo(std::string_view text);

}  // namespace kiln
