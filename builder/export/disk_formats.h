#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln {

/// Each writer makes `out` from the raw disk image `raw` through a temporary sibling, so a
/// failure or interruption never leaves a partial file under the final name.
void write_raw(const std::filesystem::path& raw, const std::filesystem::path& out);
void write_raw_zst(const std::filesystem::path& raw, const std::filesystem::path& out);
/// A bmaptool block map of the raw image: flashing skips the image's holes.
void write_bmap(const std::filesystem::path& raw, const std::filesystem::path& out);
void write_qcow2(const std::filesystem::path& raw, const std::filesystem::path& out);
/// Fixed VHD (Azure): the raw image plus a 512-byte footer with a stable UUID and timestamp.
void write_vhd(const std::filesystem::path& raw, const std::filesystem::path& out,
               const std::string& uuid, long long epoch);
/// streamOptimized VMDK. qemu-img writes a random content ID and the name of the file it
/// writes into the embedded descriptor: the conversion runs under the final file name in a
/// private directory, and the ID is derived from the file's content, so the same disk gives
/// the same VMDK byte for byte.
void write_vmdk(const std::filesystem::path& raw, const std::filesystem::path& out);
/// Replaces the content ID (`CID=` in the descriptor a sparse VMDK embeds after its header)
/// with 8 hex digits of the SHA-256 of the file as it is with that ID set to 00000000; in
/// place, within the descriptor's sectors. Returns the new ID. Throws kiln::Error for a file
/// that is not a sparse VMDK with a descriptor.
std::string set_vmdk_content_id(const std::filesystem::path& vmdk);
/// An OVA: OVF descriptor, the streamOptimized VMDK and a SHA256 manifest, in a ustar.
void write_ova(const std::filesystem::path& vmdk, const std::filesystem::path& out,
               const std::string& name, std::uint64_t disk_size, long long epoch);
/// GCE's image import format: `disk.raw` in an old-GNU tar, gzip-compressed.
void write_gce(const std::filesystem::path& raw, const std::filesystem::path& out, long long epoch);
/// What `aws ec2 register-image` needs once the raw image is imported as a snapshot.
std::string register_ami_json(const std::string& name, const std::string& raw_name, bool arm64);

}  // namespace kiln
