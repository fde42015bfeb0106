#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace kiln::firstboot {

/// The largest user data read for a join config; larger documents are not looked at.
constexpr size_t kMaxUserDataBytes = 256 * 1024;

/// The join config inside cloud user data, when there is one: either the whole document is a
/// kiln JoinConfig (apiVersion kiln.dev/v1alpha1), or it is a #cloud-config whose `kiln_join`
/// key holds one. Anything else (plain cloud-init user data) gives nullopt.
std::optional<std::string> join_config_from_user_data(const std::string& user_data);

}  // namespace kiln::firstboot
