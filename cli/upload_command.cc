// kiln upload CLOUD DIR: a built image folder to a bootable image in a cloud.
#include <cstdio>

#include "cli/commands.h"
#include "cli/upload_common.h"

namespace kiln::cli {

ExitCode run_upload(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf(
        "usage: kiln upload CLOUD DIR [options]\n\nClouds:\n"
        "  aws        an EBS snapshot through the EBS direct APIs, registered as an AMI\n"
        "  openstack  a Glance image (qcow2, else raw) with the properties Nova boots it by\n"
        "  azure      a page blob of the VHD (data pages only), made a managed image\n"
        "  gce        the gce.tar.gz in a Cloud Storage bucket, made a Compute Engine image\n"
        "\nRun 'kiln upload CLOUD --help' for a cloud's options.\n");
    return args.empty() ? ExitCode::usage : ExitCode::ok;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "aws") return run_upload_aws(rest);
  if (args[0] == "openstack") return run_upload_openstack(rest);
  if (args[0] == "azure") return run_upload_azure(rest);
  if (args[0] == "gce") return run_upload_gce(rest);
  throw UsageError("unknown cloud '" + args[0] +
                   "': kiln upload supports aws, openstack, azure and gce");
}

}  // namespace kiln::cli
