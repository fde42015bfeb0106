#pragma once

#include <filesystem>
#include <string>

#include "builder/inspect/image_report.h"

namespace kiln {

/// Looks into one output of a kiln build: a disk image in any format kiln writes (raw,
/// raw.zst, qcow2, vhd, vmdk, ova, gce tarball) or a PXE or update folder. The format is
/// recognised by its content, never its name. Disk formats other than raw and the compressed
/// ones are read through qemu's block layer (qemu-nbd), as this user, without converting
/// them first; compressed ones are read as streams. Every root is checked against its
/// dm-verity root hash. Throws kiln::Error on what is not a kiln output.
ImageReport inspect_output(const std::filesystem::path& path);

/// The report for people: one fact per line, token masked.
std::string render_report(const ImageReport& report, long long now);

/// The report as one JSON document (schemaVersion 1, fields as the README lists them).
std::string report_json(const ImageReport& report, long long now);

}  // namespace kiln
