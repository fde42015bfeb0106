#include "builder/rootfs/tar_io.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;
using EntryPtr = std::unique_ptr<archive_entry, void (*)(archive_entry*)>;

ArchivePtr open_reader(const fs::path& path) {
  ArchivePtr reader(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_all(reader.get());
  if (archive_read_open_filename(reader.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
    throw Error("cannot open archive " + path.string() + ": " + archive_error_string(reader.get()));
  }
  return reader;
}

std::string read_data(archive* reader, const fs::path& path) {
  std::string data;
  const void* block;
  size_t size;
  la_int64_t offset;
  int status;
  while ((status = archive_read_data_block(reader, &block, &size, &offset)) == ARCHIVE_OK) {
    if (size_t(offset) > data.size()) data.resize(offset, '\0');  // sparse hole
    data.append(static_cast<const char*>(block), size);
  }
  if (status != ARCHIVE_EOF)
    throw Error("cannot read " + path.string() + ": " + archive_error_string(reader));
  return data;
}

TreeNode::Type type_of(archive_entry* entry) {
  switch (archive_entry_filetype(entry)) {
    case AE_IFDIR:
      return TreeNode::Type::directory;
    case AE_IFLNK:
      return TreeNode::Type::symlink;
    case AE_IFCHR:
      return TreeNode::Type::char_device;
    case AE_IFBLK:
      return TreeNode::Type::block_device;
    case AE_IFIFO:
      return TreeNode::Type::fifo;
    default:
      return TreeNode::Type::file;
  }
}

unsigned filetype_of(TreeNode::Type type) {
  switch (type) {
    case TreeNode::Type::directory:
      return AE_IFDIR;
    case TreeNode::Type::symlink:
      return AE_IFLNK;
    case TreeNode::Type::char_device:
      return AE_IFCHR;
    case TreeNode::Type::block_device:
      return AE_IFBLK;
    case TreeNode::Type::fifo:
      return AE_IFIFO;
    default:
      return AE_IFREG;
  }
}

}  // namespace

void read_tar(const fs::path& path, RootTree& tree) {
  ArchivePtr reader = open_reader(path);
  archive_entry* entry;
  int status;
  while ((status = archive_read_next_header(reader.get(), &entry)) == ARCHIVE_OK ||
         status == ARCHIVE_WARN) {
    TreeNode node;
    node.mode = archive_entry_perm(entry);
    node.uid = unsigned(archive_entry_uid(entry));
    node.gid = unsigned(archive_entry_gid(entry));
    if (const char* link = archive_entry_hardlink_utf8(entry)) {
      node.type = TreeNode::Type::hardlink;
      node.target = RootTree::normalise(link);
    } else {
      node.type = type_of(entry);
      if (node.type == TreeNode::Type::symlink) node.target = archive_entry_symlink_utf8(entry);
      if (node.type == TreeNode::Type::file) node.data = read_data(reader.get(), path);
      node.rdev = archive_entry_rdev(entry);
    }
    archive_entry_xattr_reset(entry);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
      node.xattrs.emplace_back(name, std::string(static_cast<const char*>(value), size));
    }
    tree.put(archive_entry_pathname_utf8(entry), std::move(node));
  }
  if (status != ARCHIVE_EOF) {
    throw Error("cannot read archive " + path.string() + ": " + archive_error_string(reader.get()));
  }
}

namespace {

/// libarchive output that writes to a file descriptor and hashes what it writes, so the
/// digest of a large tarball costs no second read.
struct HashingFile {
  int fd;
  Sha256 hasher;
};

la_ssize_t write_hashing(archive*, void* user, const void* buffer, size_t length) {
  auto* out = static_cast<HashingFile*>(user);
  const char* data = static_cast<const char*>(buffer);
  size_t left = length;
  while (left > 0) {
    ssize_t n = ::write(out->fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    data += n;
    left -= size_t(n);
  }
  out->hasher.update(std::string_view(static_cast<const char*>(buffer), length));
  return la_ssize_t(length);
}

}  // namespace

std::string write_tar(const RootTree& tree, const fs::path& path, long long epoch) {
  // Hardlink groups: the first path in sorted order carries the data, the rest link to it,
  // so extraction never meets a link before its target.
  std::map<std::string, std::string> leader_of;
  for (const auto& [name, node] : tree.nodes()) {
    if (node.type != TreeNode::Type::hardlink) continue;
    const TreeNode* target = tree.find(node.target);
    if (!target || target->type != TreeNode::Type::file) {
      throw Error("hardlink /" + name + " points to missing /" + node.target);
    }
    auto [it, inserted] = leader_of.emplace(node.target, std::min(node.target, name));
    if (!inserted) it->second = std::min(it->second, name);
  }

  fs::create_directories(path.parent_path());
  TempPath temp(temp_sibling(path));
  ArchivePtr writer(archive_write_new(), archive_write_free);
  archive_write_set_format_pax_restricted(writer.get());
  archive_write_set_bytes_in_last_block(writer.get(), 1);
  HashingFile output{::open(temp.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
                     {}};
  if (output.fd < 0)
    throw Error("cannot create " + temp.path().string() + ": " + std::strerror(errno));
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } close_fd{output.fd};
  if (archive_write_open2(writer.get(), &output, nullptr, write_hashing, nullptr, nullptr) !=
      ARCHIVE_OK) {
    throw Error("cannot create " + temp.path().string() + ": " +
                archive_error_string(writer.get()));
  }
  EntryPtr entry(archive_entry_new(), archive_entry_free);
  for (const auto& [name, node] : tree.nodes()) {
    archive_entry_clear(entry.get());
    const TreeNode* data_node = &node;
    std::string link_to;
    auto group = leader_of.find(node.type == TreeNode::Type::hardlink ? node.target : name);
    if (group != leader_of.end()) {
      data_node = tree.find(group->first);
      if (group->second != name) link_to = group->second;
    }
    bool is_dir = data_node->type == TreeNode::Type::directory;
    archive_entry_set_pathname_utf8(entry.get(), ("./" + name + (is_dir ? "/" : "")).c_str());
    archive_entry_set_filetype(entry.get(), filetype_of(data_node->type));
    archive_entry_set_perm(entry.get(), data_node->mode);
    archive_entry_set_uid(entry.get(), data_node->uid);
    archive_entry_set_gid(entry.get(), data_node->gid);
    archive_entry_set_mtime(entry.get(), epoch, 0);
    if (data_node->type == TreeNode::Type::symlink)
      archive_entry_set_symlink_utf8(entry.get(), data_node->target.c_str());
    if (data_node->type == TreeNode::Type::char_device ||
        data_node->type == TreeNode::Type::block_device) {
      archive_entry_set_rdev(entry.get(), data_node->rdev);
    }
    for (const auto& [key, value] : data_node->xattrs) {
      archive_entry_xattr_add_entry(entry.get(), key.c_str(), value.data(), value.size());
    }
    bool carries_data = data_node->type == TreeNode::Type::file && link_to.empty();
    if (!link_to.empty()) {
      archive_entry_set_hardlink_utf8(entry.get(), ("./" + link_to).c_str());
      archive_entry_set_size(entry.get(), 0);
    } else {
      archive_entry_set_size(entry.get(), carries_data ? data_node->data.size() : 0);
    }
    if (archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK) {
      throw Error("cannot write /" + name + " to " + path.string() + ": " +
                  archive_error_string(writer.get()));
    }
    if (carries_data && !data_node->data.empty() &&
        archive_write_data(writer.get(), data_node->data.data(), data_node->data.size()) < 0) {
      throw Error("cannot write /" + name + " to " + path.string() + ": " +
                  archive_error_string(writer.get()));
    }
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK) {
    throw Error("cannot finish " + path.string() + ": " + archive_error_string(writer.get()));
  }
  if (::fsync(output.fd) != 0)
    throw Error("cannot write " + temp.path().string() + ": " + std::strerror(errno));
  fs::rename(temp.path(), path);
  temp.release();
  fsync_path(path.parent_path());
  return output.hasher.hex();
}

void add_host_tree(RootTree& tree, const fs::path& source, const std::string& destination) {
  std::vector<fs::path> entries;
  for (const auto& entry : fs::recursive_directory_iterator(source))
    entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end());
  std::string base = RootTree::normalise(destination);
  for (const auto& path : entries) {
    std::string target =
        (base.empty() ? "" : base + "/") + path.lexically_relative(source).string();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) throw Error("cannot stat " + path.string());
    if (S_ISLNK(st.st_mode)) {
      tree.make_symlink(target, fs::read_symlink(path).string());
    } else if (S_ISDIR(st.st_mode)) {
      // An existing directory keeps its owner and mode; overlays add content, not policy.
      const TreeNode* existing = tree.find(target);
      if (!existing || existing->type != TreeNode::Type::directory)
        tree.make_directory(target, st.st_mode & 07777);
    } else if (S_ISREG(st.st_mode)) {
      tree.write_file(target, read_file(path), st.st_mode & 07777);
    } else {
      throw Error("overlay entry " + path.string() + " is not a file, directory or symlink");
    }
  }
}

std::string read_tar_member(const fs::path& path, const std::string& member) {
  ArchivePtr reader = open_reader(path);
  archive_entry* entry;
  while (archive_read_next_header(reader.get(), &entry) == ARCHIVE_OK) {
    if (RootTree::normalise(archive_entry_pathname(entry)) == RootTree::normalise(member)) {
      return read_data(reader.get(), path);
    }
  }
  throw Error("archive " + path.string() + " has no member '" + member + "'");
}

}  // namespace kiln
