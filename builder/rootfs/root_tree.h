#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln {

/// One entry of a root filesystem: what a tar header plus its data describes.
struct TreeNode {
  enum class Type { file, directory, symlink, hardlink, char_device, block_device, fifo };
  Type type = Type::file;
  unsigned mode = 0644;  ///< permission bits only
  unsigned uid = 0, gid = 0;
  std::string data;    ///< file content
  std::string target;  ///< symlink target, or hardlink target path (tree-relative)
  unsigned long rdev = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

/// An in-memory root filesystem keyed by normalised path ("etc/passwd"). Stages edit it
/// through these few calls, so node-config writers can be tested without a real bootstrap.
class RootTree {
 public:
  /// "/etc/x", "./etc/x" and "etc/x/" all become "etc/x".
  static std::string normalise(std::string_view path);

  /// Adds or replaces a regular file, creating missing parent directories (0755 root).
  void write_file(std::string_view path, std::string content, unsigned mode = 0644,
                  unsigned uid = 0, unsigned gid = 0);
  void make_directory(std::string_view path, unsigned mode = 0755, unsigned uid = 0,
                      unsigned gid = 0);
  void make_symlink(std::string_view path, std::string target);
  /// Inserts a node exactly as given (used when reading archives).
  void put(std::string_view path, TreeNode node);
  void remove(std::string_view path);
  /// Removes a path and everything under it.
  void remove_tree(std::string_view path);

  const TreeNode* find(std::string_view path) const;
  bool contains(std::string_view path) const { return find(path) != nullptr; }
  /// Content of a regular file; throws when absent or not a file.
  const std::string& read_file(std::string_view path) const;

  const std::map<std::string, TreeNode>& nodes() const { return nodes_; }
  std::map<std::string, TreeNode>& mutable_nodes() { return nodes_; }

 private:
  void ensure_parents(const std::string& path);
  /// Gives hardlinks to `path` their own copy of its data before `path` changes.
  void detach_hardlinks_to(const std::string& path);

  std::map<std::string, TreeNode> nodes_;
};

}  // namespace kiln
