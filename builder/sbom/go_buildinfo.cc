#include "builder/sbom/go_buildinfo.h"

#include <cstdint>

namespace kiln {

namespace {

constexpr std::string_view kMagic = "\xff Go buildinf:";
constexpr std::size_t kHeaderSize = 32;
constexpr std::size_t kMaxString = std::size_t(4) << 20;

/// An unsigned LEB128 varint at `at`, advancing it; nullopt when cut short or too long.
std::optional<std::uint64_t> read_uvarint(std::string_view data, std::size_t& at) {
  std::uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (at >= data.size()) return std::nullopt;
    auto byte = static_cast<unsigned char>(data[at++]);
    value |= std::uint64_t(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return value;
  }
  return std::nullopt;
}

std::optional<std::string_view> read_string(std::string_view data, std::size_t& at) {
  auto size = read_uvarint(data, at);
  if (!size || *size > kMaxString || *size > data.size() - at) return std::nullopt;
  std::string_view text = data.substr(at, *size);
  at += *size;
  return text;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    auto tab = line.find('\t');
    fields.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos) return fields;
    line.remove_prefix(tab + 1);
  }
}

}  // namespace

GoBuildInfo parse_go_modinfo(std::string_view text) {
  GoBuildInfo info;
  while (!text.empty()) {
    auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    auto fields = split_tabs(line);
    if (fields[0] == "path" && fields.size() >= 2) {
      info.package = fields[1];
    } else if ((fields[0] == "mod" || fields[0] == "dep") && fields.size() >= 3) {
      GoModule module{std::string(fields[1]), std::string(fields[2]),
                      fields.size() >= 4 ? std::string(fields[3]) : ""};
      if (fields[0] == "mod")
        info.main = module;
      else
        info.deps.push_back(module);
    } else if (fields[0] == "=>" && fields.size() >= 3 && !info.deps.empty()) {
      // The previous dependency was replaced: what was compiled is the replacement.
      info.deps.back() = {std::string(fields[1]), std::string(fields[2]),
                          fields.size() >= 4 ? std::string(fields[3]) : ""};
    }
  }
  return info;
}

std::optional<GoBuildInfo> read_go_buildinfo(std::string_view binary) {
  for (std::size_t at = binary.find(kMagic); at != std::string_view::npos;
       at = binary.find(kMagic, at + 1)) {
    if (at % 16 != 0 || binary.size() - at < kHeaderSize) continue;
    auto flags = static_cast<unsigned char>(binary[at + 15]);
    if (!(flags & 0x2)) continue;  // pre-1.18 layout: pointers into the data segment
    std::size_t cursor = at + kHeaderSize;
    auto version = read_string(binary, cursor);
    auto modinfo = version ? read_string(binary, cursor) : std::nullopt;
    if (!modinfo || version->substr(0, 2) != "go") continue;
    // The module text sits between two 16-byte sentinels.
    std::string_view text = *modinfo;
    if (text.size() >= 33 && text[text.size() - 17] == '\n')
      text = text.substr(16, text.size() - 32);
    GoBuildInfo info = parse_go_modinfo(text);
    info.go_version = std::string(*version);
    return info;
  }
  return std::nullopt;
}

}  // namespace kiln
