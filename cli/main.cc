// kiln: reproducible, immutable Kubernetes worker images from a short YAML recipe.
#include <clocale>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "builder/recipe/recipe_parser.h"
#include "builder/upload/rest_session.h"
#include "builder/util/error.h"
#include "builder/util/log.h"
#include "builder/util/signals.h"
#include "cli/commands.h"

namespace {

constexpr const char* kUsage = R"(usage: kiln COMMAND [ARGS]

Commands:
  build RECIPE      build the image a recipe describes
  validate RECIPE   check a recipe and report every problem with its line and column
  plan RECIPE       print the resolved plan (packages, artifacts, checksums, stages)
  binaries RECIPE   fetch or build Kubernetes binaries of the recipe's version (e.g. kube-apiserver)
  token create      create a short-lived bootstrap token and write a node join config
  stamp             write a join config into a built raw image (or --show it)
  inspect IMAGE|DIR show what a built image or folder holds and verify its root
  serve DIR         serve a PXE output folder over HTTP (read-only)
  upload CLOUD DIR  upload a built image to aws, openstack, azure or gce as a bootable image
  cache info|prune  show the build cache, or remove what no build has used for a while
  version           print kiln's version
  help [COMMAND]    show help for a command

Run 'kiln COMMAND --help' for a command's options.
)";

}  // namespace

int main(int argc, char** argv) {
  // Image paths are UTF-8 whatever the build host's locale; libarchive converts through it.
  std::setlocale(LC_ALL, "C.UTF-8");
  // Ctrl-C or a kill during a build removes temporaries (above all a stamped disk copy).
  kiln::remove_temporaries_on_signals();
  using kiln::cli::ExitCode;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return int(args.empty() ? ExitCode::usage : ExitCode::ok);
  }
  std::string command = args[0];
  args.erase(args.begin());
  if (command == "help") {
    if (args.empty()) {
      std::fputs(kUsage, stdout);
      return int(ExitCode::ok);
    }
    command = args[0];
    args = {"--help"};
  }
  try {
    if (command == "build") return int(kiln::cli::run_build(args));
    if (command == "validate") return int(kiln::cli::run_validate(args));
    if (command == "plan") return int(kiln::cli::run_plan(args));
    if (command == "binaries") return int(kiln::cli::run_binaries(args));
    if (command == "token") return int(kiln::cli::run_token(args));
    if (command == "stamp") return int(kiln::cli::run_stamp(args));
    if (command == "inspect") return int(kiln::cli::run_inspect(args));
    if (command == "serve") return int(kiln::cli::run_serve(args));
    if (command == "upload") return int(kiln::cli::run_upload(args));
    if (command == "cache") return int(kiln::cli::run_cache(args));
    if (command == "version" || command == "--version") return int(kiln::cli::run_version(args));
    std::fprintf(stderr, "kiln: error: unknown command '%s'\n%s", command.c_str(), kUsage);
    return int(ExitCode::usage);
  } catch (const kiln::cli::UsageError& e) {
    std::fprintf(stderr, "kiln %s: error: %s\nRun 'kiln %s --help' for usage.\n", command.c_str(),
                 e.what(), command.c_str());
    return int(ExitCode::usage);
  } catch (const kiln::RecipeErrors& e) {
    for (const auto& error : e.errors()) std::fprintf(stderr, "%s\n", error.render().c_str());
    return int(ExitCode::invalid_recipe);
  } catch (const kiln::upload::CloudRefusal& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return int(ExitCode::cloud_refused);
  } catch (const kiln::OfflineMiss& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return int(ExitCode::offline_miss);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln: %s\n", e.render().c_str());
    return int(ExitCode::failed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return int(ExitCode::failed);
  }
}
