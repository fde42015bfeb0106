// The first-boot agent's HTTP client against servers that lie: absurd chunk sizes, bodies
// past the cap, answers trickled past the deadline. Each must end as an ordinary failure
// (Response::error from request(), kiln::Error from the parser), not a hang or a crash.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "builder/util/error.h"
#include "firstboot/https_client.h"
#include "support/http_server.h"

using kiln::firstboot::parse_http_response;

namespace {

kiln::http::Response get(const std::string& url, long timeout_seconds = 10) {
  kiln::http::Request call;
  call.url = url;
  call.timeout_seconds = timeout_seconds;
  return kiln::firstboot::request(call);
}

}  // namespace

TEST_CASE("the agent parses Content-Length, chunked and close-delimited responses") {
  auto plain = parse_http_response("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", 100);
  CHECK(plain.status == 200);
  CHECK(plain.body == "hello");
  auto chunked = parse_http_response(
      "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n",
      100);
  CHECK(chunked.status == 201);
  CHECK(chunked.body == "hello, world!!!");
  CHECK(parse_http_response("HTTP/1.0 404 Not Found\r\n\r\nno such", 100).body == "no such");
}

TEST_CASE("malformed or oversized responses are kiln errors naming the problem") {
  auto parse = [](const std::string& raw) { return parse_http_response(raw, 1000); };
  const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK_THROWS_MATCHES(parse(chunked + "ffffffffffffffff\r\nabc\r\n0\r\n\r\n"), kiln::Error,
                       Catch::Message("the response body is larger than the 1000 bytes this "
                                      "request accepts"));
  CHECK_THROWS_WITH(parse(chunked + "10000000000000000\r\nabc\r\n"),
                    "malformed HTTP response: a chunk size is not a hex number");
  CHECK_THROWS_WITH(parse(chunked + "-1\r\nabc\r\n"),
                    "malformed HTTP response: a chunk size is not a hex number");
  CHECK_THROWS_WITH(parse(chunked + "5\r\nabc\r\n0\r\n\r\n"),
                    "malformed HTTP response: a chunk does not end where its size says");
  CHECK_THROWS_WITH(parse(chunked + "5\r\nab"), "the chunked response body was cut short");
  CHECK_THROWS_WITH(parse(chunked + std::string(5000, '1')),
                    "malformed HTTP response: a chunk-size line is too long");
  CHECK_THROWS_WITH(parse(chunked + "3e8\r\n" + std::string(1000, 'x') + "\r\n1\r\nx\r\n0\r\n\r\n"),
                    Catch::StartsWith("the response body is larger than"));
  CHECK_THROWS_WITH(
      parse("HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n" + std::string(1001, 'x')),
      Catch::StartsWith("the response body is larger than"));
  CHECK_THROWS_WITH(parse("HTTP/1.1 200 OK\r\n\r\n" + std::string(1001, 'x')),
                    Catch::StartsWith("the response body is larger than"));
  CHECK_THROWS_WITH(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
                    "the response body was cut short: 3 of 10 bytes");
  CHECK_THROWS_WITH(
      parse("HTTP/1.1 200 OK\r\nContent-Length: " + std::string(60000, '9') + "\r\n\r\n"),
      "malformed HTTP response: bad Content-Length");
  CHECK_THROWS_WITH(parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
                    "malformed HTTP response: bad Content-Length");
  CHECK_THROWS_WITH(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
                    "malformed HTTP response: unsupported Transfer-Encoding");
  CHECK_THROWS_WITH(parse("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
                    "malformed HTTP response: a header line has no name");
  CHECK_THROWS_WITH(parse("ICY 200 OK\r\n\r\n"),
                    "malformed HTTP response: no HTTP/1.x status line");
  CHECK_THROWS_WITH(parse("HTTP/1.1 200 OK\r\n"), "malformed HTTP response: no end of the head");
  CHECK_THROWS_WITH(parse(std::string(70000, 'H')),
                    "malformed HTTP response: the head is too long");
}

TEST_CASE("a chunk size of 2^64-1 from a server fails the request instead of looping") {
  kiln::test::HttpServer server;
  server.serve_raw("/api", {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close"
                            "\r\n\r\n3\r\nabc\r\nffffffffffffffff\r\nxyz\r\n0\r\n\r\n"});
  auto response = get(server.url("/api"));
  CHECK(response.error ==
        "the response body is larger than the 1048576 bytes this request accepts");
  CHECK_FALSE(response.unreachable);
}

TEST_CASE("a response body over the cap fails the request") {
  kiln::test::HttpServer server;
  std::string body(kiln::http::kMaxApiResponseBytes + 1, 'x');
  server.serve("/big", body);
  CHECK(get(server.url("/big")).error ==
        "the response body is larger than the 1048576 bytes this request accepts");
  server.serve("/small", std::string(1000, 'x'));
  auto small = get(server.url("/small"));
  CHECK(small.error.empty());
  CHECK(small.body.size() == 1000);
}

TEST_CASE("a server that trickles its answer past the deadline fails the request in time") {
  kiln::test::HttpServer server;
  // Each byte comes well within any per-read timeout; the whole answer takes about 15 s.
  server.serve_raw("/slow",
                   {"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + std::string(20, 'x')},
                   std::chrono::milliseconds(250));
  auto started = std::chrono::steady_clock::now();
  auto response = get(server.url("/slow"), /*timeout_seconds=*/1);
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(response.error == "no complete answer from 127.0.0.1:" +
                              server.url("").substr(server.url("").rfind(':') + 1) + " within 1 s");
  CHECK(took < std::chrono::seconds(10));
}
