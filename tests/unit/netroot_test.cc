// kiln-netroot's pieces that run in a netbooted node's initrd: kernel arguments, its HTTP
// download (retries, resumption with Range) and the join config initrd it hands on.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <map>

#include "builder/join/config_initrd.h"
#include "builder/join/join_config.h"
#include "builder/util/files.h"
#include "firstboot/disk_install.h"
#include "firstboot/kernel_cmdline.h"
#include "firstboot/netroot/http_download.h"
#include "support/http_server.h"
#include "support/join_config_text.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::firstboot::download_with_retries;
using kiln::firstboot::kernel_argument;
using kiln::firstboot::parse_http_url;

namespace {

std::map<std::string, std::string> read_cpio(const fs::path& file) {
  std::map<std::string, std::string> entries;
  archive* reader = archive_read_new();
  archive_read_support_format_cpio(reader);
  REQUIRE(archive_read_open_filename(reader, file.c_str(), 1 << 16) == ARCHIVE_OK);
  archive_entry* entry;
  while (archive_read_next_header(reader, &entry) == ARCHIVE_OK) {
    std::string data(archive_entry_size(entry), '\0');
    archive_read_data(reader, data.data(), data.size());
    entries[archive_entry_pathname(entry)] = std::to_string(archive_entry_perm(entry)) + ":" + data;
  }
  archive_read_free(reader);
  return entries;
}

}  // namespace

TEST_CASE("kernel arguments are found by exact name, the last one winning", "[netroot]") {
  std::string cmdline =
      "BOOT_IMAGE=/vmlinuz kiln.root_url=http://a/root.img xkiln.roothash=bad "
      "kiln.roothash=abc kiln.roothash=def quiet";
  CHECK(kernel_argument(cmdline, "kiln.root_url") == "http://a/root.img");
  CHECK(kernel_argument(cmdline, "kiln.roothash") == "def");
  CHECK_FALSE(kernel_argument(cmdline, "kiln.join_url"));
  CHECK_FALSE(kernel_argument(cmdline, "quiet"));  // a flag, not name=value
}

TEST_CASE("netroot URLs: http with host, IPv6 literal and port; https and junk refused",
          "[netroot]") {
  auto url = parse_http_url("http://10.0.2.2:8080//pxe/root.img");
  CHECK(url.host == "10.0.2.2");
  CHECK(url.port == "8080");
  CHECK(url.path == "//pxe/root.img");
  auto v6 = parse_http_url("http://[fd00::1]/root.img");
  CHECK(v6.host == "fd00::1");
  CHECK(v6.port == "80");
  CHECK_THROWS_WITH(parse_http_url("https://boot/root.img"),
                    Catch::Contains("only http:// URLs") && Catch::Contains("root hash"));
  CHECK_THROWS_WITH(parse_http_url("ftp://boot/root.img"), Catch::Contains("malformed URL"));
}

TEST_CASE("the root image download resumes with a Range request after a broken transfer",
          "[netroot]") {
  kiln::test::TempDir dir;
  kiln::test::HttpServer server;
  std::string image(3 << 20, '\0');
  for (std::size_t i = 0; i < image.size(); ++i) image[i] = static_cast<char>(i * 131 % 251);
  server.serve("/root.img", image, /*drop_first_requests=*/1);
  std::vector<std::uint64_t> prepared;
  std::vector<std::string> said;
  auto size = download_with_retries(
      server.url("/root.img"), dir.path() / "root.img",
      [&](std::uint64_t total) { prepared.push_back(total); },
      [&](const std::string& line) { said.push_back(line); });
  CHECK(size == image.size());
  CHECK(kiln::read_file(dir.path() / "root.img") == image);
  CHECK(prepared == std::vector<std::uint64_t>{image.size()});  // once, with the full size
  CHECK(server.requests("/root.img") == 2);
  CHECK(server.last_range("/root.img") == std::to_string(image.size() / 2) + "-");
  bool reported_failure = false;
  for (const auto& line : said)
    reported_failure |= line.find("attempt 1 failed: the transfer broke off") != std::string::npos;
  CHECK(reported_failure);
}

TEST_CASE("a failure to prepare the root image's storage is not retried", "[netroot]") {
  kiln::test::TempDir dir;
  kiln::test::HttpServer server;
  server.serve("/root.img", "data");
  CHECK_THROWS_WITH(
      download_with_retries(
          server.url("/root.img"), dir.path() / "root.img",
          [](std::uint64_t) { throw std::runtime_error("no tmpfs"); }, [](const std::string&) {}),
      "no tmpfs");
  CHECK(server.requests("/root.img") == 1);
}

TEST_CASE("a join config initrd holds /kiln/join.yaml, private, and nothing else",
          "[netroot][join]") {
  kiln::test::TempDir dir;
  kiln::JoinConfig config =
      kiln::parse_join_config(kiln::test::join_config_text("2099-01-01T00:00:00Z"), "join.yaml");
  kiln::write_join_initrd(config, dir.path() / "join.img");
  struct stat st {};
  REQUIRE(::stat((dir.path() / "join.img").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto entries = read_cpio(dir.path() / "join.img");
  REQUIRE(entries.size() == 2);
  CHECK(entries.count("kiln"));
  CHECK(entries["kiln/join.yaml"] == "384:" + kiln::render_join_config(config));  // 0600
  // The same config gives the same bytes.
  kiln::write_join_initrd(config, dir.path() / "again.img");
  CHECK(kiln::read_file(dir.path() / "join.img") == kiln::read_file(dir.path() / "again.img"));
}

TEST_CASE("a join config initrd with a network config carries it and the initrd's networkd files",
          "[netroot][network]") {
  kiln::test::TempDir dir;
  kiln::JoinConfig config =
      kiln::parse_join_config(kiln::test::join_config_text("2099-01-01T00:00:00Z"), "join.yaml");
  const std::string network =
      "network: {version: 2, ethernets: {eth0: {addresses: [10.9.0.5/24]}}}\n";
  kiln::write_join_initrd(config, dir.path() / "join.img", network);
  auto entries = read_cpio(dir.path() / "join.img");
  CHECK(entries["kiln/network.yaml"] == "420:" + network);  // 0644
  REQUIRE(entries.count("etc/systemd/network/10-kiln-eth0.network"));
  CHECK_THAT(entries["etc/systemd/network/10-kiln-eth0.network"],
             Catch::Contains("Name=eth0\nKind=!*\n") && Catch::Contains("Address=10.9.0.5/24\n"));
}

TEST_CASE(
    "pxe.install picks the first disk whose first MiB is zero, never a virtual, "
    "removable or read-only one",
    "[netroot]") {
  kiln::test::TempDir dir;
  fs::path sys = dir.path() / "sys", dev = dir.path() / "dev";
  fs::create_directories(dev);
  // name, removable, ro, first MiB zero
  struct Disk {
    const char* name;
    const char* removable;
    const char* ro;
    bool zero;
  };
  for (const Disk& d :
       {Disk{"loop0", "0", "0", true}, Disk{"sda", "0", "0", false}, Disk{"sdb", "1", "0", true},
        Disk{"sdc", "0", "1", true}, Disk{"sr0", "1", "0", true}, Disk{"vdb", "0", "0", true},
        Disk{"vdc", "0", "0", true}}) {
    fs::create_directories(sys / d.name);
    kiln::write_file_atomic(sys / d.name / "removable", std::string(d.removable) + "\n");
    kiln::write_file_atomic(sys / d.name / "ro", std::string(d.ro) + "\n");
    kiln::write_file_atomic(sys / d.name / "size", "8388608\n");
    std::string head(1 << 20, '\0');
    if (!d.zero) head[510] = '\x55';  // an MBR signature: something is on it
    kiln::write_file_atomic(dev / d.name, head);
  }
  CHECK(kiln::firstboot::first_empty_disk(sys.string(), dev.string()) == "vdb");
  fs::remove(dev / "vdb");  // unreadable: not chosen
  CHECK(kiln::firstboot::first_empty_disk(sys.string(), dev.string()) == "vdc");
  kiln::write_file_atomic(dev / "vdc", std::string(4096, '\0'));  // shorter than a MiB
  CHECK_FALSE(kiln::firstboot::first_empty_disk(sys.string(), dev.string()));
}

TEST_CASE("netroot response heads: status, lengths and ranges are read with bounds", "[netroot]") {
  using kiln::firstboot::parse_response_head;
  auto head = parse_response_head(
      "HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 100-199/200\r\n"
      "Content-Length:  100 \r\nConnection: close");
  CHECK(head.status == 206);
  CHECK(head.content_length == 100u);
  CHECK(head.range_start == 100u);
  CHECK(head.range_total == 200u);
  CHECK(parse_response_head("HTTP/1.0 404 Not Found").status == 404);
  CHECK_FALSE(parse_response_head("HTTP/1.1 200 OK").content_length);
  // 60,000 digits once overflowed the parser's stack; 2^64 threw out of the retry loop.
  CHECK_THROWS_AS(
      parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: " + std::string(60000, '9')),
      std::runtime_error);
  CHECK_THROWS_WITH(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616"),
                    "malformed Content-Length in the server's response");
  CHECK_THROWS_AS(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: -1"), std::runtime_error);
  CHECK_THROWS_AS(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2"),
                  std::runtime_error);
  CHECK_THROWS_AS(parse_response_head("HTTP/1.1 206 OK\r\nContent-Range: bytes 9-1/5"),
                  std::runtime_error);
  CHECK_THROWS_AS(
      parse_response_head("HTTP/1.1 206 OK\r\nContent-Range: bytes 0-99999999999999999999/1"),
      std::runtime_error);
  CHECK_THROWS_AS(parse_response_head("HTTP/1.1 2000 OK"), std::runtime_error);
  CHECK_THROWS_AS(parse_response_head("SSH-2.0-OpenSSH"), std::runtime_error);
  CHECK_THROWS_AS(parse_response_head(std::string(60000, '1')), std::runtime_error);
}

TEST_CASE("netroot URLs are parsed without backtracking, whatever their length", "[netroot]") {
  CHECK(parse_http_url("http://boot/" + std::string(60000, 'a')).path.size() == 60001);
  CHECK(parse_http_url("http://boot").path == "/");
  CHECK_THROWS_WITH(parse_http_url("http://boot:" + std::string(60000, '8') + "/x"),
                    Catch::Contains("malformed URL"));
  CHECK_THROWS_WITH(parse_http_url("http://[" + std::string(60000, ':')),
                    Catch::Contains("malformed URL"));
  CHECK_THROWS_WITH(parse_http_url("http://boot/a b"), Catch::Contains("malformed URL"));
  CHECK_THROWS_WITH(parse_http_url("http://:80/x"), Catch::Contains("malformed URL"));
  CHECK_THROWS_WITH(parse_http_url("http://boot:/x"), Catch::Contains("malformed URL"));
}

namespace {

/// Stops download_with_retries (which otherwise retries for ever) after `attempts` failures.
struct AttemptLimit {
  int attempts;
  std::vector<std::string> said;
  void operator()(const std::string& line) {
    said.push_back(line);
    if (line.find("attempt " + std::to_string(attempts) + " failed") != std::string::npos)
      throw std::logic_error("gave up: " + line);
  }
};

}  // namespace

TEST_CASE("an unparsable Content-Length is one failed attempt, retried", "[netroot]") {
  kiln::test::TempDir dir;
  kiln::test::HttpServer server;
  server.serve_raw("/root.img", {"HTTP/1.1 200 OK\r\nContent-Length: " + std::string(60000, '9') +
                                     "\r\nConnection: close\r\n\r\nroot",
                                 "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                                 "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nroot"});
  AttemptLimit limit{3, {}};
  auto size = download_with_retries(
      server.url("/root.img"), dir.path() / "root.img", [](std::uint64_t) {}, std::ref(limit));
  CHECK(size == 4);
  CHECK(kiln::read_file(dir.path() / "root.img") == "root");
  REQUIRE(limit.said.size() >= 2);
  CHECK_THAT(limit.said[0], Catch::StartsWith("  attempt 1 failed: malformed Content-Length"));
  CHECK_THAT(limit.said[1], Catch::StartsWith("  attempt 2 failed: malformed Content-Length"));
}

TEST_CASE("a resumed download whose total is below what already arrived is refused", "[netroot]") {
  kiln::test::TempDir dir;
  kiln::test::HttpServer server;
  std::string image(100, 'x');
  server.serve_raw("/root.img",
                   {// half the promised bytes, then the connection ends
                    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + image.substr(0, 50),
                    // the rest, but claiming the whole is only 40 bytes
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 50-99/40\r\n"
                    "Content-Length: 50\r\n\r\n" +
                        image.substr(50),
                    // a total that changed between attempts
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 50-99/200\r\n"
                    "Content-Length: 50\r\n\r\n" +
                        image.substr(50),
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 50-99/100\r\n"
                    "Content-Length: 50\r\n\r\n" +
                        image.substr(50)});
  AttemptLimit limit{4, {}};
  auto size = download_with_retries(
      server.url("/root.img"), dir.path() / "root.img", [](std::uint64_t) {}, std::ref(limit));
  CHECK(size == 100);
  CHECK(kiln::read_file(dir.path() / "root.img") == image);
  CHECK(server.last_range("/root.img") == "50-");
  std::vector<std::string> failures;
  for (const auto& line : limit.said)
    if (line.find("failed") != std::string::npos) failures.push_back(line);
  REQUIRE(failures.size() == 3);
  CHECK_THAT(failures[0], Catch::Contains("broke off after 50 of 100 bytes"));
  CHECK_THAT(failures[1], Catch::Contains("malformed Content-Range"));
  CHECK_THAT(failures[2], Catch::Contains("does not fit the 50 bytes already received"));
}

TEST_CASE("digest arguments accept uppercase hex and come back lowercase", "[netroot]") {
  using kiln::firstboot::sha256_argument;
  const std::string lower(64, 'a'), upper(64, 'A');
  CHECK(sha256_argument("kiln.install_sha256=" + upper, "kiln.install_sha256") == lower);
  CHECK(sha256_argument("kiln.join_sha256=" + lower.substr(1) + "F quiet", "kiln.join_sha256") ==
        lower.substr(1) + "f");
  CHECK_FALSE(sha256_argument("quiet", "kiln.join_sha256"));
  CHECK_FALSE(sha256_argument("kiln.join_sha256=" + lower.substr(1), "kiln.join_sha256"));
  CHECK_FALSE(sha256_argument("kiln.join_sha256=" + lower + "0", "kiln.join_sha256"));
  CHECK_FALSE(sha256_argument("kiln.join_sha256=" + lower.substr(1) + "g", "kiln.join_sha256"));
}
