#include "firstboot/user_data.h"

#include <yaml-cpp/yaml.h>

namespace kiln::firstboot {

std::optional<std::string> join_config_from_user_data(const std::string& user_data) {
  // Cloud user data is at most 16-256 KiB depending on the cloud; anything larger is not
  // a launch template's, and is not parsed at all.
  if (user_data.size() > kMaxUserDataBytes) return std::nullopt;
  YAML::Node document;
  try {
    document = YAML::Load(user_data);
  } catch (const YAML::Exception&) {
    return std::nullopt;  // a shell script or MIME multipart: not ours
  }
  if (!document.IsMap()) return std::nullopt;
  if (document["apiVersion"] && document["apiVersion"].IsScalar() &&
      document["apiVersion"].Scalar().rfind("kiln.dev/", 0) == 0)
    return user_data;
  if (document["kiln_join"] && document["kiln_join"].IsMap()) {
    YAML::Emitter out;
    out << document["kiln_join"];
    return std::string(out.c_str()) + "\n";
  }
  return std::nullopt;
}

}  // namespace kiln::firstboot
