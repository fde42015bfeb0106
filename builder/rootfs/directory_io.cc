#include "builder/rootfs/directory_io.h"

#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "builder/util/error.h"
#include "builder/util/files.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

std::vector<std::pair<std::string, std::string>> read_xattrs(const fs::path& path) {
  std::vector<std::pair<std::string, std::string>> out;
  ssize_t size = ::llistxattr(path.c_str(), nullptr, 0);
  if (size <= 0) return out;
  std::string names(size_t(size), '\0');
  size = ::llistxattr(path.c_str(), names.data(), names.size());
  for (size_t start = 0; size > 0 && start < size_t(size);) {
    std::string name(names.c_str() + start);
    start += name.size() + 1;
    ssize_t length = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (length < 0) continue;
    std::string value(size_t(length), '\0');
    length = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (length >= 0) out.emplace_back(name, value.substr(0, size_t(length)));
  }
  return out;
}

}  // namespace

void read_directory(const fs::path& root, RootTree& tree) {
  std::vector<fs::path> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    paths.push_back(it->path());
  }
  if (ec) throw Error("cannot read " + root.string() + ": " + ec.message());
  std::sort(paths.begin(), paths.end());
  std::map<std::pair<dev_t, ino_t>, std::string> first_link;
  for (const auto& path : paths) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
      throw Error("cannot stat " + path.string() + ": " + std::strerror(errno));
    std::string name = path.lexically_relative(root).string();
    TreeNode node;
    node.mode = st.st_mode & 07777;
    node.uid = st.st_uid;
    node.gid = st.st_gid;
    if (S_ISREG(st.st_mode)) {
      if (st.st_nlink > 1) {
        auto [it, first] = first_link.emplace(std::pair{st.st_dev, st.st_ino}, name);
        if (!first) {
          node.type = TreeNode::Type::hardlink;
          node.target = it->second;
          tree.put(name, std::move(node));
          continue;
        }
      }
      node.type = TreeNode::Type::file;
      node.data = read_file(path);
    } else if (S_ISDIR(st.st_mode)) {
      node.type = TreeNode::Type::directory;
    } else if (S_ISLNK(st.st_mode)) {
      node.type = TreeNode::Type::symlink;
      node.target = fs::read_symlink(path).string();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      node.type = S_ISCHR(st.st_mode) ? TreeNode::Type::char_device : TreeNode::Type::block_device;
      node.rdev = st.st_rdev;
    } else if (S_ISFIFO(st.st_mode)) {
      node.type = TreeNode::Type::fifo;
    } else {
      continue;  // sockets do not belong in an image
    }
    if (node.type != TreeNode::Type::symlink) node.xattrs = read_xattrs(path);
    tree.put(name, std::move(node));
  }
}

}  // namespace kiln
