#include "cli/commands.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "builder/build.h"
#include "builder/export/output_formats.h"
#include "builder/fetch/cache.h"
#include "builder/join/discovery.h"
#include "builder/join/join_config.h"
#include "builder/join/secret_file_mode.h"
#include "builder/plan/plan.h"
#include "builder/recipe/recipe_parser.h"
#include "builder/rootfs/kubernetes_binaries.h"
#include "builder/update/release_signature.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/time.h"
#include "cli/options.h"

namespace kiln::cli {
namespace fs = std::filesystem;

namespace {

const std::vector<Flag> kBuildFlags = {
    {"-o, --output", "DIR", "output directory (default: images/<name>)"},
    {"--join", "FILE",
     "stamp this join config (from `kiln token create`) into the disk outputs; they are "
     "written mode 0600"},
    {"--signing-key", "FILE",
     "Ed25519 or ECDSA P-256 PEM private key that signs the update output's index"},
    {"--outputs", "LIST",
     "comma-separated formats to write instead of the recipe's outputs: " + output_format_names()},
    {"--mirror", "URL|DIR",
     "take Kubernetes binaries from a dl.k8s.io-style mirror (sets kubernetes.from: mirror)"},
    {"--debian-mirror", "URL|DIR", "Debian archive to bootstrap from (overrides base.mirror)"},
    {"--cache", "DIR", "cache directory (default: $KILN_CACHE or ~/.cache/kiln)"},
    {"--offline", "", "use only the cache; fail if anything must be downloaded"},
    {"--rebuild", "", "re-run every stage even if its output is cached (downloads stay cached)"},
    {"-j, --jobs", "N", "parallel jobs for compilation (default: number of CPUs)"},
    {"-v, --verbose", "", "print every command and cache decision"},
    {"--json", "", "print the result as one JSON document on stdout (logs stay on stderr)"},
};

const std::vector<Flag> kBinariesFlags = {
    {"--components", "LIST",
     "comma-separated, e.g. kube-apiserver,kube-controller-manager (default: "
     "kubelet,kubeadm,crictl)"},
    {"-o, --output", "DIR", "directory to copy the binaries into"},
    {"--mirror", "URL|DIR", "as for build"},
    {"--cache", "DIR", "as for build"},
    {"--offline", "", "as for build"},
    {"-j, --jobs", "N", "as for build"},
    {"-v, --verbose", "", "as for build"},
};

const std::vector<Flag> kPlanFlags = {
    {"--mirror", "URL|DIR", "as for build"},
    {"--debian-mirror", "URL|DIR", "as for build"},
    {"--offline", "", "do not probe the network to resolve kubernetes.from: auto"},
    {"--json", "", "print the plan as one JSON document"},
};

std::string recipe_argument(const ParsedArgs& parsed) {
  if (parsed.positional.size() != 1) {
    throw UsageError(parsed.positional.empty() ? "missing RECIPE argument"
                                               : "expected exactly one RECIPE argument");
  }
  return parsed.positional[0];
}

Recipe load_with_overrides(const ParsedArgs& parsed) {
  Recipe recipe = load_recipe(recipe_argument(parsed));
  if (parsed.has("mirror")) {
    std::string mirror = parsed.get("mirror");
    if (mirror.find("://") == std::string::npos) {
      if (!fs::is_directory(mirror))
        throw UsageError("--mirror directory '" + mirror + "' does not exist");
      mirror = fs::canonical(mirror).string();
    }
    recipe.kubernetes.from = KubernetesSource::mirror;
    recipe.kubernetes.mirror = mirror;
  }
  if (parsed.has("outputs")) {
    recipe.outputs.clear();
    std::string list = parsed.get("outputs");
    for (std::size_t start = 0; start <= list.size();) {
      std::size_t comma = std::min(list.find(',', start), list.size());
      std::string output = list.substr(start, comma - start);
      start = comma + 1;
      if (!find_output_format(output)) {
        throw UsageError("--outputs: unknown output format '" + output +
                         "' (known: " + output_format_names() + ")");
      }
      if (std::find(recipe.outputs.begin(), recipe.outputs.end(), output) == recipe.outputs.end())
        recipe.outputs.push_back(output);
    }
    if (auto format = first_output_with(recipe.outputs, &OutputFormat::sectors_512_only);
        recipe.disk.sector_size != 512 && !format.empty()) {
      throw UsageError("--outputs: '" + std::string(format) +
                       "' is for a platform whose disks have 512-byte sectors; this recipe's "
                       "disk.sector_size is " +
                       std::to_string(recipe.disk.sector_size));
    }
    if (auto format = first_output_with(recipe.outputs, &OutputFormat::x86_only);
        recipe.base.arch != Arch::amd64 && !format.empty()) {
      throw UsageError("--outputs: '" + std::string(format) +
                       "' describes an x86-64 virtual machine; this recipe's base.arch is " +
                       to_string(recipe.base.arch));
    }
    if (auto format = first_output_with(recipe.outputs, &OutputFormat::not_for_boards);
        recipe.board.model != Board::generic && !format.empty()) {
      throw UsageError("--outputs: '" + std::string(format) + "' is not for a board; this " +
                       "recipe's board is " + to_string(recipe.board.model) +
                       ", which boots the raw image (raw, raw.zst)");
    }
  }
  return recipe;
}

/// -j N, defaulting to the number of CPUs.
int jobs_option(const ParsedArgs& parsed) {
  if (!parsed.has("jobs")) return int(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  std::string text = parsed.get("jobs");
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
      text.size() > 4 || std::stoi(text) < 1) {
    throw UsageError("--jobs needs a whole number of at least 1, got '" + text + "'");
  }
  return std::stoi(text);
}

PlanOptions plan_options(const ParsedArgs& parsed) {
  PlanOptions options;
  options.offline = parsed.has("offline");
  options.probe_network = !options.offline;
  options.debian_mirror = parsed.get("debian-mirror");
  return options;
}

/// `kiln plan --json`: what the build would use and the stage keys it would look up.
std::string plan_json(const BuildPlan& plan) {
  using nlohmann::json;
  const Recipe& r = plan.recipe;
  json downloads = json::array(), go_binaries = json::array();
  for (const auto& d : plan.downloads)
    downloads.push_back({{"name", d.name}, {"url", d.url}, {"sha256", d.sha256}});
  for (const auto& g : plan.go_binaries)
    go_binaries.push_back({{"name", g.name}, {"package", g.package}});
  json doc = {{"schemaVersion", 1},
              {"name", r.name},
              {"version", r.version},
              {"arch", to_string(r.base.arch)},
              {"suite", r.base.suite},
              {"sourceDateEpoch", plan.source_date_epoch},
              {"kubernetes",
               {{"version", "v" + r.kubernetes.version.text()},
                {"source", to_string(plan.kubernetes_source)},
                {"reason", plan.kubernetes_source_reason},
                {"pauseImage", plan.pause_image}}},
              {"packages", plan.packages},
              {"downloads", downloads},
              {"goBinaries", go_binaries},
              {"board",
               {{"model", to_string(r.board.model)},
                {"firmware", plan.board_firmware ? json{{"name", plan.board_firmware->name},
                                                        {"url", plan.board_firmware->url},
                                                        {"sha256", plan.board_firmware->sha256}}
                                                 : json(nullptr)}}},
              {"outputs", r.outputs},
              {"stageKeys",
               {{"base", plan.base_key},
                {"kubernetes", plan.kubernetes_key},
                {"rootfs", plan.rootfs_key},
                {"disk", plan.disk_key.empty() ? json(nullptr) : json(plan.disk_key)}}}};
  return doc.dump(2) + "\n";
}

/// `kiln build --json`: every file written, with the size and digest SHA256SUMS lists.
std::string build_json(const BuildPlan& plan, const fs::path& output_dir,
                       const BuildResult& result) {
  using nlohmann::json;
  std::map<std::string, std::string> digests;  // name in SHA256SUMS -> digest
  if (fs::exists(output_dir / "SHA256SUMS")) {
    std::string sums = read_file(output_dir / "SHA256SUMS");
    for (std::size_t start = 0; start < sums.size();) {
      std::size_t end = std::min(sums.find('\n', start), sums.size());
      std::string line = sums.substr(start, end - start);
      if (line.size() > 66) digests[line.substr(66)] = line.substr(0, 64);
      start = end + 1;
    }
  }
  json files = json::array();
  for (const auto& file : result.files) {
    std::string name = fs::relative(file, output_dir).generic_string();
    json item = {{"path", file.string()}, {"name", name}};
    std::error_code error;
    item["size"] = fs::is_regular_file(file, error) ? json(fs::file_size(file)) : json(nullptr);
    auto digest = digests.find(name);
    item["sha256"] = digest != digests.end() ? json(digest->second) : json(nullptr);
    files.push_back(std::move(item));
  }
  json doc = {{"schemaVersion", 1},
              {"name", plan.recipe.name},
              {"version", plan.recipe.version},
              {"arch", to_string(plan.recipe.base.arch)},
              {"outputDir", output_dir.string()},
              {"rootfsSha256", result.rootfs_sha256},
              {"files", files}};
  return doc.dump(2) + "\n";
}

}  // namespace

ExitCode run_build(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kBuildFlags);
  if (parsed.help) {
    std::fputs(
        render_help(
            "kiln build RECIPE [options]",
            "Builds the worker image a recipe describes: a Debian root with containerd, kubelet,\n"
            "kubeadm and crictl, configured for kubeadm join. Stages are cached by their inputs.",
            kBuildFlags)
            .c_str(),
        stdout);
    return ExitCode::ok;
  }
  log::set_verbose(parsed.has("verbose"));
  int jobs = jobs_option(parsed);
  Recipe recipe = load_with_overrides(parsed);
  BuildPlan plan = plan_build(recipe, plan_options(parsed));
  log::info("kiln {}: building '{}' ({})", KILN_VERSION, recipe.name,
            plan.kubernetes_source_reason);
  BuildOptions options;
  options.output_dir =
      parsed.has("output") ? fs::path(parsed.get("output")) : fs::path("images") / recipe.name;
  options.cache_dir = parsed.has("cache") ? fs::path(parsed.get("cache")) : default_cache_dir();
  options.offline = parsed.has("offline");
  options.rebuild = parsed.has("rebuild");
  options.jobs = jobs;
  if (parsed.has("join")) {
    if (!wants_disk(plan.recipe))
      throw UsageError("--join needs a disk output (raw, qcow2, ...); the recipe asks for none");
    // A malformed or expired join config is reported now, not after the build's minutes.
    if (auto warning = readable_secret_warning(parsed.get("join")))
      std::fprintf(stderr, "kiln: warning: %s\n", warning->c_str());
    options.join = load_join_config(parsed.get("join"));
    check_not_expired(*options.join, unix_now());
  }
  bool wants_update = std::find(plan.recipe.outputs.begin(), plan.recipe.outputs.end(), "update") !=
                      plan.recipe.outputs.end();
  if (parsed.has("signing-key")) {
    if (!wants_update)
      throw UsageError("--signing-key signs the update output; the build writes none");
    options.signing_key = parsed.get("signing-key");
    if (auto warning = readable_secret_warning(options.signing_key, "a signing key"))
      std::fprintf(stderr, "kiln: warning: %s\n", warning->c_str());
    public_key_of(options.signing_key);  // an unusable key is reported now, not after the build
  } else if (wants_update) {
    throw UsageError(
        "the update output is signed: pass --signing-key KEY (e.g. from `openssl "
        "genpkey -algorithm ed25519 -out release.key`)");
  }
  BuildResult result = build(plan, options);
  if (parsed.has("json")) {
    std::fputs(build_json(plan, options.output_dir, result).c_str(), stdout);
    return ExitCode::ok;
  }
  for (const auto& file : result.files) std::printf("%s\n", file.c_str());
  return ExitCode::ok;
}

ExitCode run_binaries(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kBinariesFlags);
  if (parsed.help) {
    std::fputs(
        render_help("kiln binaries RECIPE -o DIR [--components LIST] [options]",
                    "Provides Kubernetes binaries of the recipe's version, from the recipe's "
                    "source (release,\n"
                    "mirror or Go modules), verified and cached like a build's: for example "
                    "kube-apiserver and\n"
                    "kube-controller-manager for a test control plane that matches the image.",
                    kBinariesFlags)
            .c_str(),
        stdout);
    return ExitCode::ok;
  }
  if (!parsed.has("output")) throw UsageError("-o DIR is required");
  log::set_verbose(parsed.has("verbose"));
  PlanOptions options = plan_options(parsed);
  std::string list = parsed.get("components");
  for (size_t start = 0; start < list.size();) {
    size_t end = std::min(list.find(',', start), list.size());
    std::string name = list.substr(start, end - start);
    static const std::regex component("^(kube-[a-z-]+|kubelet|kubeadm|kubectl|crictl)$");
    if (!std::regex_match(name, component))
      throw UsageError("unknown Kubernetes component '" + name + "'");
    options.components.push_back(name);
    start = end + 1;
  }
  BuildPlan plan = plan_build(load_with_overrides(parsed), options);
  Cache cache(parsed.has("cache") ? fs::path(parsed.get("cache")) : default_cache_dir(),
              options.offline);
  KubernetesArtifact artifact = provide_kubernetes(plan, cache, false, jobs_option(parsed));
  fs::path out = parsed.get("output");
  for (const auto& [name, path] : artifact.binaries) {
    copy_file_atomic(path, out / name);
    fs::permissions(out / name, fs::perms(0755));
    std::printf("%s\n", (out / name).c_str());
  }
  return ExitCode::ok;
}

ExitCode run_validate(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, {});
  if (parsed.help) {
    std::fputs(render_help(
                   "kiln validate RECIPE",
                   "Checks a recipe and its includes; prints every problem as file:line:column.\n\n"
                   "Recipe keys:\n" +
                       describe_recipe_keys(),
                   {})
                   .c_str(),
               stdout);
    return ExitCode::ok;
  }
  Recipe recipe = load_recipe(recipe_argument(parsed));
  std::printf("%s: ok (%s, Kubernetes v%s, %s %s)\n", recipe_argument(parsed).c_str(),
              recipe.name.c_str(), recipe.kubernetes.version.text().c_str(),
              recipe.base.suite.c_str(), to_string(recipe.base.arch));
  return ExitCode::ok;
}

ExitCode run_plan(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kPlanFlags);
  if (parsed.help) {
    std::fputs(
        render_help(
            "kiln plan RECIPE [options]",
            "Prints what a build would do: every package, artifact URL and checksum, and the\n"
            "cache key of each stage. Builds nothing.",
            kPlanFlags)
            .c_str(),
        stdout);
    return ExitCode::ok;
  }
  BuildPlan plan = plan_build(load_with_overrides(parsed), plan_options(parsed));
  // Published checksums are small and remembered in the cache; showing them makes the plan
  // say exactly what the build will accept.
  Cache cache(default_cache_dir(), parsed.has("offline"));
  for (auto& download : plan.downloads) {
    if (!download.sha256.empty()) continue;
    try {
      download.sha256 = cache.fetch_published_digest(download.sha256_url);
    } catch (const Error& e) {
      log::warn("cannot read {}: {}", download.sha256_url, e.what());
    }
  }
  std::fputs((parsed.has("json") ? plan_json(plan) : describe_plan(plan)).c_str(), stdout);
  return ExitCode::ok;
}

ExitCode run_version(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, {});
  if (parsed.help) {
    std::fputs(render_help("kiln version", "Prints kiln's version.", {}).c_str(), stdout);
    return ExitCode::ok;
  }
  std::printf("kiln %s\n", KILN_VERSION);
  return ExitCode::ok;
}

}  // namespace kiln::cli
