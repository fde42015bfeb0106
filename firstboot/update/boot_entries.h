#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::update {

/// One kiln entry of systemd-boot (ESP/loader/entries/kiln-VERSION[+LEFT[-DONE]].conf), the
/// one list both boot loaders are generated from: GRUB's grub.cfg is rewritten from it.
struct LoaderEntry {
  std::string file;     ///< file name in loader/entries
  std::string version;  ///< image version (from the file name)
  int tries_left = -1;  ///< -1: no boot counting (a blessed entry)
  int tries_done = 0;
  std::string title, linux_path, initrd_path, options;
};

/// The kiln entries on the ESP, in systemd-boot's order: entries with tries left (or none
/// counted) newest version first, then those that used up their tries. Unparseable entries are
/// skipped.
std::vector<LoaderEntry> read_entries(const std::filesystem::path& esp);

/// Parses an entry file's name and text; nullopt when it is not a kiln entry.
std::optional<LoaderEntry> parse_entry(const std::string& file, const std::string& text);

/// A new version for a trial boot: copies its kernel and initrd from `kernel` and `initrd`
/// into ESP/kiln/VERSION/, then writes its entry with `tries` boot tries
/// (kiln-VERSION+TRIES.conf, Boot Loader Specification boot counting: systemd-boot counts
/// down on each boot and puts the entry last when none are left) and the same trial into
/// GRUB's config and environment block. The entry is written last: until then the ESP boots
/// what it booted before.
void add_trial_entry(const std::filesystem::path& esp, const std::string& title,
                     const std::string& version, const std::filesystem::path& kernel,
                     const std::filesystem::path& initrd, const std::string& options, int tries);

/// Marks `version` good: its entry loses the counter, and GRUB boots it by default.
void bless_entry(const std::filesystem::path& esp, const std::string& version);

/// Marks `version`'s entry spent (kiln-VERSION+0-1.conf): systemd-boot then sorts it after
/// every other entry and GRUB leaves it out, so the next boot takes the previous version;
/// its files stay, for a person at the boot menu.
void retire_entry(const std::filesystem::path& esp, const std::string& version);

/// Removes `version`'s entry and its kernel and initrd from the ESP, and rewrites GRUB's
/// config without it.
void remove_entry(const std::filesystem::path& esp, const std::string& version);

/// Whether the trial of `version` used up its tries, by either loader's count (only the loader
/// that ran counted).
bool trial_exhausted(const std::filesystem::path& esp, const std::string& version);

/// grub.cfg for `entries` (systemd-boot's order): a trial entry (one with a counter) is booted
/// while GRUB's environment block still has tries for it, each boot saving one less; then the
/// newest blessed entry.
std::string render_grub_config(const std::vector<LoaderEntry>& entries);

/// GRUB's 1024-byte environment block with `values` (name=value lines), '#' padded.
std::string render_grubenv(const std::vector<std::pair<std::string, std::string>>& values);

/// The value of `name` in a GRUB environment block ("" when absent).
std::string grubenv_value(const std::string& block, const std::string& name);

}  // namespace kiln::update
