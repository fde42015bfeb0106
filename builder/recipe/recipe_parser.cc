#include "builder/recipe/recipe_parser.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <limits>
#include <set>

#include "builder/export/output_formats.h"
#include "builder/recipe/suggest.h"
#include "builder/recipe/version_facts.h"
#include "builder/update/image_version.h"
#include "builder/update/release_signature.h"
#include "builder/update/update_index.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"
#include "builder/util/yaml_reader.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

/// State for one recipe file: where we are, and where problems go (through the YAML reader
/// that join configs use too, into one list shared with the recipe's includes).
struct ParseContext {
  fs::path file;
  YamlReader* reader;
  std::vector<Error>* errors;
  std::vector<fs::path>* include_stack;

  SourceMark mark(const YAML::Mark& m) const { return {file.string(), m.line + 1, m.column + 1}; }
  SourceMark mark(const YAML::Node& node) const { return mark(node.Mark()); }

  void error(const YAML::Mark& at, std::string message) const {
    reader->error(at, std::move(message));
  }
  void error(const YAML::Node& at, std::string message) const {
    error(at.Mark(), std::move(message));
  }
};

const char* kind_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a string";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "an undefined value";
  }
}

bool expect(const YAML::Node& node, YAML::NodeType::value type, const char* what,
            const ParseContext& ctx) {
  if (node.Type() == type) return true;
  ctx.error(node, fmt::format("expected {}, got {}", what, kind_name(node)));
  return false;
}

std::optional<std::string> get_string(const YAML::Node& node, const ParseContext& ctx) {
  if (!expect(node, YAML::NodeType::Scalar, "a string", ctx)) return std::nullopt;
  return node.Scalar();
}

std::optional<std::vector<std::string>> get_string_list(const YAML::Node& node,
                                                        const ParseContext& ctx) {
  if (!expect(node, YAML::NodeType::Sequence, "a list of strings", ctx)) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& item : node) {
    auto text = get_string(item, ctx);
    if (!text) return std::nullopt;
    out.push_back(*text);
  }
  return out;
}

std::optional<long long> get_integer(const YAML::Node& node, const ParseContext& ctx,
                                     int base = 10) {
  auto text = get_string(node, ctx);
  if (!text) return std::nullopt;
  long long value = 0;
  const char* end = text->data() + text->size();
  auto [stop, ec] = std::from_chars(text->data(), end, value, base);
  if (!text->empty() && ec == std::errc() && stop == end) return value;
  ctx.error(node, base == 8 ? fmt::format("expected an octal mode like 0644, got '{}'", *text)
                            : fmt::format("expected a whole number, got '{}'", *text));
  return std::nullopt;
}

/// Picks one of a fixed set of words, suggesting the nearest on a typo.
template <typename T>
std::optional<T> get_choice(const YAML::Node& node, const ParseContext& ctx, const char* what,
                            const std::vector<std::pair<std::string, T>>& choices) {
  auto text = get_string(node, ctx);
  if (!text) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& [name, value] : choices) {
    if (name == *text) return value;
    names.push_back(name);
  }
  std::string hint = closest_match(*text, names);
  std::string all;
  for (const auto& name : names) all += (all.empty() ? "" : ", ") + name;
  ctx.error(node, fmt::format("unknown {} '{}'{}; expected one of: {}", what, *text,
                              hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), all));
  return std::nullopt;
}

std::optional<Version> get_version(const YAML::Node& node, const ParseContext& ctx,
                                   const char* example) {
  auto text = get_string(node, ctx);
  if (!text) return std::nullopt;
  auto version = parse_version(*text);
  if (!version) {
    ctx.error(node,
              fmt::format("bad version '{}': expected MAJOR.MINOR.PATCH like {}", *text, example));
  }
  return version;
}

using scan::is_lower_alnum;

/// A DNS label: 1-63 of [a-z0-9-], starting and ending with a letter or digit.
bool is_dns_label(std::string_view text) {
  if (text.empty() || text.size() > 63) return false;
  if (!is_lower_alnum(text.front()) || !is_lower_alnum(text.back())) return false;
  return scan::all_of(text, [](char c) { return is_lower_alnum(c) || c == '-'; });
}

/// A login name: [a-z_] then up to 31 of [a-z0-9_-].
bool is_user_name(std::string_view text) {
  if (text.empty() || text.size() > 32) return false;
  if (!(text.front() == '_' || (text.front() >= 'a' && text.front() <= 'z'))) return false;
  return scan::all_of(text, [](char c) { return is_lower_alnum(c) || c == '_' || c == '-'; });
}

/// A Debian package name: at least two of [a-z0-9+.-], starting with a letter or digit.
bool is_package_name(std::string_view text) {
  if (text.size() < 2 || text.size() > 256 || !is_lower_alnum(text.front())) return false;
  return scan::all_of(text,
                      [](char c) { return is_lower_alnum(c) || c == '+' || c == '.' || c == '-'; });
}

/// A sysctl key in dotted (or slashed) form: at least two parts, the first of [a-z0-9_], the
/// others of [a-z0-9_-].
bool is_sysctl_key(std::string_view text) {
  if (text.size() > 256) return false;
  std::size_t parts = 0;
  while (true) {
    std::size_t end = text.find_first_of("./");
    std::string_view part = text.substr(0, end);
    bool first = parts++ == 0;
    if (!scan::all_of(part, [first](char c) {
          return is_lower_alnum(c) || c == '_' || (!first && c == '-');
        }))
      return false;
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return parts >= 2;
}

std::optional<std::uint64_t> get_size(const YAML::Node& node, const ParseContext& ctx) {
  auto text = get_string(node, ctx);
  if (!text) return std::nullopt;
  bool too_large = false;
  if (auto bytes = scan::parse_byte_size(*text, &too_large)) return bytes;
  if (too_large)
    ctx.error(node, fmt::format("size '{}' is too large", *text));
  else
    ctx.error(node,
              fmt::format("bad size '{}': expected a number with an optional unit, like 4G or 512M",
                          *text));
  return std::nullopt;
}

using Apply = std::function<void(Recipe&, const YAML::Node&, ParseContext&)>;

/// One recipe key: its name, what it means, how it is read.
struct Field {
  std::string name;
  std::string help;
  Apply apply;
};

void apply_fields(Recipe& recipe, const YAML::Node& node, ParseContext& ctx,
                  const std::vector<Field>& fields, const std::string& section) {
  if (!expect(node, YAML::NodeType::Map, "a map", ctx)) return;
  std::vector<std::string> names;
  for (const auto& field : fields) names.push_back(field.name);
  for (auto it = node.begin(); it != node.end(); ++it) {
    // By value: `it->first` lives in a proxy that dies at the end of this statement.
    YAML::Node key = it->first;
    if (!expect(key, YAML::NodeType::Scalar, "a key", ctx)) continue;
    auto field = std::find_if(fields.begin(), fields.end(),
                              [&](const Field& f) { return f.name == key.Scalar(); });
    if (field == fields.end()) {
      std::string hint = closest_match(key.Scalar(), names);
      std::string where = section.empty() ? "" : " in '" + section + "'";
      ctx.error(key, fmt::format("unknown key '{}'{}{}", key.Scalar(), where,
                                 hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
      continue;
    }
    if (field->name == "include") continue;  // handled before the other keys
    field->apply(recipe, it->second, ctx);
    recipe.marks[(section.empty() ? "" : section + ".") + field->name] = ctx.mark(it->second);
  }
}

std::vector<Field> base_fields() {
  return {
      {"distribution", "Only 'debian' today.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<std::string>(n, c, "distribution", {{"debian", "debian"}}))
           r.base.distribution = *v;
       }},
      {"suite", "Debian suite: trixie (default) or bookworm.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<std::string>(n, c, "suite",
                                              {{"trixie", "trixie"}, {"bookworm", "bookworm"}}))
           r.base.suite = *v;
       }},
      {"arch", "Target architecture: amd64 (default) or arm64.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<Arch>(n, c, "architecture",
                                       {{"amd64", Arch::amd64}, {"arm64", Arch::arm64}}))
           r.base.arch = *v;
       }},
      {"mirror", "Debian mirror URL (default http://deb.debian.org/debian).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string(n, c)) r.base.mirror = *v;
       }},
  };
}

std::vector<Field> kubernetes_fields() {
  return {
      {"version", "Kubernetes version of kubelet and kubeadm, e.g. v1.34.4.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_version(n, c, "v1.34.4");
         if (!v) return;
         if (v->major != 1 || v->minor < 30) {
           c.error(n,
                   fmt::format("unsupported Kubernetes version v{}: kiln supports v1.30 and newer",
                               v->text()));
           return;
         }
         r.kubernetes.version = *v;
       }},
      {"from", "Where binaries come from: auto (default), release, mirror or source.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<KubernetesSource>(n, c, "Kubernetes source",
                                                   {{"auto", KubernetesSource::automatic},
                                                    {"release", KubernetesSource::release},
                                                    {"mirror", KubernetesSource::mirror},
                                                    {"source", KubernetesSource::source}}))
           r.kubernetes.from = *v;
       }},
      {"mirror", "For from: mirror, a URL or directory laid out like https://dl.k8s.io/release.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_string(n, c);
         if (!v) return;
         if (v->find("://") == std::string::npos) {
           fs::path dir = fs::path(*v).is_absolute() ? fs::path(*v) : c.file.parent_path() / *v;
           if (!fs::is_directory(dir)) {
             c.error(n, fmt::format("mirror directory '{}' does not exist", dir.string()));
             return;
           }
           r.kubernetes.mirror = fs::weakly_canonical(dir).string();
         } else {
           r.kubernetes.mirror = *v;
         }
       }},
      {"crictl_version", "cri-tools version for crictl (default v1.34.0).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_version(n, c, "v1.34.0")) r.kubernetes.crictl_version = *v;
       }},
  };
}

std::optional<std::string> get_sha256(const YAML::Node& node, ParseContext& ctx) {
  auto v = get_string(node, ctx);
  if (!v) return std::nullopt;
  if (v->size() != 64 || v->find_first_not_of("0123456789abcdef") != std::string::npos) {
    ctx.error(node, "bad sha256: expected 64 lowercase hex digits");
    return std::nullopt;
  }
  return v;
}

std::vector<Field> containerd_fields() {
  return {
      {"from", "debian (the suite's package, default) or release (upstream tarball).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<ContainerdSource>(
                 n, c, "containerd source",
                 {{"debian", ContainerdSource::debian}, {"release", ContainerdSource::release}}))
           r.containerd.from = *v;
       }},
      {"version", "containerd version of the release tarball, e.g. 2.1.4.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_version(n, c, "2.1.4")) r.containerd.version = *v;
       }},
      {"url", "Release tarball URL (containerd-VERSION-linux-ARCH.tar.gz layout).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string(n, c)) r.containerd.url = *v;
       }},
      {"sha256", "SHA-256 of the release tarball.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_sha256(n, c)) r.containerd.sha256 = *v;
       }},
  };
}

std::vector<Field> kernel_fields() {
  return {
      {"package", "Kernel package (default linux-image-amd64 / linux-image-arm64).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string(n, c)) r.kernel.package = *v;
       }},
      {"cmdline", "Extra kernel command-line arguments.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string_list(n, c))
           r.kernel.cmdline.insert(r.kernel.cmdline.end(), v->begin(), v->end());
       }},
      {"omit_modules",
       "Module directories or files under the kernel's kernel/ tree to leave out, e.g. "
       "sound or drivers/gpu (the kernel's modules are half of a Debian root).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_string_list(n, c);
         if (!v) return;
         for (const auto& path : *v) {
           // Each path becomes a line of dpkg's configuration: no control characters.
           bool control = std::any_of(path.begin(), path.end(),
                                      [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; });
           if (path.empty() || path[0] == '/' || path.find("..") != std::string::npos ||
               path.find_first_of(" *?[\\'\"$") != std::string::npos || control) {
             c.error(n, "bad module path '" + path +
                            "': give a plain path relative to the kernel's kernel/ directory, "
                            "e.g. drivers/gpu");
             return;
           }
           r.kernel.omit_modules.push_back(path);
         }
       }},
  };
}

std::vector<Field> disk_fields() {
  return {
      {"size", "Whole disk size, e.g. 4G (default: the partitions plus a 1G state).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_size(n, c)) r.disk.size_bytes = *v;
       }},
      {"root", "Size of each root slot, e.g. 1G (default: the root filesystem plus 25%).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_size(n, c)) r.disk.root_bytes = *v;
       }},
      {"root_b", "Size of the spare A/B root slot; 0 leaves it out (default: as root).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_size(n, c)) r.disk.root_b_bytes = *v;
       }},
      {"state", "Minimum size of the state partition (/var, /etc changes), e.g. 2G (default 1G).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_size(n, c)) r.disk.state_bytes = *v;
       }},
      {"sector_size",
       "Logical sector size of the target disk: 512 (default) or 4096 for 4Kn NVMe/SAS disks "
       "(UEFI only; raw, raw.zst and qcow2 outputs).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v =
                 get_choice<std::uint64_t>(n, c, "sector_size", {{"512", 512}, {"4096", 4096}}))
           r.disk.sector_size = *v;
       }},
      {"root_compression",
       "How the root file system stores its data: lz4 (default), lz4hc, or none (larger disk "
       "and updates, smaller raw.zst).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<RootCompression>(n, c, "root compression",
                                                  {{"none", RootCompression::none},
                                                   {"lz4", RootCompression::lz4},
                                                   {"lz4hc", RootCompression::lz4hc}}))
           r.disk.root_compression = *v;
       }},
  };
}

void parse_board_model(Recipe& recipe, const YAML::Node& node, ParseContext& ctx) {
  if (node.IsScalar() && node.Scalar() == "rpi5") {
    ctx.error(node,
              "board 'rpi5' is not supported: Debian trixie's kernel (6.12) has no driver for "
              "the Pi 5's SD card and no RP1 (its USB and Ethernet) in its device tree, so the "
              "root would never be found; use rpi4, or board: generic for arm64 boards with "
              "UEFI firmware");
    return;
  }
  if (auto v = get_choice<Board>(node, ctx, "board",
                                 {{"generic", Board::generic}, {"rpi4", Board::rpi4}}))
    recipe.board.model = *v;
}

std::vector<Field> board_fields() {
  return {
      {"model",
       "generic (UEFI/BIOS machines, default) or rpi4 (Raspberry Pi 4, 400, CM4; "
       "base.arch arm64).",
       parse_board_model},
      {"firmware_url",
       "The Debian raspi-firmware .deb the Pi firmware files come from (default: kiln's "
       "tested version from base.mirror).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string(n, c)) r.board.firmware_url = *v;
       }},
      {"firmware_sha256", "SHA-256 of that .deb.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_sha256(n, c)) r.board.firmware_sha256 = *v;
       }},
  };
}

std::vector<Field> pxe_fields() {
  return {
      {"install",
       "true: netbooted nodes write the disk image onto their first empty disk and reboot "
       "into it (default false: run from RAM).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<bool>(n, c, "value", {{"true", true}, {"false", false}}))
           r.pxe.install = *v;
       }},
  };
}

std::vector<Field> updates_fields() {
  return {
      {"url",
       "Folder nodes update from (http://, holding index.json); a node can be "
       "pointed elsewhere with `kiln stamp --update-url`.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_string(n, c);
         if (!v) return;
         if (!is_update_url(*v)) {
           c.error(n, fmt::format("updates.url '{}' must be an http:// URL (releases are signed; "
                                  "the transport need not be)",
                                  *v));
           return;
         }
         r.updates.url = *v;
       }},
      {"trusted_keys",
       "PEM public keys (files, relative to the recipe) a node accepts update indexes from.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (!expect(n, YAML::NodeType::Sequence, "a list of public key files", c)) return;
         r.updates.trusted_keys.clear();
         for (const auto& item : n) {
           auto v = get_string(item, c);
           if (!v) continue;
           fs::path file = fs::path(*v).is_absolute() ? fs::path(*v) : c.file.parent_path() / *v;
           std::error_code ec;
           if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) > 16384) {
             c.error(item, fmt::format("trusted key '{}' is not a readable file of at most 16 KiB",
                                       file.lexically_normal().string()));
             continue;
           }
           std::string pem = read_file(file);
           if (std::string why = check_trusted_key(pem); !why.empty()) {
             c.error(item, fmt::format("trusted key '{}' is {}", *v, why));
             continue;
           }
           r.updates.trusted_keys.push_back({fs::canonical(file), pem, c.mark(item)});
         }
       }},
      {"reboot",
       "What restarts a node into a staged update: immediate, kured (default: kured drains "
       "and reboots nodes one at a time) or manual (`kiln-update --reboot`).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<RebootPolicy>(n, c, "reboot policy",
                                               {{"immediate", RebootPolicy::immediate},
                                                {"kured", RebootPolicy::kured},
                                                {"manual", RebootPolicy::manual}}))
           r.updates.reboot = *v;
       }},
      {"tries",
       "Boots a new version gets to become healthy before the node rolls back (1-9, "
       "default 3).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_integer(n, c);
         if (v && (*v < 1 || *v > 9)) {
           c.error(n, "updates.tries must be between 1 and 9");
         } else if (v) {
           r.updates.tries = unsigned(*v);
         }
       }},
      {"health_timeout",
       "Seconds a trial boot has to become healthy before it counts as failed (default 900).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_integer(n, c);
         if (v && (*v < 30 || *v > 7200)) {
           c.error(n, "updates.health_timeout must be between 30 and 7200 seconds");
         } else if (v) {
           r.updates.health_timeout_seconds = unsigned(*v);
         }
       }},
      {"check_interval", "Minutes between update checks (default 60).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_integer(n, c);
         if (v && (*v < 1 || *v > 10080)) {
           c.error(n, "updates.check_interval must be between 1 and 10080 minutes");
         } else if (v) {
           r.updates.check_interval_minutes = unsigned(*v);
         }
       }},
  };
}

/// "Title: key, key, key." from the section's own table, so the summary cannot drift.
std::string section_help(const std::string& title, const std::vector<Field>& fields) {
  std::string keys;
  for (const auto& field : fields) keys += (keys.empty() ? "" : ", ") + field.name;
  return title + ": " + keys + ".";
}

void parse_file_entry(Recipe& recipe, const YAML::Node& node, ParseContext& ctx) {
  if (!expect(node, YAML::NodeType::Map, "a map with path and content", ctx)) return;
  FileSpec file;
  file.mark = ctx.mark(node);
  bool has_path = false, has_content = false;
  std::vector<Field> fields = {
      {"path", "Absolute path in the image.",
       [&](Recipe&, const YAML::Node& n, ParseContext& c) {
         has_path = true;  // present; a bad value is reported on its own
         auto v = get_string(n, c);
         if (!v) return;
         if (v->empty() || (*v)[0] != '/' || v->find("/../") != std::string::npos) {
           c.error(n, fmt::format("file path '{}' must be absolute and must not contain '..'", *v));
           return;
         }
         file.path = *v;
       }},
      {"content", "File content.",
       [&](Recipe&, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string(n, c)) {
           file.content = *v;
           has_content = true;
         }
       }},
      {"mode", "Octal mode, default 0644.",
       [&](Recipe&, const YAML::Node& n, ParseContext& c) {
         auto v = get_integer(n, c, 8);
         if (!v) return;
         if (*v < 0 || *v > 07777) {
           c.error(n, fmt::format("mode {} is out of range (0000-7777 octal)", n.Scalar()));
           return;
         }
         file.mode = unsigned(*v);
       }},
      {"owner", "owner or owner:group, default root:root.",
       [&](Recipe&, const YAML::Node& n, ParseContext& c) {
         auto v = get_string(n, c);
         if (!v) return;
         auto colon = v->find(':');
         file.owner = v->substr(0, colon);
         file.group = colon == std::string::npos ? file.owner : v->substr(colon + 1);
       }},
  };
  apply_fields(recipe, node, ctx, fields, "files");
  if (!has_path) ctx.error(node, "file entry needs a 'path'");
  if (!has_content) ctx.error(node, "file entry needs 'content'");
  if (!file.path.empty() && has_content) recipe.files.push_back(std::move(file));
}

void parse_user_entry(Recipe& recipe, const YAML::Node& node, ParseContext& ctx) {
  if (!expect(node, YAML::NodeType::Map, "a map with a user's name", ctx)) return;
  UserSpec user;
  user.mark = ctx.mark(node);
  std::vector<Field> fields = {
      {"name", "Login name.",
       [&](Recipe&, const YAML::Node& n, ParseContext& c) {
         auto v = get_string(n, c);
         if (v && !is_user_name(*v)) {
           c.error(n, fmt::format("bad user name '{}': use lowercase letters, digits, '-' and '_'",
                                  *v));
         } else if (v) {
           user.name = *v;
         }
       }},
      {"ssh_authorized_keys", "Public keys for ~/.ssh/authorized_keys.",
       [&](Recipe&, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string_list(n, c)) user.ssh_authorized_keys = *v;
       }},
      {"groups", "Supplementary groups (must exist in the image).",
       [&](Recipe&, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string_list(n, c)) user.groups = *v;
       }},
      {"shell", "Login shell, default /bin/bash.",
       [&](Recipe&, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string(n, c)) user.shell = *v;
       }},
  };
  apply_fields(recipe, node, ctx, fields, "users");
  if (user.name.empty()) {
    ctx.error(node, "user entry needs a 'name'");
    return;
  }
  for (const auto& existing : recipe.users) {
    if (existing.name == user.name) {
      ctx.error(node, fmt::format("user '{}' is defined twice", user.name));
      return;
    }
  }
  recipe.users.push_back(std::move(user));
}

std::vector<Field> top_fields() {
  return {
      {"include", "Another recipe (or list) read first; this file's keys override or extend it.",
       nullptr},
      {"name", "Image name: lowercase letters, digits and '-' (required).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_string(n, c);
         if (v && !is_dns_label(*v)) {
           c.error(n, fmt::format("bad name '{}': use lowercase letters, digits and '-'", *v));
         } else if (v) {
           r.name = *v;
         }
       }},
      {"version",
       "The image's version, e.g. 1.4.0 (default 0): shown as IMAGE_VERSION in os-release; "
       "nodes only update to newer ones.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_string(n, c);
         if (v && !is_image_version(*v)) {
           c.error(n, fmt::format("bad version '{}': use letters, digits and '.+~-_', starting "
                                  "with a letter or digit (at most 64)",
                                  *v));
         } else if (v) {
           r.version = *v;
         }
       }},
      {"source_date_epoch", "Timestamp for every file in the image (default: newest input).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_integer(n, c)) r.source_date_epoch = *v;
       }},
      {"base", section_help("Distribution", base_fields()),
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         apply_fields(r, n, c, base_fields(), "base");
       }},
      {"packages", "Extra Debian packages.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (!expect(n, YAML::NodeType::Sequence, "a list of package names", c)) return;
         for (const auto& item : n) {
           auto v = get_string(item, c);
           if (v && !is_package_name(*v)) {
             c.error(item, fmt::format("bad Debian package name '{}'", *v));
           } else if (v) {
             r.packages.push_back(*v);
           }
         }
       }},
      {"kubernetes", section_help("Kubernetes binaries", kubernetes_fields()),
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         apply_fields(r, n, c, kubernetes_fields(), "kubernetes");
       }},
      {"containerd", section_help("Container runtime", containerd_fields()),
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         apply_fields(r, n, c, containerd_fields(), "containerd");
       }},
      {"overlays", "Directories copied onto the root filesystem, in order.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (!expect(n, YAML::NodeType::Sequence, "a list of directories", c)) return;
         for (const auto& item : n) {
           auto v = get_string(item, c);
           if (!v) continue;
           fs::path dir = fs::path(*v).is_absolute() ? fs::path(*v) : c.file.parent_path() / *v;
           if (!fs::is_directory(dir)) {
             c.error(item, fmt::format("overlay directory '{}' does not exist",
                                       dir.lexically_normal().string()));
             continue;
           }
           r.overlays.push_back({fs::canonical(dir), c.mark(item)});
         }
       }},
      {"files", "Inline files: path, content, mode, owner.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (!expect(n, YAML::NodeType::Sequence, "a list of files", c)) return;
         for (const auto& item : n) parse_file_entry(r, item, c);
       }},
      {"users", "Login users: name, ssh_authorized_keys, groups, shell.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (!expect(n, YAML::NodeType::Sequence, "a list of users", c)) return;
         for (const auto& item : n) parse_user_entry(r, item, c);
       }},
      {"kernel", section_help("Kernel", kernel_fields()),
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         apply_fields(r, n, c, kernel_fields(), "kernel");
       }},
      {"sysctl", "Extra sysctl settings (key: value).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (!expect(n, YAML::NodeType::Map, "a map of sysctl keys to values", c)) return;
         for (auto it = n.begin(); it != n.end(); ++it) {
           auto key = get_string(it->first, c);
           auto value = get_string(it->second, c);
           if (key && !is_sysctl_key(*key)) {
             c.error(
                 it->first,
                 fmt::format("bad sysctl key '{}': expected dotted form like net.ipv4.ip_forward",
                             *key));
           } else if (key && value) {
             r.sysctl[*key] = *value;
           }
         }
       }},
      {"modules", "Extra kernel modules loaded at boot.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_string_list(n, c))
           r.modules.insert(r.modules.end(), v->begin(), v->end());
       }},
      {"hostname", "Static hostname (default: none; the node-name policy decides).",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         auto v = get_string(n, c);
         if (v && !is_dns_label(*v)) {
           c.error(n, fmt::format("bad hostname '{}'", *v));
         } else if (v) {
           r.hostname = *v;
         }
       }},
      {"node_name", "How the node names itself at join: hostname, mac, dmi or cloud.",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (auto v = get_choice<NodeNamePolicy>(n, c, "node-name policy",
                                                 {{"hostname", NodeNamePolicy::hostname},
                                                  {"mac", NodeNamePolicy::mac},
                                                  {"dmi", NodeNamePolicy::dmi},
                                                  {"cloud", NodeNamePolicy::cloud}}))
           r.node_name = *v;
       }},
      {"outputs", "Artifacts to produce (default rootfs): " + output_format_names() + ".",
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (!expect(n, YAML::NodeType::Sequence, "a list of output formats", c)) return;
         r.outputs.clear();
         std::vector<std::pair<std::string, std::string>> choices;
         for (const auto& format : kOutputFormats) choices.emplace_back(format.name, format.name);
         for (const auto& item : n) {
           auto v = get_choice<std::string>(item, c, "output format", choices);
           if (v && std::find(r.outputs.begin(), r.outputs.end(), *v) == r.outputs.end())
             r.outputs.push_back(*v);
         }
       }},
      {"disk", section_help("Disk image sizes", disk_fields()),
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         apply_fields(r, n, c, disk_fields(), "disk");
       }},
      {"pxe", section_help("Netboot choices", pxe_fields()),
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         apply_fields(r, n, c, pxe_fields(), "pxe");
       }},
      {"board",
       "Hardware beyond UEFI/BIOS machines: `board: rpi4`, or a map. " +
           section_help("Board", board_fields()),
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         if (n.IsMap()) {
           apply_fields(r, n, c, board_fields(), "board");
         } else {
           parse_board_model(r, n, c);
         }
       }},
      {"updates", section_help("Day-2 updates", updates_fields()),
       [](Recipe& r, const YAML::Node& n, ParseContext& c) {
         apply_fields(r, n, c, updates_fields(), "updates");
       }},
  };
}

void parse_into(Recipe& recipe, const fs::path& file, std::vector<Error>& errors,
                std::vector<fs::path>& include_stack, const ParseContext* parent,
                const YAML::Node* include_node);

void apply_includes(Recipe& recipe, const YAML::Node& root, ParseContext& ctx) {
  YAML::Node include = root["include"];
  if (!include) return;
  std::vector<YAML::Node> items;
  if (include.IsSequence()) {
    for (const auto& item : include) items.push_back(item);
  } else {
    items.push_back(include);
  }
  for (const auto& item : items) {
    auto name = get_string(item, ctx);
    if (!name) continue;
    fs::path path =
        fs::path(*name).is_absolute() ? fs::path(*name) : ctx.file.parent_path() / *name;
    parse_into(recipe, path, *ctx.errors, *ctx.include_stack, &ctx, &item);
  }
}

/// A recipe document's root; nothing when it is not YAML or is empty (both reported).
std::optional<YAML::Node> load_document(const std::string& text, const ParseContext& ctx) {
  auto root = ctx.reader->load(text);
  if (root && root->IsNull()) {
    ctx.errors->emplace_back(SourceMark{ctx.file.string(), 1, 1}, "recipe is empty");
    return std::nullopt;
  }
  return root;
}

/// Includes first, then this document's own keys on top.
void apply_document(Recipe& recipe, const YAML::Node& root, ParseContext& ctx) {
  if (root.IsMap()) apply_includes(recipe, root, ctx);
  apply_fields(recipe, root, ctx, top_fields(), "");
}

void parse_into(Recipe& recipe, const fs::path& file, std::vector<Error>& errors,
                std::vector<fs::path>& include_stack, const ParseContext* parent,
                const YAML::Node* include_node) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    std::string message =
        fmt::format("recipe '{}' does not exist", file.lexically_normal().string());
    if (parent) {
      parent->error(*include_node, "included " + message);
    } else {
      errors.emplace_back(message);
    }
    return;
  }
  fs::path canonical = fs::canonical(file);
  if (auto it = std::find(include_stack.begin(), include_stack.end(), canonical);
      it != include_stack.end()) {
    std::string chain;
    for (; it != include_stack.end(); ++it) chain += it->filename().string() + " -> ";
    parent->error(*include_node, "include cycle: " + chain + canonical.filename().string());
    return;
  }
  std::string text = read_file(file);
  YamlReader reader(file.string(), text, errors);
  ParseContext ctx{file, &reader, &errors, &include_stack};
  auto root = load_document(text, ctx);
  if (!root) return;
  include_stack.push_back(canonical);
  recipe.sources.push_back(canonical);
  apply_document(recipe, *root, ctx);
  include_stack.pop_back();
}

/// Checks that need the whole recipe, after includes are merged.
/// A board's firmware boots one kind of disk: arm64, 512-byte sectors, flashed from raw.
void validate_board(const Recipe& recipe, const SourceMark& top, std::vector<Error>& errors) {
  auto mark_of = [&](const char* key) {
    auto it = recipe.marks.find(key);
    return it == recipe.marks.end() ? top : it->second;
  };
  const char* board = to_string(recipe.board.model);
  if (recipe.base.arch != Arch::arm64) {
    errors.emplace_back(mark_of("board"),
                        fmt::format("board {} boots arm64 images: set base.arch: arm64", board));
  }
  if (recipe.disk.sector_size != 512) {
    errors.emplace_back(mark_of("disk.sector_size"),
                        fmt::format("board {}: the Pi firmware reads SD cards and USB disks "
                                    "with 512-byte sectors; remove disk.sector_size",
                                    board));
  }
  if (auto format = first_output_with(recipe.outputs, &OutputFormat::not_for_boards);
      !format.empty()) {
    errors.emplace_back(mark_of("board"),
                        fmt::format("board {}: output '{}' is not for a board; a Pi boots the "
                                    "raw image (raw, raw.zst for bmaptool copy)",
                                    board, format));
  }
  if (!recipe.updates.url.empty()) {
    errors.emplace_back(
        mark_of("updates.url"),
        fmt::format("board {}: nodes cannot take updates yet: the Pi firmware counts no boot "
                    "tries, so a failed version could not be rolled back; flash new images "
                    "instead, and leave updates.url out",
                    board));
  }
  if (recipe.board.firmware_url.empty() != recipe.board.firmware_sha256.empty()) {
    errors.emplace_back(
        mark_of(recipe.board.firmware_url.empty() ? "board.firmware_sha256" : "board.firmware_url"),
        "set both board.firmware_url and board.firmware_sha256, or neither");
  }
}

void validate_merged(Recipe& recipe, const fs::path& file, std::vector<Error>& errors) {
  SourceMark top{file.string(), 1, 1};
  if (recipe.name.empty()) errors.emplace_back(top, "recipe needs a 'name'");
  if (recipe.base.arch == Arch::arm64 && recipe.kernel.package == "linux-image-amd64") {
    recipe.kernel.package = "linux-image-arm64";
  }
  const auto& k8s = recipe.kubernetes;
  if (k8s.from == KubernetesSource::mirror && k8s.mirror.empty()) {
    errors.emplace_back(top, "kubernetes.from is 'mirror' but kubernetes.mirror is not set");
  }
  const auto& ctr = recipe.containerd;
  if (ctr.from == ContainerdSource::release &&
      (ctr.url.empty() || ctr.sha256.empty() || !ctr.version)) {
    errors.emplace_back(top,
                        "containerd.from is 'release': set containerd.version, containerd.url and "
                        "containerd.sha256");
  }
  Version needed = containerd_minimum(k8s.version);
  bool from_release = ctr.from == ContainerdSource::release && ctr.version;
  Version have = from_release ? *ctr.version : debian_containerd(recipe.base.suite);
  if (have < needed) {
    auto mark_of = [&](const char* key) {
      auto it = recipe.marks.find(key);
      return it == recipe.marks.end() ? top : it->second;
    };
    SourceMark where = from_release                       ? mark_of("containerd.version")
                       : recipe.marks.count("base.suite") ? mark_of("base.suite")
                                                          : mark_of("kubernetes.version");
    std::string origin = from_release ? "release" : "Debian " + recipe.base.suite;
    std::string advice =
        from_release || recipe.base.suite != "bookworm" || needed.major >= 2
            ? "use containerd.from: release with a newer version"
            : "use base.suite: trixie, or containerd.from: release with a newer version";
    errors.emplace_back(
        where,
        fmt::format("containerd {} ({}) is too old for kubelet v{}, which needs containerd {} "
                    "or newer; {}",
                    have.text(), origin, k8s.version.text(), needed.text(), advice));
  }
  if (recipe.outputs.empty()) recipe.outputs = {"rootfs"};
  if (recipe.disk.sector_size != 512) {
    if (auto format = first_output_with(recipe.outputs, &OutputFormat::sectors_512_only);
        !format.empty()) {
      auto it = recipe.marks.find("disk.sector_size");
      errors.emplace_back(it == recipe.marks.end() ? top : it->second,
                          fmt::format("disk.sector_size 4096 is for 4Kn disks flashed from raw, "
                                      "raw.zst or qcow2; output '{}' is for a platform whose "
                                      "disks have 512-byte sectors",
                                      format));
    }
  }
  if (recipe.base.arch != Arch::amd64) {
    if (auto format = first_output_with(recipe.outputs, &OutputFormat::x86_only); !format.empty()) {
      auto it = recipe.marks.find("base.arch");
      errors.emplace_back(it == recipe.marks.end() ? top : it->second,
                          fmt::format("base.arch {}: output '{}' describes an x86-64 virtual "
                                      "machine; write vmdk (or raw, qcow2) for arm64 hosts",
                                      to_string(recipe.base.arch), format));
    }
  }
  if (recipe.board.model != Board::generic) validate_board(recipe, top, errors);
  if (!recipe.updates.url.empty() && recipe.updates.trusted_keys.empty()) {
    auto it = recipe.marks.find("updates.url");
    errors.emplace_back(it == recipe.marks.end() ? top : it->second,
                        "updates.url is set but updates.trusted_keys is empty: a node would "
                        "refuse every release; list the public key(s) that sign your releases");
  }
}

}  // namespace

Recipe load_recipe(const fs::path& file) {
  Recipe recipe;
  std::vector<Error> errors;
  std::vector<fs::path> include_stack;
  parse_into(recipe, file, errors, include_stack, nullptr, nullptr);
  if (errors.empty()) validate_merged(recipe, file, errors);
  if (!errors.empty()) throw RecipeErrors(std::move(errors));
  return recipe;
}

Recipe parse_recipe(const std::string& text, const fs::path& source_name) {
  Recipe recipe;
  std::vector<Error> errors;
  std::vector<fs::path> include_stack;
  YamlReader reader(source_name.string(), text, errors);
  ParseContext ctx{source_name, &reader, &errors, &include_stack};
  if (auto root = load_document(text, ctx)) apply_document(recipe, *root, ctx);
  if (errors.empty()) validate_merged(recipe, source_name, errors);
  if (!errors.empty()) throw RecipeErrors(std::move(errors));
  return recipe;
}

std::string describe_recipe_keys() {
  std::string out;
  auto add = [&](const std::string& prefix, const std::vector<Field>& fields) {
    for (const auto& field : fields)
      out += fmt::format("  {:<28} {}\n", prefix + field.name, field.help);
  };
  add("", top_fields());
  add("base.", base_fields());
  add("kubernetes.", kubernetes_fields());
  add("containerd.", containerd_fields());
  add("kernel.", kernel_fields());
  add("disk.", disk_fields());
  add("pxe.", pxe_fields());
  add("updates.", updates_fields());
  out += "\nOutput formats (outputs:, kiln build --outputs):\n";
  for (const auto& format : kOutputFormats)
    out += fmt::format("  {:<28} {}\n", format.name, format.help);
  return out;
}

}  // namespace kiln
