#include "builder/inspect/inspect.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "builder/inspect/disk_reader.h"
#include "builder/inspect/inspect_disk.h"
#include "builder/inspect/tar_index.h"
#include "builder/join/join_config.h"
#include "builder/update/update_index.h"
#include "builder/update/verity_check.h"
#include "builder/update/zstd_frame_reader.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/log.h"
#include "builder/util/scan.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxScript = 64 << 10;
constexpr std::uintmax_t kMaxManifest = 16 << 20;

/// A small file of a folder, refused when larger than `limit`; nullopt when absent.
std::optional<std::string> read_small(const fs::path& file, std::uintmax_t limit) {
  std::error_code error;
  if (!fs::is_regular_file(file, error)) return std::nullopt;
  if (fs::file_size(file) > limit)
    throw Error(
        fmt::format("{} is larger than kiln writes ({} bytes at most)", file.string(), limit));
  return read_file(file);
}

/// Checks a root file against a verity tree at `hash_offset` of `hash_file` (the same file
/// in a PXE folder).
RootCheck check_root_file(const fs::path& root_file, const fs::path& hash_file,
                          std::uint64_t hash_offset, const std::string& root_hash) {
  RootCheck check{root_file.filename().string(), root_hash, false, ""};
  std::unique_ptr<DiskReader> root, hashes;
  try {
    root = open_raw_disk(root_file);
    hashes = open_raw_disk(hash_file);
  } catch (const Error& e) {
    check.problem = e.what();
    return check;
  }
  if (hash_offset > hashes->size()) {
    check.problem = "the hash tree's offset lies past the end of " + hash_file.filename().string();
    return check;
  }
  std::uint64_t data_bytes = root_file == hash_file ? hash_offset : root->size();
  log::info("  checking {} ({}) against its root hash", check.slot, log::human_bytes(data_bytes));
  check.problem = verify_verity(verity_reader(*root, 0), data_bytes,
                                verity_reader(*hashes, hash_offset), root_hash);
  check.matches = check.problem.empty();
  return check;
}

/// Whether an update's zstd frames decode, as a node decodes them, to the root its index
/// lists: "" when they do, else the problem.
std::string check_frames(const fs::path& file, const UpdateRelease& release) {
  const ZstdFrames& zstd = *release.root_zstd;
  std::error_code error;
  std::uint64_t size = fs::file_size(file, error);
  if (error) return "cannot read " + file.filename().string() + ": " + error.message();
  if (size != zstd.file.size)
    return fmt::format("{} is {} bytes, not the {} the index lists", file.filename().string(), size,
                       zstd.file.size);
  log::info("  decoding {} ({} frames)", file.filename().string(), zstd.frames.size());
  Sha256 hash;
  try {
    ZstdFrameReader reader(
        zstd.frame_size, release.root.size, 0,
        [&](std::uint64_t, std::string_view data) { hash.update(data); }, [](std::uint64_t) {});
    for_each_piece(file, [&](std::string_view piece) { reader.feed(piece); });
    if (!reader.finished()) return "it ends inside a frame";
  } catch (const Error& e) {
    return e.what();
  }
  std::string digest = hash.hex();
  if (digest != release.root.sha256)
    return fmt::format("it decodes to SHA-256 {}, not the root's {}", digest, release.root.sha256);
  return "";
}

/// join.yaml from a `kiln stamp --pxe` initrd (a cpio archive kiln wrote).
std::optional<std::string> join_from_initrd(const fs::path& initrd) {
  std::unique_ptr<struct archive, decltype(&archive_read_free)> archive(archive_read_new(),
                                                                        archive_read_free);
  archive_read_support_format_cpio(archive.get());
  if (archive_read_open_filename(archive.get(), initrd.c_str(), 1 << 16) != ARCHIVE_OK)
    throw Error("cannot read " + initrd.string() + ": " + archive_error_string(archive.get()));
  for (int entries = 0; entries < 16; ++entries) {
    struct archive_entry* entry = nullptr;
    int status = archive_read_next_header(archive.get(), &entry);
    if (status == ARCHIVE_EOF) break;
    if (status != ARCHIVE_OK)
      throw Error("cannot read " + initrd.string() + ": " + archive_error_string(archive.get()));
    if (std::string_view(archive_entry_pathname(entry)) != "kiln/join.yaml") continue;
    if (archive_entry_size(entry) < 0 ||
        std::uint64_t(archive_entry_size(entry)) > kMaxJoinConfigBytes)
      throw Error(initrd.string() + ": kiln/join.yaml is larger than any join config");
    std::string text(std::size_t(archive_entry_size(entry)), '\0');
    for (std::size_t done = 0; done < text.size();) {
      la_ssize_t n = archive_read_data(archive.get(), text.data() + done, text.size() - done);
      if (n <= 0) throw Error(initrd.string() + ": kiln/join.yaml is cut short");
      done += std::size_t(n);
    }
    return text;
  }
  return std::nullopt;
}

void inspect_pxe(const fs::path& dir, ImageReport& report) {
  report.format = "pxe";
  auto entry = parse_ipxe_script(*read_small(dir / "boot.ipxe", kMaxScript));
  if (!entry)
    throw Error((dir / "boot.ipxe").string() + " has no kernel line (not a kiln PXE folder?)");
  report.loader_entries.push_back(std::move(*entry));
  const std::string& cmdline = report.loader_entries.front().cmdline;
  std::string root_hash = cmdline_value(cmdline, "kiln.roothash");
  auto offset = scan::parse_unsigned(cmdline_value(cmdline, "kiln.root_hash_offset"));
  if (!scan::is_lower_hex(root_hash, 64) || !offset)
    throw Error((dir / "boot.ipxe").string() + " names no kiln.roothash and kiln.root_hash_offset");
  report.roots.push_back(check_root_file(dir / "root.img", dir / "root.img", *offset, root_hash));
  if (auto manifest = read_small(dir / "manifest.json", kMaxManifest))
    report.manifest = parse_manifest_summary(*manifest, (dir / "manifest.json").string());
  if (fs::exists(dir / "sbom.spdx.json")) report.sbom_sha256 = sha256_file(dir / "sbom.spdx.json");
  std::optional<std::string> join;
  if (fs::exists(dir / "join.img")) join = join_from_initrd(dir / "join.img");
  report.stamp =
      summarize_stamp(join, std::nullopt, (dir / "join.img").string() + ":kiln/join.yaml");
}

void inspect_update_folder(const fs::path& dir, ImageReport& report) {
  report.format = "update";
  UpdateIndex index = parse_update_index(*read_small(dir / "index.json", kMaxUpdateIndexBytes));
  report.update_name = index.name;
  report.update_arch = index.arch;
  report.update_signed = fs::exists(dir / "index.json.sig");
  for (auto it = index.releases.rbegin(); it != index.releases.rend(); ++it) {
    ReleaseSummary release{
        it->version, it->cmdline,
        check_root_file(dir / it->root.name, dir / it->verity.name, 0, it->root_hash)};
    if (it->root_zstd) {
      std::string problem = check_frames(dir / it->root_zstd->file.name, *it);
      release.frames = {it->root_zstd->file.name, problem.empty(), problem};
    }
    report.loader_entries.push_back({"update", it->version, it->version, it->cmdline});
    report.roots.push_back(release.root);
    report.releases.push_back(std::move(release));
  }
}

std::string blockdev(const std::string& driver, const fs::path& file,
                     const std::optional<TarMember>& member = std::nullopt) {
  nlohmann::json spec = {{"driver", driver},
                         {"file", {{"driver", "file"}, {"filename", fs::absolute(file).string()}}}};
  // A fixed VHD's size is its footer's, not the CHS geometry qemu would otherwise compute.
  if (driver == "vpc") spec["force_size_calc"] = "current_size";
  if (member) {
    spec["file"] = {{"driver", "raw"},
                    {"offset", member->offset},
                    {"size", member->size},
                    {"file", spec["file"]}};
  }
  return spec.dump();
}

bool starts_with(std::string_view bytes, std::string_view magic) {
  return bytes.substr(0, magic.size()) == magic;
}

}  // namespace

ImageReport inspect_output(const fs::path& path) {
  ImageReport report;
  report.path = path.string();
  std::error_code error;
  if (fs::is_directory(path, error)) {
    if (fs::exists(path / "boot.ipxe")) {
      inspect_pxe(path, report);
    } else if (fs::exists(path / "index.json")) {
      inspect_update_folder(path, report);
    } else {
      throw Error(path.string() +
                  " is neither a kiln PXE folder (boot.ipxe) nor an update folder (index.json); "
                  "give a disk image, " +
                  (path / "pxe").string() + " or " + (path / "update").string());
    }
    return report;
  }
  if (!fs::is_regular_file(path, error)) throw Error(path.string() + ": no such file or folder");
  std::uint64_t size = fs::file_size(path);
  // Up to the GPT header of a 4Kn disk, in its second 4096-byte sector.
  std::string head = read_at(path, 0, std::size_t(std::min<std::uint64_t>(size, 4096 + 8)));
  std::string tail = size >= 512 ? read_at(path, size - 512, 512) : std::string();
  std::unique_ptr<DiskReader> disk;
  if (starts_with(head, "QFI\xfb")) {
    report.format = "qcow2";
    disk = open_qemu_disk(path, blockdev("qcow2", path));
  } else if (starts_with(head, "KDMV")) {
    report.format = "vmdk";
    disk = open_qemu_disk(path, blockdev("vmdk", path));
  } else if (starts_with(head, "\x28\xb5\x2f\xfd")) {
    report.format = "raw.zst";
    disk = open_streamed_disk(path);
  } else if (starts_with(head, "\x1f\x8b")) {
    report.format = "gce";
    disk = open_streamed_disk(path, "disk.raw");
  } else if (head.size() >= 262 && head.substr(257, 5) == "ustar") {
    report.format = "ova";
    auto fd = open_raw_disk(path);
    auto member = find_tar_member(
        [&](std::uint64_t at, std::size_t count) {
          return fd->read(at,
                          std::size_t(std::min<std::uint64_t>(count, size - std::min(at, size))));
        },
        size, ".vmdk", path.string());
    if (!member)
      throw Error(path.string() + " is a tar archive without a .vmdk disk (not an OVA?)");
    disk = open_qemu_disk(path, blockdev("vmdk", path, member));
  } else if (starts_with(tail, "conectix")) {
    report.format = "vhd";
    disk = open_qemu_disk(path, blockdev("vpc", path));
  } else if ((head.size() >= 520 && head.substr(512, 8) == "EFI PART") ||
             (head.size() >= 4104 && head.substr(4096, 8) == "EFI PART")) {
    report.format = "raw";
    disk = open_raw_disk(path);
  } else {
    throw Error(path.string() +
                " is not a disk image kiln writes (raw, raw.zst, qcow2, vhd, vmdk, ova or a GCE "
                "tarball), nor a PXE or update folder");
  }
  inspect_disk(*disk, path.string(), report);
  return report;
}

}  // namespace kiln
