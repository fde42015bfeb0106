#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// One file of a release in an update folder, named relative to the folder.
struct UpdateFile {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;  ///< 64 lowercase hex digits
};

/// The root of a release as independent zstd frames, each the compression of `frame_size`
/// bytes of the root (the last one of what is left). A node downloads this instead of the root
/// when its index lists it: a frame boundary is a point where a download can resume, and
/// the frame sizes say which byte of this file it resumes at.
struct ZstdFrames {
  UpdateFile file;
  std::uint64_t frame_size = 0;       ///< root bytes per frame: a power of two, 1-64 MiB
  std::vector<std::uint64_t> frames;  ///< compressed size of each frame, in order
};

/// One version a node can update to: the verified root, its hash tree and what boots it.
struct UpdateRelease {
  std::string version;
  std::string root_hash;  ///< dm-verity root hash, 64 lowercase hex digits
  std::string cmdline;    ///< the kernel command line the image's own disk boots with
  UpdateFile root;        ///< EROFS root, written to the inactive root slot
  UpdateFile verity;      ///< its dm-verity hash tree, written to the slot's verity partition
  UpdateFile kernel;
  UpdateFile initrd;
  /// The root again, compressed; indexes written before it existed lack it.
  std::optional<ZstdFrames> root_zstd;
};

/// `index.json` of an update folder: every release it holds, oldest first. Signed as a whole
/// (index.json.sig), so its digests vouch for every other file.
struct UpdateIndex {
  std::string name;  ///< the recipe's name: a node ignores folders of other images
  std::string arch;  ///< amd64 or arm64
  std::vector<UpdateRelease> releases;
};

inline constexpr int kUpdateIndexSchema = 1;
/// An index larger than this is refused before parsing: hundreds of releases fit in 64 KiB.
inline constexpr std::size_t kMaxUpdateIndexBytes = 1 << 20;
inline constexpr std::size_t kMaxUpdateReleases = 512;
inline constexpr std::uint64_t kMinZstdFrameSize = 1 << 20;
inline constexpr std::uint64_t kMaxZstdFrameSize = 64 << 20;

/// A frame size a node accepts: a power of two from kMinZstdFrameSize to kMaxZstdFrameSize.
bool is_zstd_frame_size(std::uint64_t frame_size);

/// JSON with sorted keys and releases ordered by version, so the same releases always give
/// the same bytes (and the same signature, with Ed25519).
std::string render_update_index(UpdateIndex index);

/// Parses and checks an index from the network: size capped, every name a plain file name,
/// every digest and size well-formed, versions valid and unique. Throws kiln::Error naming the
/// first problem (the release and field).
UpdateIndex parse_update_index(std::string_view text);

/// Every file of a release: root, verity, kernel, initrd, then the compressed root if listed.
std::vector<const UpdateFile*> release_files(const UpdateRelease& release);

/// The newest release, or nullptr when the index is empty.
const UpdateRelease* newest_release(const UpdateIndex& index);

/// An update folder's URL as a recipe or `kiln stamp --update-url` may give it: http://
/// (releases are signed; the transport need not be), at most 2048 printable ASCII characters
/// without spaces, so that it fits update.conf's and update-url's one line.
bool is_update_url(std::string_view url);

/// A file name an update folder may hold: letters, digits and `._+~-`, not starting with a
/// dot, at most 128 characters. Nothing that could leave the folder or name a device.
bool is_update_file_name(std::string_view name);

}  // namespace kiln
