// kiln inspect: what a built output holds, and whether its root is the one it was built with.
#include <cstdio>

#include "builder/inspect/inspect.h"
#include "builder/util/time.h"
#include "cli/commands.h"
#include "cli/options.h"

namespace kiln::cli {
namespace {

const std::vector<Flag> kInspectFlags = {
    {"--json", "", "print one JSON document (schemaVersion 1) instead of lines"},
};

}  // namespace

ExitCode run_inspect(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kInspectFlags);
  if (parsed.help) {
    std::fputs(
        render_help(
            "kiln inspect IMAGE|DIR [--json]",
            "Shows what a kiln output holds: name, version, architecture, build time, the loader\n"
            "entries' command lines, the manifest's packages and Kubernetes versions, the SBOM's\n"
            "digest and what is stamped (token masked); and checks every root against its\n"
            "dm-verity root hash. Reads raw, raw.zst, qcow2, vhd, vmdk, ova and GCE images and "
            "PXE\n"
            "and update folders, as this user and without converting them. Exits 5 when a root\n"
            "does not match its hash.",
            kInspectFlags)
            .c_str(),
        stdout);
    return ExitCode::ok;
  }
  if (parsed.positional.size() != 1)
    throw UsageError("kiln inspect needs exactly one IMAGE or DIR");
  ImageReport report = inspect_output(parsed.positional[0]);
  long long now = unix_now();
  std::string text = parsed.has("json") ? report_json(report, now) : render_report(report, now);
  std::fputs(text.c_str(), stdout);
  if (!report.verified()) {
    std::fprintf(stderr, "kiln: %s: %s\n", parsed.positional[0].c_str(),
                 report.roots_match() ? "a release's zstd frames do not decode to its root"
                                      : "a root does not match its root hash");
    return ExitCode::not_verified;
  }
  return ExitCode::ok;
}

}  // namespace kiln::cli
