#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace kiln {

/// One HTTP/1.x request head, as `kiln serve` reads it.
struct HttpRequest {
  std::string method;
  std::string target;                          ///< as sent: "/pxe//boot.ipxe?mac=52:54:00:12:34:56"
  int minor_version = 1;                       ///< HTTP/1.<minor_version>
  std::map<std::string, std::string> headers;  ///< lowercased names; the last of repeats wins
  /// The value of a header (lowercase name), empty when absent.
  std::string header(const std::string& name) const;
};

/// A parsed head, or the status that refuses it (400 malformed, 505 not HTTP/1.x).
struct ParsedRequest {
  HttpRequest request;
  int refusal = 0;
};

/// Parses a request line and its header lines (the head without its blank line).
ParsedRequest parse_request_head(std::string_view head);

/// Where the head ends in `buffer`: the index just past its blank line (CRLF CRLF, or bare
/// LF LF as some clients send), or 0 while incomplete. Empty lines before the request line
/// do not end it. Looks at each byte once.
std::size_t find_head_end(std::string_view buffer);

/// find_head_end for a buffer that grows between reads: each call examines only the bytes
/// appended since the last, so a head trickled in byte by byte costs linear time in all.
class HeadEndScanner {
 public:
  /// Where the head ends in `buffer`, or 0 while incomplete. `buffer` must be the previous
  /// call's buffer with bytes appended; reset() before scanning a different one.
  std::size_t scan(std::string_view buffer);
  void reset() { *this = HeadEndScanner(); }
  /// Bytes examined since the last reset: at most the buffer's size.
  std::size_t examined() const { return examined_; }

 private:
  /// What the bytes just before the next one mean for where the head can end.
  enum class Tail { other, line_end, line_end_cr };
  std::size_t examined_ = 0;
  bool started_ = false;  ///< a byte other than CR and LF was seen: the request line began
  Tail tail_ = Tail::other;
  std::size_t end_ = 0;  ///< found: the index past the blank line
};

/// A request target as a path below the served folder ("pxe/boot.ipxe", "" for the folder
/// itself), or the status that refuses it.
struct RequestPath {
  std::string relative;
  int refusal = 0;
};

/// Drops the query, percent-decodes, collapses repeated slashes and refuses any `..`
/// segment, so nothing a client sends names a file outside the folder. Malformed %XX or a
/// decoded NUL is 400; a `..` segment, however spelled (%2e%2e, ..%2f, ..\), is 403.
RequestPath resolve_request_path(std::string_view target);

/// An inclusive byte range of a file.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
};

enum class RangeAnswer { whole_file, partial, unsatisfiable };

struct RangeDecision {
  RangeAnswer answer = RangeAnswer::whole_file;
  ByteRange range;  ///< set when answer is partial
};

/// What to send for a Range header value on a file of `file_size` bytes: bytes=A-B, A- and
/// -N give one range; a syntax error or a multi-range list gives the whole file.
RangeDecision decide_range(std::string_view range_header, std::uint64_t file_size);

/// The Content-Type for a served file, from its name.
const char* content_type_for(std::string_view file_name);

/// "Not Found" for 404 and so on.
const char* reason_phrase(int status);

}  // namespace kiln
