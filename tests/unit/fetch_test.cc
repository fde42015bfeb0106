#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "builder/fetch/cache.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/sha256.h"
#include "support/http_server.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using kiln::Cache;
using kiln::test::HttpServer;
using kiln::test::TempDir;

namespace {
std::string big_body() {
  std::string body;
  for (int i = 0; i < 200000; ++i) body += char('a' + i % 26);
  return body;
}

size_t count_files(const fs::path& dir) {
  size_t count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) count += entry.is_regular_file();
  return count;
}
}  // namespace

TEST_CASE("a verified download lands in the content-addressed cache") {
  HttpServer server;
  TempDir dir;
  server.serve("/kubelet", big_body());
  Cache cache(dir.path(), false);
  fs::path blob = cache.fetch(server.url("/kubelet"), kiln::sha256_hex(big_body()), "kubelet");
  CHECK(blob == cache.blob_path(kiln::sha256_hex(big_body())));
  CHECK(kiln::read_file(blob) == big_body());
  // A second fetch is served from the cache without touching the network.
  cache.fetch(server.url("/kubelet"), kiln::sha256_hex(big_body()), "kubelet");
  CHECK(server.requests("/kubelet") == 1);
}

TEST_CASE("a checksum mismatch names the URL and both digests and caches nothing") {
  HttpServer server;
  TempDir dir;
  server.serve("/kubeadm", "tampered binary");
  Cache cache(dir.path(), false);
  std::string expected = kiln::sha256_hex("the real binary");
  try {
    cache.fetch(server.url("/kubeadm"), expected, "kubeadm");
    FAIL("expected a checksum error");
  } catch (const kiln::Error& e) {
    std::string message = e.what();
    CHECK(message == "checksum mismatch for " + server.url("/kubeadm") + "\n  expected sha256: " +
                         expected + "\n  actual sha256:   " + kiln::sha256_hex("tampered binary"));
  }
  CHECK_FALSE(fs::exists(cache.blob_path(expected)));
  CHECK(count_files(dir.path() / "blobs") == 0);
  CHECK(count_files(dir.path() / "partial") == 0);
}

TEST_CASE("a download interrupted mid-body resumes with a range request") {
  HttpServer server;
  TempDir dir;
  std::string body = big_body();
  server.serve("/crictl.tar.gz", body, /*drop_first_requests=*/1);
  Cache cache(dir.path(), false);
  fs::path blob = cache.fetch(server.url("/crictl.tar.gz"), kiln::sha256_hex(body), "crictl");
  CHECK(kiln::read_file(blob) == body);
  CHECK(server.requests("/crictl.tar.gz") == 2);
  CHECK(server.last_range("/crictl.tar.gz") == std::to_string(body.size() / 2) + "-");
}

TEST_CASE("a server that keeps dropping gives a clear error and leaves the cache valid") {
  HttpServer server;
  TempDir dir;
  std::string body = big_body();
  server.serve("/flaky", body, /*drop_first_requests=*/100);
  Cache cache(dir.path(), false);
  std::string digest = kiln::sha256_hex(body);
  try {
    cache.fetch(server.url("/flaky"), digest, "flaky");
    FAIL("expected a download error");
  } catch (const kiln::Error& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("download of " + server.url("/flaky") + " failed: "));
    CHECK_THAT(e.what(), Catch::Contains("bytes kept for resuming"));
  }
  CHECK_FALSE(fs::exists(cache.blob_path(digest)));
  // Once the server behaves, the next build picks up where the last one stopped.
  server.serve("/flaky", body, 0);
  CHECK(kiln::read_file(cache.fetch(server.url("/flaky"), digest, "flaky")) == body);
  CHECK_FALSE(server.last_range("/flaky").empty());
}

TEST_CASE("an offline cache miss fails clearly without using the network") {
  HttpServer server;
  TempDir dir;
  server.serve("/kubelet", "binary");
  Cache cache(dir.path(), /*offline=*/true);
  try {
    cache.fetch(server.url("/kubelet"), kiln::sha256_hex("binary"), "kubelet");
    FAIL("expected an offline miss");
  } catch (const kiln::OfflineMiss& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("--offline: kubelet is not in the cache (" +
                                           server.url("/kubelet")));
  }
  CHECK(server.requests("/kubelet") == 0);
  // The same cache, filled online, then serves offline.
  Cache online(dir.path(), false);
  online.fetch(server.url("/kubelet"), kiln::sha256_hex("binary"), "kubelet");
  CHECK(kiln::read_file(cache.fetch(server.url("/kubelet"), kiln::sha256_hex("binary"),
                                    "kubelet")) == "binary");
}

TEST_CASE("published .sha256 files are read and remembered for offline builds") {
  HttpServer server;
  TempDir dir;
  std::string digest = kiln::sha256_hex("binary");
  server.serve("/kubelet.sha256", digest + "  kubelet\n");
  Cache cache(dir.path(), false);
  CHECK(cache.fetch_published_digest(server.url("/kubelet.sha256")) == digest);
  Cache offline(dir.path(), true);
  CHECK(offline.fetch_published_digest(server.url("/kubelet.sha256")) == digest);
  CHECK(server.requests("/kubelet.sha256") == 1);
}

TEST_CASE("a missing artifact reports the HTTP status") {
  HttpServer server;
  TempDir dir;
  Cache cache(dir.path(), false);
  CHECK_THROWS_WITH(cache.fetch(server.url("/nope"), kiln::sha256_hex("x"), "nope"),
                    "download of " + server.url("/nope") + " failed: HTTP status 404");
}

TEST_CASE("concurrent builds fetching one artifact download it once") {
  HttpServer server;
  TempDir dir;
  std::string body = big_body();
  server.serve("/shared", body);
  std::string digest = kiln::sha256_hex(body);
  auto fetch = [&] {
    Cache cache(dir.path(), false);
    return kiln::read_file(cache.fetch(server.url("/shared"), digest, "shared"));
  };
  std::string a, b;
  std::thread first([&] { a = fetch(); });
  std::thread second([&] { b = fetch(); });
  first.join();
  second.join();
  CHECK(a == body);
  CHECK(b == body);
  CHECK(server.requests("/shared") == 1);
}
