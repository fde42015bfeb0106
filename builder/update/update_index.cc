#include "builder/update/update_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <nlohmann/json.hpp>

#include "builder/update/image_version.h"
#include "builder/util/error.h"
#include "builder/util/scan.h"

namespace kiln {

using nlohmann::json;

namespace {

/// Sizes above this cannot be a root slot (1 TiB): a lie meant to exhaust a disk or counter.
constexpr std::uint64_t kMaxFileSize = 1ull << 40;
constexpr std::size_t kMaxCmdline = 4096;

json file_json(const UpdateFile& file) {
  return {{"name", file.name}, {"sha256", file.sha256}, {"size", file.size}};
}

/// The field `key` of `object` as `type`, or an Error naming `where` and the key.
const json& field(const json& object, const char* key, json::value_t type,
                  const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) throw Error(fmt::format("update index: {} has no '{}'", where, key));
  bool ok =
      it->type() == type || (type == json::value_t::number_unsigned && it->is_number_unsigned());
  if (!ok) throw Error(fmt::format("update index: {}'s '{}' has the wrong type", where, key));
  return *it;
}

std::string string_field(const json& object, const char* key, const std::string& where,
                         std::size_t max) {
  const std::string& value =
      field(object, key, json::value_t::string, where).get_ref<const std::string&>();
  if (value.size() > max)
    throw Error(fmt::format("update index: {}'s '{}' is longer than {} bytes", where, key, max));
  return value;
}

UpdateFile parse_file(const json& release, const char* role, const std::string& where) {
  std::string at = where + " " + role;
  const json& object = field(release, role, json::value_t::object, where);
  UpdateFile file;
  file.name = string_field(object, "name", at, 128);
  if (!is_update_file_name(file.name))
    throw Error(
        fmt::format("update index: {} names '{}', which is not a plain file name", at, file.name));
  file.sha256 = string_field(object, "sha256", at, 64);
  if (!scan::is_lower_hex(file.sha256, 64))
    throw Error(fmt::format("update index: {}'s sha256 is not 64 lowercase hex digits", at));
  file.size = field(object, "size", json::value_t::number_unsigned, at).get<std::uint64_t>();
  if (file.size == 0 || file.size > kMaxFileSize)
    throw Error(fmt::format("update index: {}'s size {} is out of range", at, file.size));
  return file;
}

/// A zstd frame of `frame_size` bytes never compresses to more than this (zstd's own bound is
/// the size plus 1/256 and a small header; this one is looser and needs no zstd header).
std::uint64_t max_compressed_frame(std::uint64_t frame_size) {
  return frame_size + frame_size / 128 + 4096;
}

ZstdFrames parse_zstd_frames(const json& release, const UpdateFile& root,
                             const std::string& where) {
  std::string at = where + " rootZstd";
  ZstdFrames zstd;
  zstd.file = parse_file(release, "rootZstd", where);
  const json& object = release.at("rootZstd");
  zstd.frame_size =
      field(object, "frameSize", json::value_t::number_unsigned, at).get<std::uint64_t>();
  if (!is_zstd_frame_size(zstd.frame_size))
    throw Error(
        fmt::format("update index: {}'s frameSize {} is not a power of two from 1 to 64 MiB", at,
                    zstd.frame_size));
  const json& frames = field(object, "frames", json::value_t::array, at);
  const std::uint64_t expected = (root.size + zstd.frame_size - 1) / zstd.frame_size;
  if (frames.size() != expected)
    throw Error(fmt::format("update index: {} lists {} frames; a root of {} bytes has {}", at,
                            frames.size(), root.size, expected));
  std::uint64_t total = 0;  // at most 2^20 frames of at most 2^27 bytes: no overflow
  zstd.frames.reserve(frames.size());
  for (const json& frame : frames) {
    if (!frame.is_number_unsigned())
      throw Error(fmt::format("update index: {} has a frame size that is not a count", at));
    std::uint64_t size = frame.get<std::uint64_t>();
    if (size == 0 || size > max_compressed_frame(zstd.frame_size))
      throw Error(fmt::format("update index: {} has a frame of {} bytes, out of range", at, size));
    total += size;
    zstd.frames.push_back(size);
  }
  if (total != zstd.file.size)
    throw Error(fmt::format("update index: {}'s frames add up to {} bytes, not its size {}", at,
                            total, zstd.file.size));
  return zstd;
}

bool is_printable_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace

bool is_update_url(std::string_view url) {
  return url.substr(0, 7) == "http://" && url.size() <= 2048 &&
         std::all_of(url.begin(), url.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

bool is_zstd_frame_size(std::uint64_t frame_size) {
  return std::has_single_bit(frame_size) && frame_size >= kMinZstdFrameSize &&
         frame_size <= kMaxZstdFrameSize;
}

bool is_update_file_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return scan::is_alnum(c) || c == '.' || c == '_' || c == '+' || c == '~' || c == '-';
  });
}

std::string render_update_index(UpdateIndex index) {
  std::sort(index.releases.begin(), index.releases.end(),
            [](const UpdateRelease& a, const UpdateRelease& b) {
              return compare_image_versions(a.version, b.version) < 0;
            });
  json releases = json::array();
  for (const auto& r : index.releases) {
    json release = {{"version", r.version},          {"rootHash", r.root_hash},
                    {"cmdline", r.cmdline},          {"root", file_json(r.root)},
                    {"verity", file_json(r.verity)}, {"kernel", file_json(r.kernel)},
                    {"initrd", file_json(r.initrd)}};
    if (r.root_zstd) {
      json zstd = file_json(r.root_zstd->file);
      zstd["frameSize"] = r.root_zstd->frame_size;
      zstd["frames"] = r.root_zstd->frames;
      release["rootZstd"] = std::move(zstd);
    }
    releases.push_back(std::move(release));
  }
  json document = {{"schemaVersion", kUpdateIndexSchema},
                   {"name", index.name},
                   {"arch", index.arch},
                   {"releases", releases}};
  return document.dump(2) + "\n";  // nlohmann's object keeps its keys sorted
}

UpdateIndex parse_update_index(std::string_view text) {
  if (text.size() > kMaxUpdateIndexBytes)
    throw Error(fmt::format("update index is larger than {} bytes", kMaxUpdateIndexBytes));
  json document = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) throw Error("update index is not a JSON object");
  const json& schema = field(document, "schemaVersion", json::value_t::number_unsigned, "it");
  if (schema.get<std::uint64_t>() != kUpdateIndexSchema) {
    throw Error(
        fmt::format("update index has schemaVersion {}; this node reads {} (update kiln "
                    "on the node first, or publish with the kiln that built it)",
                    schema.dump(), kUpdateIndexSchema));
  }
  UpdateIndex index;
  index.name = string_field(document, "name", "it", 64);
  index.arch = string_field(document, "arch", "it", 16);
  const json& releases = field(document, "releases", json::value_t::array, "it");
  if (releases.size() > kMaxUpdateReleases)
    throw Error(fmt::format("update index lists more than {} releases", kMaxUpdateReleases));
  for (std::size_t i = 0; i < releases.size(); ++i) {
    const json& r = releases[i];
    std::string where = fmt::format("release {}", i + 1);
    if (!r.is_object()) throw Error("update index: " + where + " is not an object");
    UpdateRelease release;
    release.version = string_field(r, "version", where, 64);
    if (!is_image_version(release.version))
      throw Error(fmt::format("update index: {} has an invalid version", where));
    where = "release " + release.version;
    release.root_hash = string_field(r, "rootHash", where, 64);
    if (!scan::is_lower_hex(release.root_hash, 64))
      throw Error(fmt::format("update index: {}'s rootHash is not 64 lowercase hex digits", where));
    release.cmdline = string_field(r, "cmdline", where, kMaxCmdline);
    if (!is_printable_ascii(release.cmdline))
      throw Error(fmt::format("update index: {}'s cmdline has control characters", where));
    release.root = parse_file(r, "root", where);
    release.verity = parse_file(r, "verity", where);
    release.kernel = parse_file(r, "kernel", where);
    release.initrd = parse_file(r, "initrd", where);
    // Optional: nodes whose kiln predates it read the index without it, and download the root.
    if (r.contains("rootZstd")) release.root_zstd = parse_zstd_frames(r, release.root, where);
    for (const auto& other : index.releases) {
      if (compare_image_versions(other.version, release.version) == 0)
        throw Error(fmt::format("update index lists version {} twice", release.version));
    }
    index.releases.push_back(std::move(release));
  }
  return index;
}

std::vector<const UpdateFile*> release_files(const UpdateRelease& release) {
  std::vector<const UpdateFile*> files = {&release.root, &release.verity, &release.kernel,
                                          &release.initrd};
  if (release.root_zstd) files.push_back(&release.root_zstd->file);
  return files;
}

const UpdateRelease* newest_release(const UpdateIndex& index) {
  const UpdateRelease* newest = nullptr;
  for (const auto& r : index.releases) {
    if (!newest || compare_image_versions(r.version, newest->version) > 0) newest = &r;
  }
  return newest;
}

}  // namespace kiln
