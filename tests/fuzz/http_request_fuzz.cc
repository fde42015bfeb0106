// libFuzzer harness: how `kiln serve` reads a request: find_head_end over the bytes received,
// parse_request_head on the head, then resolve_request_path and decide_range on what it
// names. Refusals are status codes, never exceptions; nothing may escape. Checked beyond that:
// the head ends inside the buffer at a blank line, a resolved path stays below the served
// folder, and a partial range lies inside the file.

#include <cstdint>
#include <limits>
#include <string_view>

#include "builder/serve/http_request.h"
#include "fuzz_check.h"
#include "fuzz_input.h"

namespace {

void check_path(std::string_view target) {
  kiln::RequestPath path = kiln::resolve_request_path(target);
  if (path.refusal) {
    KILN_FUZZ_CHECK(path.refusal == 400 || path.refusal == 403);
    return;
  }
  std::string_view rest = path.relative;
  KILN_FUZZ_CHECK(rest.find('\0') == std::string_view::npos);
  KILN_FUZZ_CHECK(rest.empty() || (rest.front() != '/' && rest.back() != '/'));
  while (!rest.empty()) {
    std::size_t end = rest.find_first_of("/\\");
    std::string_view segment = rest.substr(0, end);
    KILN_FUZZ_CHECK(!segment.empty() && segment != "." && segment != "..");
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
  (void)kiln::content_type_for(path.relative);
}

void check_range(std::string_view header) {
  for (std::uint64_t size : {std::uint64_t(0), std::uint64_t(1), std::uint64_t(4096),
                             std::numeric_limits<std::uint64_t>::max()}) {
    kiln::RangeDecision decision = kiln::decide_range(header, size);
    if (decision.answer != kiln::RangeAnswer::partial) continue;
    KILN_FUZZ_CHECK(decision.range.first <= decision.range.last);
    KILN_FUZZ_CHECK(decision.range.last < size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view received = kiln::fuzz::as_text(data, size);
  std::size_t end = kiln::find_head_end(received);
  KILN_FUZZ_CHECK(end <= received.size());
  if (end) {
    std::string_view head = received.substr(0, end);
    KILN_FUZZ_CHECK(head.size() >= 2 && head.back() == '\n');
    KILN_FUZZ_CHECK(head[head.size() - 2] == '\n' ||
                    (head.size() >= 3 && head.substr(head.size() - 3) == "\n\r\n"));
  }
  kiln::ParsedRequest parsed = kiln::parse_request_head(end ? received.substr(0, end) : received);
  if (parsed.refusal) {
    KILN_FUZZ_CHECK(parsed.refusal == 400 || parsed.refusal == 505);
  } else {
    check_path(parsed.request.target);
    check_range(parsed.request.header("range"));
  }
  (void)kiln::reason_phrase(parsed.refusal);
  // The two value parsers on raw bytes too, which reach corners a well-formed head does not.
  check_path(received);
  check_range(received);
  return 0;
}
