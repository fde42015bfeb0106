// kiln stamp: puts a join config into a built raw image just before it is flashed.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "builder/disk/config_partition.h"
#include "builder/join/config_initrd.h"
#include "builder/join/discovery.h"
#include "builder/join/join_config.h"
#include "builder/join/secret_file_mode.h"
#include "builder/util/error.h"
#include "builder/util/time.h"
#include "cli/commands.h"
#include "cli/options.h"

namespace kiln::cli {
namespace {

const std::vector<Flag> kStampFlags = {
    {"--join", "FILE", "join config from `kiln token create` to write into the image"},
    {"--show", "", "print what is stamped in the image (token masked) instead"},
    {"--json", "", "with --show: print it as one JSON document"},
    {"--keep-mode", "",
     "leave the image's permissions as they are (by default it is made 0600: it holds the "
     "token)"},
    {"--update-url", "URL",
     "this node's own update folder (http://), instead of the recipe's updates.url"},
    {"--pxe", "PATH",
     "write a join config initrd instead: PATH/join.img in a PXE folder, or PATH itself "
     "when it ends in .img"},
};

/// `kiln stamp --pxe`: the netboot counterpart of a stamped disk, an initrd the PXE loader
/// appends after kiln's own.
ExitCode stamp_pxe(const std::filesystem::path& target, const JoinConfig& config) {
  namespace fs = std::filesystem;
  auto start = std::chrono::steady_clock::now();
  fs::path out = target;
  if (target.extension() != ".img") {
    if (!fs::exists(target / "boot.ipxe"))
      throw Error(target.string() +
                  " is not a kiln PXE folder (no boot.ipxe); build one with "
                  "`outputs: [pxe]`, or give a path ending in .img");
    out = target / "join.img";
  }
  write_join_initrd(config, out);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr,
               "kiln: wrote %s (0600) with token %s for %s (expires %s) in %.0f ms; boot it as "
               "an extra initrd (iPXE: set kiln-join to its URL)\n",
               out.c_str(), config.token.masked().c_str(), config.endpoint.c_str(),
               format_utc(config.expires).c_str(), ms);
  return ExitCode::ok;
}

/// Loads the join config, warning first when others can read the token in it.
JoinConfig load_private_join_config(const std::filesystem::path& file) {
  if (auto warning = readable_secret_warning(file))
    std::fprintf(stderr, "kiln: warning: %s\n", warning->c_str());
  return load_join_config(file);
}

/// `kiln stamp --show --json`: the same facts, token masked.
void show_json(const std::filesystem::path& image) {
  using nlohmann::json;
  auto url = read_stamped_update_url(image);
  auto text = read_stamped_config(image);
  json doc = {{"schemaVersion", 1},
              {"image", image.string()},
              {"stamped", bool(text)},
              {"updateUrl", url ? json(*url) : json(nullptr)}};
  if (text) {
    JoinConfig config = parse_join_config(*text, image.string() + ":kiln-config/join.yaml");
    json taints = json::array();
    for (const auto& taint : config.taints)
      taints.push_back({{"key", taint.key}, {"value", taint.value}, {"effect", taint.effect}});
    doc["controlPlane"] = config.control_plane_name;
    doc["endpoint"] = config.endpoint;
    doc["caCertHash"] = config.ca_cert_hash;
    doc["token"] = config.token.masked();
    doc["expires"] = format_utc(config.expires);
    doc["expired"] = unix_now() >= config.expires;
    doc["nodeName"] = to_string(config.node_name);
    doc["labels"] = config.labels;
    doc["taints"] = taints;
  }
  std::fputs((doc.dump(2) + "\n").c_str(), stdout);
}

void show(const std::filesystem::path& image) {
  if (auto url = read_stamped_update_url(image)) std::printf("update source  %s\n", url->c_str());
  auto text = read_stamped_config(image);
  if (!text) {
    std::printf("%s: nothing stamped (the kiln-config partition is empty)\n", image.c_str());
    return;
  }
  JoinConfig config = parse_join_config(*text, image.string() + ":kiln-config/join.yaml");
  long long now = unix_now();
  std::printf("image          %s\n", image.c_str());
  if (!config.control_plane_name.empty())
    std::printf("control plane  %s\n", config.control_plane_name.c_str());
  std::printf("endpoint       %s\n", config.endpoint.c_str());
  std::printf("CA pin         %s\n", config.ca_cert_hash.c_str());
  std::printf("token          %s\n", config.token.masked().c_str());
  std::printf("expires        %s (%s)\n", format_utc(config.expires).c_str(),
              expiry_text(config.expires, now).c_str());
  std::printf("node name      %s\n", to_string(config.node_name));
  for (const auto& [key, value] : config.labels)
    std::printf("label          %s=%s\n", key.c_str(), value.c_str());
  for (const auto& taint : config.taints) {
    std::printf("taint          %s%s:%s\n", taint.key.c_str(),
                taint.value.empty() ? "" : ("=" + taint.value).c_str(), taint.effect.c_str());
  }
}

}  // namespace

ExitCode run_stamp(const std::vector<std::string>& args) {
  ParsedArgs parsed = parse_args(args, kStampFlags);
  if (parsed.help) {
    std::fputs(render_help("kiln stamp IMAGE [--join FILE] [--update-url URL] | kiln stamp --show "
                           "IMAGE | "
                           "kiln stamp --pxe PATH --join FILE",
                           "Writes a join config into a built raw disk image's KILNCFG partition "
                           "in place, without\nbooting or mounting it (well under a second), so "
                           "each node or batch gets a fresh,\nshort-lived token just before "
                           "flashing. --show prints what is stamped, token masked. --pxe writes "
                           "the same config\nas an initrd for netbooted nodes.",
                           kStampFlags)
                   .c_str(),
               stdout);
    return ExitCode::ok;
  }
  if (parsed.has("keep-mode") && (parsed.has("pxe") || parsed.has("show")))
    throw UsageError("--keep-mode applies to stamping a disk image only");
  if (parsed.has("pxe")) {
    if (parsed.has("json")) throw UsageError("--json goes with --show");
    if (parsed.has("update-url"))
      throw UsageError(
          "--update-url is for disk images: netbooted nodes boot the folder's newest "
          "root every time");
    if (!parsed.positional.empty()) throw UsageError("kiln stamp --pxe takes no IMAGE");
    if (!parsed.has("join")) throw UsageError("kiln stamp --pxe needs --join FILE");
    JoinConfig config = load_private_join_config(parsed.get("join"));
    check_not_expired(config, unix_now());
    return stamp_pxe(parsed.get("pxe"), config);
  }
  if (parsed.positional.size() != 1) throw UsageError("kiln stamp needs exactly one IMAGE");
  std::filesystem::path image = parsed.positional[0];
  if (parsed.has("show")) {
    parsed.has("json") ? show_json(image) : show(image);
    return ExitCode::ok;
  }
  if (parsed.has("json")) throw UsageError("--json goes with --show");
  if (!parsed.has("join") && !parsed.has("update-url"))
    throw UsageError("kiln stamp needs --join FILE and/or --update-url URL (or --show)");
  if (!parsed.has("join")) {
    StampResult result = stamp_update_url(image, parsed.get("update-url"), parsed.has("keep-mode"));
    std::fprintf(stderr, "kiln: %s updates from %s\n", image.c_str(),
                 parsed.get("update-url").c_str());
    if (result.mode != result.old_mode)
      std::fprintf(stderr, "kiln: made %s mode 0600 (it was %04o)\n", image.c_str(),
                   result.old_mode);
    return ExitCode::ok;
  }
  auto start = std::chrono::steady_clock::now();
  JoinConfig config = load_private_join_config(parsed.get("join"));
  check_not_expired(config, unix_now());
  StampResult result = stamp_join_config(image, config, parsed.has("keep-mode"));
  if (parsed.has("update-url")) {
    stamp_update_url(image, parsed.get("update-url"), true);
    std::fprintf(stderr, "kiln: %s updates from %s\n", image.c_str(),
                 parsed.get("update-url").c_str());
  }
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "kiln: stamped %s with token %s for %s (expires %s) in %.0f ms\n",
               image.c_str(), config.token.masked().c_str(), config.endpoint.c_str(),
               format_utc(config.expires).c_str(), ms);
  if (result.mode != result.old_mode) {
    std::fprintf(stderr,
                 "kiln: made %s mode 0600 (it was %04o): it holds the token; --keep-mode keeps "
                 "the mode\n",
                 image.c_str(), result.old_mode);
  } else if (result.mode & 077) {
    std::fprintf(stderr,
                 "kiln: warning: %s holds the token and stays mode %04o (--keep-mode): others "
                 "can read it\n",
                 image.c_str(), result.mode);
  }
  return ExitCode::ok;
}

}  // namespace kiln::cli
