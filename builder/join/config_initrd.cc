#include "builder/join/config_initrd.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "builder/join/network_config.h"
#include "builder/join/networkd_files.h"
#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

void add_entry(archive* out, const std::string& path, mode_t type, mode_t mode,
               const std::string& data) {
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(),
                                                                      archive_entry_free);
  archive_entry_set_pathname(entry.get(), path.c_str());
  archive_entry_set_filetype(entry.get(), type);
  archive_entry_set_perm(entry.get(), mode);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
  // Fixed times: the same config gives the same bytes.
  archive_entry_set_mtime(entry.get(), 0, 0);
  if (archive_write_header(out, entry.get()) != ARCHIVE_OK ||
      (!data.empty() &&
       archive_write_data(out, data.data(), data.size()) != static_cast<la_ssize_t>(data.size())))
    throw Error(std::string("cannot write the join initrd: ") + archive_error_string(out));
}

}  // namespace

void write_join_initrd(const JoinConfig& config, const fs::path& out,
                       const std::optional<std::string>& network) {
  const std::string yaml = render_join_config(config);

  // Created exclusively and 0600 under an unpredictable name: the token never passes through
  // a file another user can read or a symlink planted beside `out`.
  AtomicFile file(out);
  {
    std::unique_ptr<archive, decltype(&archive_write_free)> writer(archive_write_new(),
                                                                   archive_write_free);
    archive_write_set_format_cpio_newc(writer.get());
    archive_write_add_filter_none(writer.get());
    if (archive_write_open_fd(writer.get(), file.fd()) != ARCHIVE_OK)
      throw Error("cannot create " + out.string() + ": " + archive_error_string(writer.get()));
    add_entry(writer.get(), "kiln", AE_IFDIR, 0700, "");
    add_entry(writer.get(), "kiln/join.yaml", AE_IFREG, 0600, yaml);
    if (network) {
      // The source for the booted root's kiln-network.service (kiln-netroot keeps it in /run),
      // and the initrd's own networkd files, so the root can be fetched without DHCP.
      add_entry(writer.get(), "kiln/network.yaml", AE_IFREG, 0644, *network);
      for (const char* dir : {"etc", "etc/systemd", "etc/systemd/network"})
        add_entry(writer.get(), dir, AE_IFDIR, 0755, "");
      for (const auto& [name, content] :
           networkd_files(parse_network_config(*network, "network.yaml")))
        add_entry(writer.get(), "etc/systemd/network/" + name, AE_IFREG, 0644, content);
    }
    if (archive_write_close(writer.get()) != ARCHIVE_OK)
      throw Error("cannot write " + out.string() + ": " + archive_error_string(writer.get()));
  }
  file.commit(0600);
}

}  // namespace kiln
