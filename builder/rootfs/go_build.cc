#include "builder/rootfs/go_build.h"

#include <fmt/format.h>

#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "builder/rootfs/foreign_arch.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"
#include "builder/util/time.h"

namespace kiln {
namespace fs = std::filesystem;

std::string kubernetes_build_gomod(const std::string& upstream, const std::string& version,
                                   const std::string& staging_version) {
  static const std::regex go_line(R"(^go\s+(\S+)\s*$)");
  static const std::regex godebug_line(R"(^godebug\s+(\S+=\S+)\s*$)");
  static const std::regex staging_line(R"(^\s*(\S+)\s+=>\s+\./staging/\S+\s*$)");
  std::string go_version = "1.24.0";
  std::vector<std::string> godebug, staging;
  std::istringstream in(upstream);
  std::smatch match;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, match, go_line))
      go_version = match[1];
    else if (std::regex_match(line, match, godebug_line))
      godebug.push_back(match[1]);
    else if (std::regex_match(line, match, staging_line))
      staging.push_back(match[1]);
  }
  if (staging.empty())
    throw Error("k8s.io/kubernetes@" + version + "'s go.mod lists no staging modules");
  std::string out = "module kiln.local/kubernetes-build\n\ngo " + go_version + "\n\n";
  // Upstream's GODEBUG defaults, so our binaries behave like the released ones.
  for (const auto& setting : godebug) out += "godebug " + setting + "\n";
  out += "\nrequire k8s.io/kubernetes " + version + "\n\nreplace (\n";
  for (const auto& module : staging)
    out += "\t" + module + " => " + module + " " + staging_version + "\n";
  return out + ")\n";
}

namespace {

// Compiling runs beside the Debian bootstrap, which is the longer critical path: let it win.
constexpr int kBackgroundNice = 10;

/// A string field of `go mod download -json`'s object, or "".
std::string json_string_field(const std::string& json, const std::string& key) {
  auto document = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains(key) || !document[key].is_string()) return {};
  return document[key].get<std::string>();
}

std::map<std::string, std::string> go_environment(const BuildPlan& plan, Cache& cache) {
  std::map<std::string, std::string> env = {
      {"CGO_ENABLED", "0"},
      {"GOOS", "linux"},
      {"GOARCH", to_string(plan.recipe.base.arch)},
      {"GOFLAGS", "-mod=mod"},
      {"GOTOOLCHAIN", "local"},
      {"SOURCE_DATE_EPOCH", std::to_string(plan.source_date_epoch)},
  };
  if (cache.offline()) env["GOPROXY"] = "off";
  return env;
}

/// The -X flags `make` sets upstream (hack/lib/version.sh), for component-base and client-go.
std::string version_ldflags(const BuildPlan& plan, const std::string& commit) {
  const Version& v = plan.recipe.kubernetes.version;
  std::string flags = "-s -w -buildid=";
  for (const char* pkg : {"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"}) {
    flags += fmt::format(
        " -X {0}.gitVersion=v{1} -X {0}.gitMajor={2} -X {0}.gitMinor={3} -X {0}.gitCommit={4}"
        " -X {0}.gitTreeState=clean -X {0}.buildDate={5}",
        pkg, v.text(), v.major, v.minor, commit, format_utc(plan.source_date_epoch));
  }
  return flags;
}

}  // namespace

void build_go_binaries(const BuildPlan& plan, Cache& cache, const fs::path& out_dir, int jobs,
                       std::vector<ArtifactRecord>& records) {
  if (find_program("go").empty()) {
    throw Error(
        "the Go toolchain is needed to build Kubernetes from source but 'go' is not in PATH "
        "(install Go 1.24 or newer, or set kubernetes.from: release or mirror)");
  }
  auto env = go_environment(plan, cache);
  fs::path work = cache.scratch_path("gobuild");
  TempPath cleanup(work);
  fs::remove_all(work);
  fs::create_directories(work);

  std::string k8s = "k8s.io/kubernetes@" + plan.kubernetes_module_version;
  log::info("    go: resolving {} and its staging modules {}", k8s, plan.staging_module_version);
  std::string info = run({"go", "mod", "download", "-json", k8s},
                         {.env = env, .cwd = work, .capture_stdout = true})
                         .stdout_text;
  std::string upstream_mod = json_string_field(info, "GoMod");
  if (upstream_mod.empty())
    throw Error("go mod download " + k8s + " did not report a go.mod:\n" + info);
  write_file_atomic(work / "go.mod",
                    kubernetes_build_gomod(read_file(upstream_mod), plan.kubernetes_module_version,
                                           plan.staging_module_version));
  std::string imports;
  for (const auto& binary : plan.go_binaries) {
    if (binary.package.rfind("k8s.io/kubernetes/", 0) == 0)
      imports += "\t_ \"" + binary.package + "\"\n";
  }
  write_file_atomic(work / "tools.go",
                    "//go:build tools\n\n// Keeps the commands' dependencies in go.mod.\npackage "
                    "tools\n\nimport (\n" +
                        imports + ")\n");
  run({"go", "mod", "tidy"}, {.env = env, .cwd = work, .quiet = true});

  // The proxy records the release tag's commit; `kubeadm version` reports it like upstream's.
  std::string ldflags = version_ldflags(plan, json_string_field(info, "Hash"));
  std::string parallel = std::to_string(std::max(1, jobs));
  std::string module_cache =
      run({"go", "env", "GOMODCACHE"}, {.env = env, .cwd = work, .capture_stdout = true})
          .stdout_text;
  while (!module_cache.empty() && std::isspace(static_cast<unsigned char>(module_cache.back())))
    module_cache.pop_back();
  for (const auto& binary : plan.go_binaries) {
    log::Stage step("go build " + binary.name);
    fs::path output = out_dir / binary.name;
    std::string origin;
    if (binary.package.rfind("k8s.io/kubernetes/", 0) == 0) {
      // The build tags upstream's release builds use (hack/lib/golang.sh).
      run({"go", "build", "-p", parallel, "-trimpath", "-tags", "selinux,notest,grpcnotrace",
           "-ldflags", ldflags, "-o", output.string(), binary.package},
          {.env = env, .cwd = work, .quiet = !log::verbose(), .nice = kBackgroundNice});
      origin = "go:" + binary.package + "@" + plan.kubernetes_module_version;
    } else {
      // cri-tools builds with its own go.mod: `go install module@version` is exactly that.
      std::string cri_ldflags =
          fmt::format("-s -w -buildid= -X sigs.k8s.io/cri-tools/pkg/version.Version={}",
                      plan.cri_tools_module_version);
      // Go refuses GOBIN for another architecture's binaries: they go to a GOPATH of the
      // build's own, under bin/GOOS_GOARCH when cross-compiled, with the shared module cache.
      auto install_env = env;
      install_env.erase("GOFLAGS");
      install_env["GOPATH"] = (work / "gopath").string();
      install_env["GOMODCACHE"] = module_cache;
      run({"go", "install", "-p", parallel, "-trimpath", "-ldflags", cri_ldflags,
           binary.package + "@" + plan.cri_tools_module_version},
          {.env = install_env, .cwd = work, .quiet = !log::verbose(), .nice = kBackgroundNice});
      fs::path bin = work / "gopath/bin";
      if (plan.recipe.base.arch != host_arch()) bin /= "linux_" + env.at("GOARCH");
      fs::copy_file(bin / fs::path(binary.package).filename(), output,
                    fs::copy_options::overwrite_existing);
      origin = "go:" + binary.package + "@" + plan.cri_tools_module_version;
    }
    records.push_back({binary.name, origin, sha256_file(output), "/usr/bin/" + binary.name});
  }
}

}  // namespace kiln
