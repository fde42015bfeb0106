#include "builder/rootfs/tar_io.h"

#include <archive.h>
#include <archive_entry.h>

#include <catch2/catch.hpp>

#include "builder/rootfs/root_tree.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "support/temp_dir.h"

using kiln::RootTree;
using kiln::TreeNode;

namespace {

struct Listed {
  std::string path;
  long long mtime;
  std::string hardlink;
};

std::vector<Listed> list_tar(const std::filesystem::path& path) {
  archive* reader = archive_read_new();
  archive_read_support_format_all(reader);
  REQUIRE(archive_read_open_filename(reader, path.c_str(), 10240) == ARCHIVE_OK);
  std::vector<Listed> out;
  archive_entry* entry;
  while (archive_read_next_header(reader, &entry) == ARCHIVE_OK) {
    const char* link = archive_entry_hardlink(entry);
    out.push_back({archive_entry_pathname(entry), archive_entry_mtime(entry), link ? link : ""});
  }
  archive_read_free(reader);
  return out;
}

}  // namespace

TEST_CASE("tar output is sorted, stamped with the epoch and independent of insertion order") {
  kiln::test::TempDir dir;
  RootTree forward, backward;
  forward.write_file("/usr/bin/kubelet", "elf", 0755);
  forward.write_file("/etc/crictl.yaml", "x");
  forward.make_symlink("/etc/alternatives/iptables", "/usr/sbin/iptables-nft");
  backward.make_symlink("/etc/alternatives/iptables", "/usr/sbin/iptables-nft");
  backward.write_file("/etc/crictl.yaml", "x");
  backward.write_file("/usr/bin/kubelet", "elf", 0755);
  std::string digest = kiln::write_tar(forward, dir.path() / "a.tar", 1700000000);
  CHECK(digest == kiln::sha256_file(dir.path() / "a.tar"));
  kiln::write_tar(backward, dir.path() / "b.tar", 1700000000);
  CHECK(kiln::sha256_file(dir.path() / "a.tar") == kiln::sha256_file(dir.path() / "b.tar"));

  auto entries = list_tar(dir.path() / "a.tar");
  std::vector<std::string> paths;
  for (const auto& e : entries) {
    paths.push_back(e.path);
    CHECK(e.mtime == 1700000000);
  }
  CHECK(paths == std::vector<std::string>{"./etc/", "./etc/alternatives/",
                                          "./etc/alternatives/iptables", "./etc/crictl.yaml",
                                          "./usr/", "./usr/bin/", "./usr/bin/kubelet"});
}

TEST_CASE("hardlink groups are led by their first path in sorted order") {
  kiln::test::TempDir dir;
  RootTree tree;
  tree.write_file("/usr/bin/perl", "perl binary", 0755);
  TreeNode link;
  link.type = TreeNode::Type::hardlink;
  link.target = "usr/bin/perl";
  tree.put("/usr/bin/perl5.40", link);
  tree.put("/usr/bin/a-perl", link);  // sorts before the original
  kiln::write_tar(tree, dir.path() / "links.tar", 0);

  RootTree back;
  kiln::read_tar(dir.path() / "links.tar", back);
  CHECK(back.read_file("/usr/bin/a-perl") == "perl binary");
  CHECK(back.find("/usr/bin/perl")->type == TreeNode::Type::hardlink);
  CHECK(back.find("/usr/bin/perl")->target == "usr/bin/a-perl");
  CHECK(back.find("/usr/bin/perl5.40")->target == "usr/bin/a-perl");
}

TEST_CASE("replacing a hardlinked file keeps the other names' old content") {
  RootTree tree;
  tree.write_file("/usr/bin/gunzip", "gunzip", 0755);
  TreeNode link;
  link.type = TreeNode::Type::hardlink;
  link.target = "usr/bin/gunzip";
  tree.put("/usr/bin/zcat", link);
  tree.write_file("/usr/bin/gunzip", "replaced", 0755);
  CHECK(tree.read_file("/usr/bin/zcat") == "gunzip");
}

TEST_CASE("root tree paths are normalised and parents created") {
  RootTree tree;
  tree.write_file("./etc//kubernetes/manifests/x.yaml", "x");
  CHECK(tree.find("etc/kubernetes")->type == TreeNode::Type::directory);
  CHECK(tree.find("/etc/kubernetes/manifests")->mode == 0755);
  CHECK(tree.contains("/etc/kubernetes/manifests/x.yaml"));
  CHECK_THROWS_WITH(tree.write_file("/etc/../root/x", "x"),
                    "path '/etc/../root/x' must not contain '..'");
  tree.make_symlink("/bin", "usr/bin");
  CHECK_THROWS_WITH(tree.write_file("/bin/kubelet", "x"),
                    "cannot write below '/bin/kubelet': '/bin' is a symlink in the image");
}

TEST_CASE("overlays keep their symlinks as symlinks at their own path") {
  kiln::test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "overlay/etc/systemd/system");
  kiln::write_file_atomic(dir.path() / "overlay/etc/motd", "hi\n", 0640);
  std::filesystem::create_symlink("/dev/null",
                                  dir.path() / "overlay/etc/systemd/system/apt-daily.timer");
  RootTree tree;
  kiln::add_host_tree(tree, dir.path() / "overlay", "/");
  CHECK(tree.find("/etc/systemd/system/apt-daily.timer")->type == TreeNode::Type::symlink);
  CHECK(tree.find("/etc/systemd/system/apt-daily.timer")->target == "/dev/null");
  CHECK(tree.find("/etc/motd")->mode == 0640);
  CHECK_FALSE(tree.contains("/dev/null"));
}
