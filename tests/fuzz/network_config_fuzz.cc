// libFuzzer harness: the static network config parser (`kiln stamp --network`, read again by
// kiln-network.service on the node) and the systemd-networkd files it renders. Refusals are
// ParseErrors; a parsed config renders only 10-kiln-* files whose every line is a comment, a
// section header or a key this renderer writes, so no value can smuggle in a line of its own.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "builder/join/network_config.h"
#include "builder/join/networkd_files.h"
#include "builder/util/parse_errors.h"
#include "fuzz_input.h"

namespace {

const std::set<std::string> kKeys = {
    "MACAddress", "Name",    "Kind",          "MTUBytes",         "DHCP",        "Bond",
    "VLAN",       "Address", "DNS",           "Domains",          "Destination", "Gateway",
    "Metric",     "Mode",    "MIIMonitorSec", "LACPTransmitRate", "Id"};

void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s:\n%s\n", what, detail.c_str());
  std::abort();
}

void check_file(const std::string& name, const std::string& content) {
  if (!name.starts_with("10-kiln-") || name.find('/') != std::string::npos)
    fail("a rendered file name leaves the 10-kiln- namespace", name);
  std::size_t start = 0;
  while (start < content.size()) {
    std::size_t end = content.find('\n', start);
    if (end == std::string::npos) fail("a rendered file does not end in a newline", content);
    std::string line = content.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#' || (line[0] == '[' && line.back() == ']')) continue;
    std::size_t equals = line.find('=');
    if (equals == std::string::npos || !kKeys.count(line.substr(0, equals)))
      fail("a rendered line is not one the renderer writes", line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(kiln::fuzz::as_text(data, size));
  try {
    kiln::NetworkConfig config = kiln::parse_network_config(text, "network.yaml");
    for (const auto& [name, content] : kiln::networkd_files(config)) check_file(name, content);
    kiln::describe_network(config);
  } catch (const kiln::ParseErrors&) {
  }
  return 0;
}
