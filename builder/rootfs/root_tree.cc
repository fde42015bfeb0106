#include "builder/rootfs/root_tree.h"

#include "builder/util/error.h"

namespace kiln {

std::string RootTree::normalise(std::string_view path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(i, end - i);
    if (!part.empty() && part != ".") {
      if (part == "..") throw Error("path '" + std::string(path) + "' must not contain '..'");
      if (!out.empty()) out += '/';
      out += part;
    }
    i = end + 1;
  }
  return out;
}

void RootTree::ensure_parents(const std::string& path) {
  for (size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string parent = path.substr(0, slash);
    auto it = nodes_.find(parent);
    if (it == nodes_.end()) {
      TreeNode dir;
      dir.type = TreeNode::Type::directory;
      dir.mode = 0755;
      nodes_.emplace(parent, std::move(dir));
    } else if (it->second.type == TreeNode::Type::symlink) {
      throw Error("cannot write below '/" + path + "': '/" + parent +
                  "' is a symlink in the image");
    }
  }
}

void RootTree::detach_hardlinks_to(const std::string& path) {
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return;
  for (auto& [name, node] : nodes_) {
    if (node.type == TreeNode::Type::hardlink && node.target == path) {
      node = it->second;
    }
  }
}

void RootTree::put(std::string_view path, TreeNode node) {
  std::string key = normalise(path);
  if (key.empty()) return;  // the root itself is implied
  ensure_parents(key);
  detach_hardlinks_to(key);
  nodes_[key] = std::move(node);
}

void RootTree::write_file(std::string_view path, std::string content, unsigned mode, unsigned uid,
                          unsigned gid) {
  TreeNode node;
  node.type = TreeNode::Type::file;
  node.mode = mode;
  node.uid = uid;
  node.gid = gid;
  node.data = std::move(content);
  put(path, std::move(node));
}

void RootTree::make_directory(std::string_view path, unsigned mode, unsigned uid, unsigned gid) {
  TreeNode node;
  node.type = TreeNode::Type::directory;
  node.mode = mode;
  node.uid = uid;
  node.gid = gid;
  put(path, std::move(node));
}

void RootTree::make_symlink(std::string_view path, std::string target) {
  TreeNode node;
  node.type = TreeNode::Type::symlink;
  node.mode = 0777;
  node.target = std::move(target);
  put(path, std::move(node));
}

void RootTree::remove(std::string_view path) {
  std::string key = normalise(path);
  detach_hardlinks_to(key);
  nodes_.erase(key);
}

void RootTree::remove_tree(std::string_view path) {
  std::string key = normalise(path);
  std::string prefix = key + "/";
  for (auto it = nodes_.lower_bound(prefix);
       it != nodes_.end() && it->first.rfind(prefix, 0) == 0;) {
    it = nodes_.erase(it);
  }
  remove(key);
}

const TreeNode* RootTree::find(std::string_view path) const {
  auto it = nodes_.find(normalise(path));
  return it == nodes_.end() ? nullptr : &it->second;
}

const std::string& RootTree::read_file(std::string_view path) const {
  const TreeNode* node = find(path);
  if (!node || node->type != TreeNode::Type::file)
    throw Error("the image has no file /" + normalise(path));
  return node->data;
}

}  // namespace kiln
