#include "builder/recipe/recipe.h"

namespace kiln {

const char* to_string(Arch arch) {
  return arch == Arch::amd64 ? "amd64" : "arm64";
}

const char* to_string(KubernetesSource source) {
  switch (source) {
    case KubernetesSource::automatic:
      return "auto";
    case KubernetesSource::release:
      return "release";
    case KubernetesSource::mirror:
      return "mirror";
    case KubernetesSource::source:
      return "source";
  }
  return "?";
}

const char* to_string(ContainerdSource source) {
  return source == ContainerdSource::debian ? "debian" : "release";
}

const char* to_string(Board board) {
  return board == Board::generic ? "generic" : "rpi4";
}

const char* to_string(RebootPolicy policy) {
  switch (policy) {
    case RebootPolicy::immediate:
      return "immediate";
    case RebootPolicy::kured:
      return "kured";
    case RebootPolicy::manual:
      return "manual";
  }
  return "?";
}

const char* to_string(RootCompression compression) {
  switch (compression) {
    case RootCompression::none:
      return "none";
    case RootCompression::lz4:
      return "lz4";
    case RootCompression::lz4hc:
      return "lz4hc";
  }
  return "?";
}

}  // namespace kiln
