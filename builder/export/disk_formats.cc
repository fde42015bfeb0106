#include "builder/export/disk_formats.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "builder/disk/guid.h"
#include "builder/disk/sparse_copy.h"
#include "builder/util/error.h"
#include "builder/util/files.h"
#include "builder/util/process.h"
#include "builder/util/sha256.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {

/// Runs `make(temp)` and renames temp to `out` only when it succeeded.
template <typename Make>
void write_through_temp(const fs::path& out, Make make) {
  fs::path temp = temp_sibling(out);
  TempPath cleanup(temp);
  make(temp);
  fsync_path(temp);
  fs::rename(temp, out);
  cleanup.release();
}

/// A fresh directory beside `out` (same file system, so a rename moves a file out of it)
/// that only this process uses.
fs::path private_dir_beside(const fs::path& out) {
  std::string pattern = (out.parent_path() / ("." + out.filename().string() + ".XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw Error("cannot create a temporary directory beside " + out.string() + ": " +
                std::strerror(errno));
  return pattern;
}

std::uint64_t get_le(std::string_view bytes, std::size_t at, int count) {
  std::uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i)
    value = value << 8 | static_cast<std::uint8_t>(bytes[at + i]);
  return value;
}

void put_be(std::uint8_t* at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<std::uint8_t>(value >> (8 * (bytes - 1 - i)));
}

/// CHS geometry as the VHD specification computes it from the sector count.
void vhd_geometry(std::uint64_t size, std::uint8_t* at) {
  std::uint64_t total = std::min<std::uint64_t>(size / 512, 65535ull * 16 * 255);
  std::uint64_t spt, heads, cth;
  if (total >= 65535ull * 16 * 63) {
    spt = 255, heads = 16, cth = total / spt;
  } else {
    spt = 17, cth = total / spt;
    heads = std::max<std::uint64_t>((cth + 1023) / 1024, 4);
    if (cth >= heads * 1024 || heads > 16) spt = 31, heads = 16, cth = total / spt;
    if (cth >= heads * 1024) spt = 63, heads = 16, cth = total / spt;
  }
  put_be(at, cth / heads, 2);
  at[2] = static_cast<std::uint8_t>(heads);
  at[3] = static_cast<std::uint8_t>(spt);
}

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};

void add_file_entry(struct archive* tar, const std::string& name, const fs::path& source,
                    long long epoch) {
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(),
                                                                      archive_entry_free);
  archive_entry_set_pathname(entry.get(), name.c_str());
  archive_entry_set_size(entry.get(), fs::file_size(source));
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);
  archive_entry_set_mtime(entry.get(), epoch, 0);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  if (archive_write_header(tar, entry.get()) != ARCHIVE_OK)
    throw Error("cannot write archive entry " + name + ": " + archive_error_string(tar));
  int fd = ::open(source.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open " + source.string());
  std::vector<char> buffer(4 << 20);
  ssize_t n;
  while ((n = ::read(fd, buffer.data(), buffer.size())) > 0) {
    if (archive_write_data(tar, buffer.data(), n) != n) {
      ::close(fd);
      throw Error("cannot write archive data for " + name + ": " + archive_error_string(tar));
    }
  }
  ::close(fd);
}

std::string ovf_descriptor(const std::string& name, const std::string& vmdk_name,
                           std::uint64_t vmdk_size, std::uint64_t disk_size) {
  return fmt::format(R"(<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
          xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
          xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:id="disk1-file" ovf:href="{vmdk}" ovf:size="{vmdk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:diskId="disk1" ovf:fileRef="disk1-file" ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte"
          ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>Networks</Info>
    <Network ovf:name="VM Network"><Description>Node network</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>kiln Kubernetes worker node</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest">
      <Info>Debian GNU/Linux, 64-bit</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>2 vCPU, 4 GiB memory, one disk, one network adapter</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>2 virtual CPUs</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>4096 MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>4096</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/disk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
)",
                     fmt::arg("name", name), fmt::arg("vmdk", vmdk_name),
                     fmt::arg("vmdk_size", vmdk_size), fmt::arg("capacity", disk_size));
}

}  // namespace

void write_raw(const fs::path& raw, const fs::path& out) {
  copy_sparse_atomic(raw, out);
}

void write_raw_zst(const fs::path& raw, const fs::path& out) {
  require_program("zstd", "zstd");
  write_through_temp(out, [&](const fs::path& temp) {
    // A 128 MiB window finds what the root's files share (the Go runtime in every binary):
    // 8% smaller for an uncompressed root. It is the largest window zstd, bmaptool and
    // libzstd decompress without being told, so nothing downstream needs an option.
    run({"zstd", "-q", "-f", "-T0", "-12", "--long=27", raw.string(), "-o", temp.string()},
        {.quiet = true});
  });
}

void write_bmap(const fs::path& raw, const fs::path& out) {
  require_program("bmaptool", "bmap-tools");
  write_through_temp(out, [&](const fs::path& temp) {
    run({"bmaptool", "create", "-o", temp.string(), raw.string()}, {.quiet = true});
  });
}

void write_qcow2(const fs::path& raw, const fs::path& out) {
  require_program("qemu-img", "qemu-utils");
  write_through_temp(out, [&](const fs::path& temp) {
    run({"qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1",
         raw.string(), temp.string()});
  });
}

void write_vhd(const fs::path& raw, const fs::path& out, const std::string& uuid, long long epoch) {
  std::uint64_t size = fs::file_size(raw);
  if (size % (1 << 20) != 0)
    throw Error(
        fmt::format("a VHD for Azure needs a whole number of MiB; the disk is {} bytes", size));
  std::array<std::uint8_t, 512> footer{};
  std::memcpy(footer.data(), "conectix", 8);
  put_be(&footer[8], 2, 4);
  put_be(&footer[12], 0x00010000, 4);
  put_be(&footer[16], ~0ull, 8);
  constexpr long long kVhdEpoch = 946684800;  // 2000-01-01T00:00:00Z
  put_be(&footer[24], static_cast<std::uint64_t>(std::max(epoch - kVhdEpoch, 0LL)), 4);
  std::memcpy(&footer[28], "kiln", 4);
  put_be(&footer[32], 0x00010000, 4);
  std::memcpy(&footer[36], "Wi2k", 4);
  put_be(&footer[40], size, 8);
  put_be(&footer[48], size, 8);
  vhd_geometry(size, &footer[56]);
  put_be(&footer[60], 2, 4);  // fixed disk
  auto id = Guid{uuid}.to_gpt_bytes();
  std::memcpy(&footer[68], id.data(), 16);
  std::uint32_t sum = 0;
  for (auto byte : footer) sum += byte;
  put_be(&footer[64], ~sum, 4);

  fs::path temp = temp_sibling(out);
  TempPath cleanup(temp);
  copy_sparse_atomic(raw, temp);
  write_at(temp, std::string_view(reinterpret_cast<const char*>(footer.data()), footer.size()),
           size);
  fs::rename(temp, out);
  cleanup.release();
}

std::string set_vmdk_content_id(const fs::path& vmdk) {
  constexpr std::uint64_t kSector = 512;
  std::uint64_t file_size = fs::file_size(vmdk);
  if (file_size < kSector) throw Error(vmdk.string() + " is too short to be a VMDK");
  // The sparse extent header (VMware's "Virtual Disk Format 5.0"): magic "KDMV", then the
  // descriptor's offset and size in sectors as little-endian 64-bit integers at 28 and 36.
  std::string header = read_at(vmdk, 0, kSector);
  if (header.compare(0, 4, "KDMV") != 0)
    throw Error(vmdk.string() + " is not a sparse VMDK (no KDMV header)");
  std::uint64_t sector = get_le(header, 28, 8), sectors = get_le(header, 36, 8);
  std::uint64_t file_sectors = file_size / kSector;
  if (sector == 0 || sectors == 0 || sectors > 2048 || sector >= file_sectors ||
      sectors > file_sectors - sector) {
    throw Error(
        fmt::format("{} has no embedded descriptor (offset {} and size {} sectors in a "
                    "file of {} sectors)",
                    vmdk.string(), sector, sectors, file_sectors));
  }
  // The descriptor is text up to the first NUL, padded with NULs to its sectors.
  std::uint64_t region_at = sector * kSector;
  std::string region = read_at(vmdk, region_at, sectors * kSector);
  std::string text = region.substr(0, region.find('\0'));
  std::size_t line = text.rfind("CID=", 0) == 0 ? 0 : text.find("\nCID=");
  if (line == std::string::npos) throw Error(vmdk.string() + "'s descriptor has no CID= line");
  std::size_t digits = line + (line == 0 ? 4 : 5);
  std::size_t end = text.find('\n', digits);
  auto is_hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  constexpr std::size_t kDigits = 8;
  if (end == std::string::npos || end == digits || end - digits > kDigits ||
      !std::all_of(text.begin() + digits, text.begin() + end, is_hex)) {
    throw Error(vmdk.string() + "'s descriptor has a CID that is not 1 to 8 hex digits");
  }
  // qemu-img prints its random CID without leading zeros, so even its length varies: write
  // the descriptor back with 8 zeros there, hash the whole file, then put the digest's
  // first 8 hex digits in their place.
  text.replace(digits, end - digits, std::string(kDigits, '0'));
  if (text.size() >= region.size())
    throw Error(vmdk.string() + "'s descriptor does not fit its sectors with an 8-digit CID");
  region.replace(0, text.size(), text);
  std::fill(region.begin() + text.size(), region.end(), '\0');
  write_at(vmdk, region, region_at);
  std::string id = sha256_file(vmdk).substr(0, kDigits);
  // ffffffff means "no parent" in parentCID; qemu never picks it as a CID either.
  if (id == "ffffffff") id = "fffffffe";
  write_at(vmdk, id, region_at + digits);
  return id;
}

void write_vmdk(const fs::path& raw, const fs::path& out) {
  require_program("qemu-img", "qemu-utils");
  fs::path dir = private_dir_beside(out);
  TempPath cleanup(dir);
  fs::path converted = dir / out.filename();
  run({"qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o",
       "subformat=streamOptimized,adapter_type=lsilogic", raw.string(), converted.string()});
  set_vmdk_content_id(converted);
  fsync_path(converted);
  fs::rename(converted, out);
}

void write_ova(const fs::path& vmdk, const fs::path& out, const std::string& name,
               std::uint64_t disk_size, long long epoch) {
  fs::path staging = temp_sibling(out.parent_path() / (name + ".ova-staging"));
  TempPath staging_cleanup(staging);
  fs::create_directories(staging);
  std::string vmdk_name = name + "-disk1.vmdk";
  std::string ovf = ovf_descriptor(name, vmdk_name, fs::file_size(vmdk), disk_size);
  write_file_atomic(staging / (name + ".ovf"), ovf);
  write_file_atomic(staging / (name + ".mf"),
                    fmt::format("SHA256({}.ovf)= {}\nSHA256({})= {}\n", name, sha256_hex(ovf),
                                vmdk_name, sha256_file(vmdk)));
  write_through_temp(out, [&](const fs::path& temp) {
    std::unique_ptr<struct archive, ArchiveDeleter> tar(archive_write_new());
    archive_write_set_format_ustar(tar.get());
    if (archive_write_open_filename(tar.get(), temp.c_str()) != ARCHIVE_OK)
      throw Error("cannot create " + temp.string() + ": " + archive_error_string(tar.get()));
    // OVF 1.0: the descriptor comes first, then the manifest and the disks.
    add_file_entry(tar.get(), name + ".ovf", staging / (name + ".ovf"), epoch);
    add_file_entry(tar.get(), name + ".mf", staging / (name + ".mf"), epoch);
    add_file_entry(tar.get(), vmdk_name, vmdk, epoch);
    if (archive_write_close(tar.get()) != ARCHIVE_OK)
      throw Error("cannot finish " + temp.string() + ": " + archive_error_string(tar.get()));
  });
}

void write_gce(const fs::path& raw, const fs::path& out, long long epoch) {
  std::uint64_t size = fs::file_size(raw);
  if (size % (1ull << 30) != 0) {
    throw Error(fmt::format(
        "GCE imports disks of a whole number of GiB; the disk is {} bytes (set disk.size, "
        "e.g. 4G)",
        size));
  }
  write_through_temp(out, [&](const fs::path& temp) {
    std::unique_ptr<struct archive, ArchiveDeleter> tar(archive_write_new());
    archive_write_set_format_gnutar(tar.get());
    archive_write_add_filter_gzip(tar.get());
    // No name or time in the gzip header: the same disk gives the same archive.
    archive_write_set_filter_option(tar.get(), "gzip", "timestamp", nullptr);
    archive_write_set_filter_option(tar.get(), "gzip", "compression-level", "6");
    if (archive_write_open_filename(tar.get(), temp.c_str()) != ARCHIVE_OK)
      throw Error("cannot create " + temp.string() + ": " + archive_error_string(tar.get()));
    add_file_entry(tar.get(), "disk.raw", raw, epoch);
    if (archive_write_close(tar.get()) != ARCHIVE_OK)
      throw Error("cannot finish " + temp.string() + ": " + archive_error_string(tar.get()));
  });
}

std::string register_ami_json(const std::string& name, const std::string& raw_name, bool arm64) {
  return fmt::format(R"({{
  "_import": "aws ec2 import-snapshot --disk-container Format=RAW,UserBucket={{S3Bucket=BUCKET,S3Key={raw}}}; then put the snapshot id below and run: aws ec2 register-image --cli-input-json file://register-ami.json",
  "Name": "{name}",
  "Description": "kiln Kubernetes worker {name}",
  "Architecture": "{arch}",
  "BootMode": "{boot_mode}",
  "EnaSupport": true,
  "ImdsSupport": "v2.0",
  "RootDeviceName": "/dev/xvda",
  "VirtualizationType": "hvm",
  "BlockDeviceMappings": [
    {{
      "DeviceName": "/dev/xvda",
      "Ebs": {{
        "SnapshotId": "SNAPSHOT_ID",
        "VolumeType": "gp3",
        "DeleteOnTermination": true
      }}
    }}
  ]
}}
)",
                     fmt::arg("name", name), fmt::arg("raw", raw_name),
                     fmt::arg("arch", arm64 ? "arm64" : "x86_64"),
                     // arm64 instances boot by UEFI only; x86 ones by either.
                     fmt::arg("boot_mode", arm64 ? "uefi" : "uefi-preferred"));
}

}  // namespace kiln
