#pragma once

#include <catch2/catch.hpp>
#include <map>
#include <string>

namespace kiln::test {

/// The start of a probe script (see install_probe): defines `say` and reports what every kiln
/// node promises whatever its machine: the root on dm-verity, EROFS and read-only, /var on
/// the state partition, /etc an overlay, containerd running.
inline constexpr const char* kVerifiedRootProbe = R"sh(#!/bin/sh
say() { echo "KILN-PROBE $1=$2"; }
say root_source "$(findmnt -no SOURCE /)"
say root_fstype "$(findmnt -no FSTYPE /)"
say root_options "$(findmnt -no OPTIONS /)"
dm=$(basename "$(readlink -f /dev/mapper/root)")
say root_dm_uuid "$(cat /sys/block/$dm/dm/uuid)"
say root_write "$(touch /usr/kiln-probe 2>&1 || true)"
say var_source "$(readlink -f "$(findmnt -no SOURCE /var)")"
say state_device "$(readlink -f /dev/disk/by-partlabel/state)"
say etc_fstype "$(findmnt -no FSTYPE /etc)"
say containerd "$(systemctl is-active containerd)"
)sh";

/// Checks what kVerifiedRootProbe reported (see probe_results).
inline void check_verified_root(const std::map<std::string, std::string>& probe) {
  CHECK(probe.at("root_source") == "/dev/mapper/root");
  CHECK(probe.at("root_fstype") == "erofs");
  CHECK(probe.at("root_options").rfind("ro,", 0) == 0);
  CHECK(probe.at("root_dm_uuid").rfind("CRYPT-VERITY-", 0) == 0);
  CHECK_THAT(probe.at("root_write"), Catch::Contains("Read-only file system"));
  CHECK(probe.at("var_source") == probe.at("state_device"));
  CHECK(probe.at("etc_fstype") == "overlay");
  CHECK(probe.at("containerd") == "active");
}

}  // namespace kiln::test
