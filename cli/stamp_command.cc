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
#include "builder/join/network_config.h"
#include "builder/join/networkd_files.h"
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
    {"--network", "FILE",
     "this node's static network (netplan version 2 subset: addresses, routes, DNS, VLAN, "
     "bond), applied before its network starts"},
    {"--pxe", "PATH",
     "write a join config initrd instead: PATH/join.img in a PXE folder, or PATH itself "
     "when it ends in .img"},
};

/// `kiln stamp --pxe`: the netboot counterpart of a stamped disk, an initrd the PXE loader
/// appends after kiln's own.
ExitCode stamp_pxe(const std::filesystem::path& target, const JoinConfig& config,
                   const std::optional<std::string>& network) {
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
  write_join_initrd(config, out, network);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr,
               "kiln: wrote %s (0600) with token %s for %s (expires %s) in %.0f ms; boot it as "
               "an extra initrd (iPXE: set kiln-join to its URL)\n",
               out.c_str(), config.token.masked().c_str(), config.endpoint.c_str(),
               format_utc(config.expires).c_str(), ms);
  if (network)
    std::fprintf(stderr, "kiln: %s carries the static network config too\n", out.c_str());
  return ExitCode::ok;
}

/// Loads the join config, warning first when others can read the token in it.
JoinConfig load_private_join_config(const std::filesystem::path& file) {
  if (auto warning = readable_secret_warning(file))
    std::fprintf(stderr, "kiln: warning: %s\n", warning->c_str());
  return load_join_config(file);
}

/// The network file's text, read once and validated whole before anything is written.
std::optional<std::string> load_network_text(const ParsedArgs& parsed) {
  if (!parsed.has("network")) return std::nullopt;
  std::filesystem::path file = parsed.get("network");
  std::string text = read_network_config_file(file);
  parse_network_config(text, file.string());
  return text;
}

nlohmann::json addressing_json(const LinkAddressing& a) {
  nlohmann::json routes = nlohmann::json::array();
  for (const auto& route : a.routes) {
    routes.push_back({{"to", route.to}, {"via", route.via}});
    if (route.metric) routes.back()["metric"] = *route.metric;
  }
  nlohmann::json out = {
      {"addresses", a.addresses}, {"routes", routes}, {"nameservers", a.nameservers},
      {"search", a.search},       {"dhcp4", a.dhcp4}, {"dhcp6", a.dhcp6}};
  if (a.mtu) out["mtu"] = *a.mtu;
  return out;
}

/// The stamped network config as JSON: one object per link, in the file's order by kind.
nlohmann::json network_json(const NetworkConfig& config) {
  nlohmann::json links = nlohmann::json::array();
  for (const auto& link : config.ethernets) {
    nlohmann::json item = {{"name", link.id}, {"kind", "ethernet"}};
    if (!link.match_mac.empty()) item["matchMacAddress"] = link.match_mac;
    if (!link.match_name.empty()) item["matchName"] = link.match_name;
    item.update(addressing_json(link.addressing));
    links.push_back(item);
  }
  for (const auto& bond : config.bonds) {
    nlohmann::json item = {
        {"name", bond.id}, {"kind", "bond"}, {"mode", bond.mode}, {"interfaces", bond.interfaces}};
    item.update(addressing_json(bond.addressing));
    links.push_back(item);
  }
  for (const auto& vlan : config.vlans) {
    nlohmann::json item = {
        {"name", vlan.id}, {"kind", "vlan"}, {"id", vlan.vlan_id}, {"link", vlan.link}};
    item.update(addressing_json(vlan.addressing));
    links.push_back(item);
  }
  return links;
}

/// `kiln stamp --show --json`: the same facts, token masked.
void show_json(const std::filesystem::path& image) {
  using nlohmann::json;
  auto url = read_stamped_update_url(image);
  auto text = read_stamped_config(image);
  auto network = read_stamped_network_config(image);
  json doc = {{"schemaVersion", 1},
              {"image", image.string()},
              {"stamped", bool(text)},
              {"updateUrl", url ? json(*url) : json(nullptr)},
              {"network", network ? network_json(parse_network_config(
                                        *network, image.string() + ":kiln-config/network.yaml"))
                                  : json(nullptr)}};
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
  auto url = read_stamped_update_url(image);
  auto text = read_stamped_config(image);
  auto network = read_stamped_network_config(image);
  if (!text && !url && !network) {
    std::printf("%s: nothing stamped (the kiln-config partition is empty)\n", image.c_str());
    return;
  }
  std::printf("image          %s\n", image.c_str());
  if (url) std::printf("update source  %s\n", url->c_str());
  if (network) {
    auto config = parse_network_config(*network, image.string() + ":kiln-config/network.yaml");
    for (const auto& line : describe_network(config))
      std::printf("network        %s\n", line.c_str());
  }
  if (!text) {
    std::printf("join config    nothing stamped\n");
    return;
  }
  JoinConfig config = parse_join_config(*text, image.string() + ":kiln-config/join.yaml");
  long long now = unix_now();
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
    std::fputs(render_help("kiln stamp IMAGE [--join FILE] [--update-url URL] [--network FILE] | "
                           "kiln stamp --show IMAGE | "
                           "kiln stamp --pxe PATH --join FILE [--network FILE]",
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
    return stamp_pxe(parsed.get("pxe"), config, load_network_text(parsed));
  }
  if (parsed.positional.size() != 1) throw UsageError("kiln stamp needs exactly one IMAGE");
  std::filesystem::path image = parsed.positional[0];
  if (parsed.has("show")) {
    parsed.has("json") ? show_json(image) : show(image);
    return ExitCode::ok;
  }
  if (parsed.has("json")) throw UsageError("--json goes with --show");
  if (!parsed.has("join") && !parsed.has("update-url") && !parsed.has("network"))
    throw UsageError(
        "kiln stamp needs --join FILE, --update-url URL and/or --network FILE (or "
        "--show)");
  // Every input is read and checked before anything is written into the image.
  auto start = std::chrono::steady_clock::now();
  const std::optional<std::string> network = load_network_text(parsed);
  std::optional<JoinConfig> join;
  if (parsed.has("join")) {
    join = load_private_join_config(parsed.get("join"));
    check_not_expired(*join, unix_now());
  }
  if (parsed.has("update-url")) check_update_url(parsed.get("update-url"));
  const bool keep_mode = parsed.has("keep-mode");
  // The first write makes the image private (unless --keep-mode): its result tells.
  std::optional<StampResult> first;
  auto stamped = [&](const StampResult& r) {
    if (!first) first = r;
  };
  if (join) stamped(stamp_join_config(image, *join, keep_mode));
  if (parsed.has("update-url")) {
    stamped(stamp_update_url(image, parsed.get("update-url"), keep_mode));
    std::fprintf(stderr, "kiln: %s updates from %s\n", image.c_str(),
                 parsed.get("update-url").c_str());
  }
  if (network) {
    stamped(stamp_network_config(image, *network, keep_mode));
    std::fprintf(stderr, "kiln: %s brings its network up from %s, without DHCP\n", image.c_str(),
                 parsed.get("network").c_str());
  }
  const StampResult& result = *first;
  if (!join) {
    if (result.mode != result.old_mode)
      std::fprintf(stderr, "kiln: made %s mode 0600 (it was %04o)\n", image.c_str(),
                   result.old_mode);
    return ExitCode::ok;
  }
  const JoinConfig& config = *join;
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
