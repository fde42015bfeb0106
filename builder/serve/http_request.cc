#include "builder/serve/http_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <vector>

namespace kiln {
namespace {

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char);
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  size_t start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t");
  return text.substr(start, end - start + 1);
}

std::vector<std::string_view> split_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    size_t end = head.find('\n');
    std::string_view line = head.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    head.remove_prefix(end + 1);
  }
  return lines;
}

int parse_request_line(std::string_view line, HttpRequest& request) {
  size_t first_space = line.find(' ');
  size_t last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) return 400;
  std::string_view method = line.substr(0, first_space);
  std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
  std::string_view version = line.substr(last_space + 1);
  if (!is_token(method) || target.empty()) return 400;
  if (std::any_of(target.begin(), target.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
    return 400;
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      !std::isdigit(static_cast<unsigned char>(version[5])) ||
      !std::isdigit(static_cast<unsigned char>(version[7]))) {
    return 400;
  }
  if (version[5] != '1') return 505;
  request.method = method;
  request.target = target;
  request.minor_version = version[7] - '0';
  return 0;
}

std::optional<int> hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    auto high = hex_value(text[i + 1]);
    auto low = hex_value(text[i + 2]);
    if (!high || !low) return std::nullopt;
    out += char(*high * 16 + *low);
    i += 2;
  }
  return out;
}

/// "http://host:8080/boot.ipxe" → "/boot.ipxe": proxies and some clients send absolute-form.
std::string_view strip_scheme_and_authority(std::string_view target) {
  std::string scheme = lowercase(target.substr(0, 8));
  size_t after_scheme = scheme.rfind("http://", 0) == 0    ? 7
                        : scheme.rfind("https://", 0) == 0 ? 8
                                                           : 0;
  if (after_scheme == 0) return target;
  size_t path = target.find('/', after_scheme);
  return path == std::string_view::npos ? "/" : target.substr(path);
}

std::optional<std::uint64_t> parse_number(std::string_view digits) {
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::string HttpRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

ParsedRequest parse_request_head(std::string_view head) {
  ParsedRequest parsed;
  std::vector<std::string_view> lines = split_lines(head);
  // A client may send stray empty lines between keep-alive requests (RFC 9112 §2.2).
  auto first = std::find_if(lines.begin(), lines.end(), [](auto line) { return !line.empty(); });
  if (first == lines.end()) {
    parsed.refusal = 400;
    return parsed;
  }
  if (int refusal = parse_request_line(*first, parsed.request)) {
    parsed.refusal = refusal;
    return parsed;
  }
  for (auto line = first + 1; line != lines.end(); ++line) {
    if (line->empty()) continue;
    size_t colon = line->find(':');
    // Folded continuation lines and names with spaces are how request smuggling starts.
    if (colon == std::string_view::npos || !is_token(line->substr(0, colon))) {
      parsed.refusal = 400;
      return parsed;
    }
    parsed.request.headers[lowercase(line->substr(0, colon))] = trim(line->substr(colon + 1));
  }
  return parsed;
}

std::size_t find_head_end(std::string_view buffer) {
  return HeadEndScanner().scan(buffer);
}

std::size_t HeadEndScanner::scan(std::string_view buffer) {
  // One pass, no look-back: the state carried from byte to byte says whether the last bytes
  // were a line end after the request line began (LF, or LF then CR), which is all a
  // following LF needs to know to end the head.
  for (; end_ == 0 && examined_ < buffer.size(); ++examined_) {
    char c = buffer[examined_];
    if (c == '\n' && tail_ != Tail::other) {
      end_ = examined_ + 1;
    } else if (c == '\r' && tail_ == Tail::line_end) {
      tail_ = Tail::line_end_cr;
    } else if (c == '\n') {
      tail_ = started_ ? Tail::line_end : Tail::other;
    } else {
      if (c != '\r') started_ = true;
      tail_ = Tail::other;
    }
  }
  return end_;
}

RequestPath resolve_request_path(std::string_view target) {
  RequestPath result;
  target = strip_scheme_and_authority(target);
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty() || target[0] != '/') {
    result.refusal = 400;
    return result;
  }
  std::optional<std::string> decoded = percent_decode(target);
  if (!decoded || decoded->find('\0') != std::string::npos) {
    result.refusal = 400;
    return result;
  }
  // Backslashes separate segments too, so "..\" cannot hide a parent reference.
  std::string_view rest = *decoded;
  while (!rest.empty()) {
    size_t end = rest.find_first_of("/\\");
    std::string_view segment = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (segment.empty() || segment == ".") continue;
    if (segment == "..") {
      result.refusal = 403;
      result.relative.clear();
      return result;
    }
    if (!result.relative.empty()) result.relative += '/';
    result.relative += segment;
  }
  return result;
}

RangeDecision decide_range(std::string_view range_header, std::uint64_t file_size) {
  RangeDecision whole;
  std::string_view value = trim(range_header);
  if (lowercase(value.substr(0, 6)) != "bytes=") return whole;
  std::string_view spec = trim(value.substr(6));
  // Several ranges would need a multipart/byteranges body; RFC 9110 lets a server answer with
  // the whole file instead, which is what PXE clients (one range at a time) never ask for.
  if (spec.find(',') != std::string_view::npos) return whole;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view first_text = trim(spec.substr(0, dash));
  std::string_view last_text = trim(spec.substr(dash + 1));
  RangeDecision decision;
  decision.answer = RangeAnswer::unsatisfiable;
  if (first_text.empty()) {  // bytes=-N: the last N bytes
    auto suffix = parse_number(last_text);
    if (!suffix) return whole;
    if (*suffix == 0 || file_size == 0) return decision;
    decision.answer = RangeAnswer::partial;
    decision.range = {file_size - std::min(*suffix, file_size), file_size - 1};
    return decision;
  }
  auto first = parse_number(first_text);
  if (!first) return whole;
  std::optional<std::uint64_t> last;
  if (!last_text.empty()) {
    last = parse_number(last_text);
    if (!last || *last < *first) return whole;  // an invalid range is ignored, not refused
  }
  if (*first >= file_size) return decision;
  decision.answer = RangeAnswer::partial;
  decision.range = {*first, std::min(last.value_or(file_size - 1), file_size - 1)};
  return decision;
}

const char* content_type_for(std::string_view file_name) {
  std::string name = lowercase(file_name.substr(file_name.rfind('/') + 1));
  for (const char* text : {".ipxe", ".cfg", ".yaml", ".yml", ".json", ".txt"}) {
    if (ends_with(name, text)) return "text/plain";
  }
  if (name == "sha256sums") return "text/plain";
  // An index.html is served for a folder; a browser should render it, not download it.
  if (ends_with(name, ".html")) return "text/html";
  return "application/octet-stream";
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace kiln
