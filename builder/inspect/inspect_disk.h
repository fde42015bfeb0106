#pragma once

#include "builder/inspect/disk_reader.h"
#include "builder/inspect/image_report.h"
#include "builder/update/verity_check.h"

namespace kiln {

/// Reads what a kiln disk holds through `disk`: the GPT, the ESP's loader entries, manifest
/// and SBOM, the kiln-config partition's stamp, and every booted root checked against its
/// dm-verity tree. Reads forward only, twice for a stream, so compressed images need no
/// temporary file. Sizes read into memory are capped (the ESP at 1 GiB).
void inspect_disk(DiskReader& disk, const std::string& name, ImageReport& report);

/// verify_verity's reader over `disk` from byte `base` on: a read error is a failed check.
VerityRead verity_reader(DiskReader& disk, std::uint64_t base);

}  // namespace kiln
