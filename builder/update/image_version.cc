#include "builder/update/image_version.h"

#include "builder/util/scan.h"

namespace kiln {

bool is_image_version(std::string_view text) {
  if (text.empty() || text.size() > 64 || !scan::is_alnum(text.front())) return false;
  for (char c : text) {
    if (!scan::is_alnum(c) && c != '.' && c != '+' && c != '~' && c != '-' && c != '_')
      return false;
  }
  return true;
}

namespace {

bool is_letter(char c) {
  return scan::is_alnum(c) && !scan::is_digit(c);
}

/// Skips separators (anything but letters, digits and `~`).
void skip_separators(std::string_view& s) {
  while (!s.empty() && !scan::is_alnum(s.front()) && s.front() != '~') s.remove_prefix(1);
}

template <typename Predicate>
std::string_view take_run(std::string_view& s, Predicate accept) {
  std::size_t n = 0;
  while (n < s.size() && accept(s[n])) ++n;
  std::string_view run = s.substr(0, n);
  s.remove_prefix(n);
  return run;
}

int sign(int value) {
  return (value > 0) - (value < 0);
}

}  // namespace

int compare_image_versions(std::string_view a, std::string_view b) {
  for (;;) {
    skip_separators(a);
    skip_separators(b);
    // `~` marks a pre-release: it sorts before anything, even the end of the other string.
    bool tilde_a = !a.empty() && a.front() == '~', tilde_b = !b.empty() && b.front() == '~';
    if (tilde_a || tilde_b) {
      if (!tilde_a) return 1;
      if (!tilde_b) return -1;
      a.remove_prefix(1), b.remove_prefix(1);
      continue;
    }
    if (a.empty() || b.empty()) return sign(int(!a.empty()) - int(!b.empty()));
    bool digits_a = scan::is_digit(a.front()), digits_b = scan::is_digit(b.front());
    // A number is newer than a word in the same place (1.0.1 > 1.0.beta).
    if (digits_a != digits_b) return digits_a ? 1 : -1;
    if (digits_a) {
      std::string_view x = take_run(a, scan::is_digit), y = take_run(b, scan::is_digit);
      while (x.size() > 1 && x.front() == '0') x.remove_prefix(1);
      while (y.size() > 1 && y.front() == '0') y.remove_prefix(1);
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      if (int c = x.compare(y)) return sign(c);
    } else {
      std::string_view x = take_run(a, is_letter), y = take_run(b, is_letter);
      if (int c = x.compare(y)) return sign(c);
    }
  }
}

}  // namespace kiln
