#include "firstboot/update/boot_entries.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "builder/update/image_version.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/scan.h"

namespace kiln::update {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kGrubenvSize = 1024;

fs::path entries_dir(const fs::path& esp) {
  return esp / "loader/entries";
}

void write_synced(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  write_file_atomic(path, text);
  fsync_path(path.parent_path());
}

std::string entry_text(const LoaderEntry& e) {
  return fmt::format("title {}\nsort-key kiln\nversion {}\nlinux {}\ninitrd {}\noptions {}\n",
                     e.title, e.version, e.linux_path, e.initrd_path, e.options);
}

/// GRUB reads FAT case-insensitively and wants '/' paths from the ESP's root, as entries have.
std::string grub_entry(const LoaderEntry& e, const std::string& id) {
  return fmt::format("menuentry '{}' --id {} {{\n  linux {} {}\n  initrd {}\n}}\n", e.title, id,
                     e.linux_path, e.options, e.initrd_path);
}

void write_grub(const fs::path& esp, const std::vector<LoaderEntry>& entries) {
  std::error_code ec;
  if (!fs::exists(esp / "grub", ec)) return;  // a UEFI-only disk has no GRUB
  write_synced(esp / "grub/grub.cfg", render_grub_config(entries));
}

}  // namespace

std::optional<LoaderEntry> parse_entry(const std::string& file, const std::string& text) {
  constexpr std::string_view prefix = "kiln-", suffix = ".conf";
  if (file.size() <= prefix.size() + suffix.size() || file.rfind(prefix, 0) != 0 ||
      file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  LoaderEntry e;
  e.file = file;
  std::string stem = file.substr(prefix.size(), file.size() - prefix.size() - suffix.size());
  if (auto plus = stem.rfind('+'); plus != std::string::npos) {
    std::string counter = stem.substr(plus + 1);
    auto dash = counter.find('-');
    auto left = scan::parse_unsigned<int>(counter.substr(0, dash));
    auto done = dash == std::string::npos ? std::optional<int>(0)
                                          : scan::parse_unsigned<int>(counter.substr(dash + 1));
    if (left && done && *left < 100 && *done < 100) {
      e.tries_left = *left, e.tries_done = *done;
      stem = stem.substr(0, plus);
    }
  }
  if (!is_image_version(stem)) return std::nullopt;
  e.version = stem;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto space = line.find(' ');
    if (space == std::string::npos) continue;
    std::string key = line.substr(0, space), value = line.substr(space + 1);
    if (key == "title") e.title = value;
    if (key == "linux") e.linux_path = value;
    if (key == "initrd") e.initrd_path = value;
    if (key == "options") e.options = value;
  }
  if (e.linux_path.empty() || e.options.empty()) return std::nullopt;
  return e;
}

std::vector<LoaderEntry> read_entries(const fs::path& esp) {
  std::vector<LoaderEntry> entries;
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(entries_dir(esp), ec)) {
    if (!file.is_regular_file() || file.file_size() > 65536) continue;
    if (auto e = parse_entry(file.path().filename(), read_file(file.path())))
      entries.push_back(std::move(*e));
  }
  std::sort(entries.begin(), entries.end(), [](const LoaderEntry& a, const LoaderEntry& b) {
    bool spent_a = a.tries_left == 0, spent_b = b.tries_left == 0;
    if (spent_a != spent_b) return !spent_a;
    return compare_image_versions(a.version, b.version) > 0;
  });
  return entries;
}

std::string render_grubenv(const std::vector<std::pair<std::string, std::string>>& values) {
  std::string block = "# GRUB Environment Block\n";
  for (const auto& [name, value] : values) block += name + "=" + value + "\n";
  if (block.size() > kGrubenvSize) throw Error("GRUB environment block overflows");
  block.resize(kGrubenvSize, '#');
  return block;
}

std::string grubenv_value(const std::string& block, const std::string& name) {
  std::istringstream in(block.substr(0, kGrubenvSize));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "=", 0) == 0) return line.substr(name.size() + 1);
  }
  return "";
}

std::string render_grub_config(const std::vector<LoaderEntry>& entries) {
  std::string out =
      "# Written by kiln-update from loader/entries: the same versions as systemd-boot.\n"
      "set timeout=0\nset default=kiln-0\n";
  const LoaderEntry* trial = nullptr;
  for (const auto& e : entries)
    if (e.tries_left > 0 && !trial) trial = &e;
  if (trial) {
    // GRUB has no arithmetic: one branch per count, each saving one less before booting.
    out += "load_env -f ($root)/grub/grubenv\n";
    out += "if [ \"${kiln_trial}\" = \"" + trial->version + "\" ]; then\n";
    for (int left = 9; left >= 1; --left) {
      out += fmt::format(
          "  {}if [ \"${{kiln_tries}}\" = \"{}\" ]; then\n"
          "    set kiln_tries={}\n    set default=kiln-trial\n",
          left == 9 ? "" : "el", left, left - 1);
    }
    out += "  fi\n  save_env -f ($root)/grub/grubenv kiln_tries\nfi\n";
    out += grub_entry(*trial, "kiln-trial");
  }
  int index = 0;
  for (const auto& e : entries) {
    if (&e == trial || e.tries_left >= 0) continue;
    out += grub_entry(e, fmt::format("kiln-{}", index++));
  }
  return out;
}

void add_trial_entry(const fs::path& esp, const std::string& title, const std::string& version,
                     const fs::path& kernel, const fs::path& initrd, const std::string& options,
                     int tries) {
  fs::path dir = esp / "kiln" / version;
  fs::create_directories(dir);
  copy_file_atomic(kernel, dir / "vmlinuz");
  copy_file_atomic(initrd, dir / "initrd.img");
  fsync_path(dir);
  LoaderEntry e;
  e.version = version;
  e.title = title;
  e.linux_path = "/kiln/" + version + "/vmlinuz";
  e.initrd_path = "/kiln/" + version + "/initrd.img";
  e.options = options;
  e.tries_left = tries;
  e.file = fmt::format("kiln-{}+{}.conf", version, tries);
  // GRUB's count first, so that its config never names a trial without tries to spend.
  if (fs::exists(esp / "grub")) {
    write_synced(esp / "grub/grubenv",
                 render_grubenv({{"kiln_trial", version}, {"kiln_tries", std::to_string(tries)}}));
  }
  write_synced(entries_dir(esp) / e.file, entry_text(e));
  write_grub(esp, read_entries(esp));
}

void bless_entry(const fs::path& esp, const std::string& version) {
  for (const auto& e : read_entries(esp)) {
    if (e.version != version || e.tries_left < 0) continue;
    fs::path from = entries_dir(esp) / e.file,
             to = entries_dir(esp) / ("kiln-" + version + ".conf");
    fs::rename(from, to);
    fsync_path(entries_dir(esp));
  }
  write_grub(esp, read_entries(esp));
  if (fs::exists(esp / "grub")) write_synced(esp / "grub/grubenv", render_grubenv({}));
}

void retire_entry(const fs::path& esp, const std::string& version) {
  for (const auto& e : read_entries(esp)) {
    if (e.version != version || e.tries_left == 0) continue;
    fs::rename(entries_dir(esp) / e.file,
               entries_dir(esp) /
                   ("kiln-" + version + "+0-" + std::to_string(e.tries_done + 1) + ".conf"));
  }
  fsync_path(entries_dir(esp));
  write_grub(esp, read_entries(esp));
}

void remove_entry(const fs::path& esp, const std::string& version) {
  std::error_code ec;
  std::vector<std::string> files;  // its kernel and initrd, unless another entry boots them
  for (const auto& e : read_entries(esp)) {
    if (e.version != version) continue;
    fs::remove(entries_dir(esp) / e.file, ec);
    files.push_back(e.linux_path);
    files.push_back(e.initrd_path);
  }
  fsync_path(entries_dir(esp));
  auto remaining = read_entries(esp);
  write_grub(esp, remaining);
  for (const auto& file : files) {
    bool shared = std::any_of(remaining.begin(), remaining.end(), [&](const LoaderEntry& e) {
      return e.linux_path == file || e.initrd_path == file;
    });
    if (!shared && file.rfind("/kiln/", 0) == 0 && file.find("..") == std::string::npos)
      fs::remove(esp / file.substr(1), ec);
  }
  fs::remove_all(esp / "kiln" / version, ec);
}

bool trial_exhausted(const fs::path& esp, const std::string& version) {
  for (const auto& e : read_entries(esp))
    if (e.version == version && e.tries_left == 0) return true;
  std::error_code ec;
  if (fs::exists(esp / "grub/grubenv", ec)) {
    std::string block = read_file(esp / "grub/grubenv");
    if (grubenv_value(block, "kiln_trial") == version && grubenv_value(block, "kiln_tries") == "0")
      return true;
  }
  return false;
}

}  // namespace kiln::update
