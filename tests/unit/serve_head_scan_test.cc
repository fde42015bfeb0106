// Finding where a request head ends, as `kiln serve` does after every read.
#include <time.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "builder/serve/http_request.h"

namespace {

/// The end of a head by its definition, rescanning from the start: just past the first line
/// feed followed by LF or CR LF, once a byte other than CR and LF came before it.
std::size_t head_end_by_definition(std::string_view buffer) {
  for (size_t newline = buffer.find('\n'); newline != std::string_view::npos;
       newline = buffer.find('\n', newline + 1)) {
    if (buffer.substr(0, newline).find_first_not_of("\r\n") == std::string_view::npos) continue;
    std::string_view rest = buffer.substr(newline + 1);
    if (rest.substr(0, 1) == "\n") return newline + 2;
    if (rest.substr(0, 2) == "\r\n") return newline + 3;
  }
  return 0;
}

double thread_cpu_milliseconds() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

}  // namespace

TEST_CASE("the head's end is found after CRLF CRLF or LF LF, not among leading empty lines") {
  struct Case {
    const char* buffer;
    std::size_t end;
  };
  auto [buffer, end] = GENERATE(values<Case>({
      {"GET / HTTP/1.1\r\nHost: pxe\r\n\r\nGET /next", 29},
      {"GET / HTTP/1.1\nHost: pxe\n\n", 26},
      {"\r\n\r\n\n\nGET / HTTP/1.1\r\n\r\n", 24},  // stray empty lines first (RFC 9112 2.2)
      {"GET / HTTP/1.1\r\nHost: pxe\r\n", 0},
      {"GET / HTTP/1.1\r\n\r", 0},
      {"\n\n\n\r\n", 0},
      {"", 0},
  }));
  CAPTURE(buffer);
  CHECK(kiln::find_head_end(buffer) == end);
  CHECK(head_end_by_definition(buffer) == end);
}

TEST_CASE("the head scanner fed in pieces finds the end its definition gives") {
  // Every buffer up to 9 bytes over an alphabet that exercises each state, split after every
  // byte, agrees with the rescanning definition.
  const char alphabet[] = {'\r', '\n', 'G', ' '};
  for (int length = 0; length <= 9; ++length) {
    std::uint64_t count = 1ULL << (2 * length);
    for (std::uint64_t code = 0; code < count; ++code) {
      std::string buffer;
      for (int i = 0; i < length; ++i) buffer += alphabet[(code >> (2 * i)) & 3];
      std::size_t expected = head_end_by_definition(buffer);
      kiln::HeadEndScanner scanner;
      std::size_t found = 0;
      for (std::size_t size = 0; size <= buffer.size() && found == 0; ++size) {
        found = scanner.scan(std::string_view(buffer).substr(0, size));
      }
      if (found != expected || kiln::find_head_end(buffer) != expected) {
        CAPTURE(buffer, found, expected);
        FAIL("the scanner disagrees with the definition");
      }
    }
  }
}

TEST_CASE("16 KiB of line feeds fed a byte at a time cost the head scanner linear work") {
  const std::string line_feeds(16 * 1024, '\n');
  kiln::HeadEndScanner scanner;
  double cpu_before = thread_cpu_milliseconds();
  std::size_t end = 0;
  for (std::size_t size = 1; size <= line_feeds.size(); ++size) {
    end |= scanner.scan(std::string_view(line_feeds).substr(0, size));
  }
  double cpu_used = thread_cpu_milliseconds() - cpu_before;
  CHECK(end == 0);
  // Each byte is examined once however the buffer grew: 16,384 calls, 16,384 bytes looked at.
  CHECK(scanner.examined() == line_feeds.size());
  CAPTURE(cpu_used);
  CHECK(cpu_used < 10.0);
}
