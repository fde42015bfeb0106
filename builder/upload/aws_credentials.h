#pragma once

#include <functional>
#include <string>

#include "builder/upload/aws_settings.h"

namespace kiln::aws {

/// Fetches the temporary keys `settings.credentials` still waits for: AssumeRoleWithWebIdentity
/// at STS with the token file's contents, or the instance role's keys from the instance
/// metadata service (IMDSv2: a session token first). Does nothing when the keys are given.
/// Throws CloudRefusal when STS refuses, Error otherwise; no message holds a key or token.
void obtain_credentials(AwsSettings& settings, const std::function<void(const std::string&)>& say);

/// The keys in STS's AssumeRoleWithWebIdentity answer, or in the metadata service's JSON for
/// a role; throws Error when a field is missing or not a plausible key (a session token goes
/// into a header: no control characters). Bounded: the answer is capped by the caller.
Credentials parse_sts_credentials(const std::string& xml);
Credentials parse_instance_credentials(const std::string& json);

}  // namespace kiln::aws
