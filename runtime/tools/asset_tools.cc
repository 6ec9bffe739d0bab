#include "runtime/tools/asset_tools.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "runtime/policy/path_policy.h"
#include "runtime/tools/fs_tools.h"

namespace jcs::runtime {
namespace {

using json = nlohmann::json;

constexpr uint64_t kNoSymlinks =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
constexpr size_t kMaxArgBytes = 4096;

struct AssetType {
  const char* kind;  // singular, reported in results
  const char* dir;   // directory under data_dir
  bool recursive;
};

std::optional<AssetType> ParseType(const std::string& type) {
  if (type == "skill" || type == "skills")
    return AssetType{"skill", "skills", false};
  if (type == "command" || type == "commands") {
    return AssetType{"command", "commands", false};
  }
  if (type == "workflow" || type == "workflows") {
    return AssetType{"workflow", "workflows", false};
  }
  if (type == "skill_graph")
    return AssetType{"skill_graph", "skill_graph", true};
  return std::nullopt;
}

ToolOutcome InvalidArg(const std::string& field, const std::string& problem) {
  return ToolOutcome::Fail("invalid_tool_args",
                           {{"field", field}, {"problem", problem}});
}

// Reads a required string argument.
std::optional<ToolOutcome> RequiredString(const json& args, const char* field,
                                          std::string* out) {
  auto it = args.find(field);
  if (it == args.end()) return InvalidArg(field, "missing");
  if (!it->is_string()) return InvalidArg(field, "expected_string");
  const std::string& value = it->get_ref<const std::string&>();
  if (value.size() > kMaxArgBytes) return InvalidArg(field, "too_long");
  *out = value;
  return std::nullopt;
}

bool ValidDataDir(const std::string& data_dir) {
  if (data_dir.empty() || data_dir.front() == '/' ||
      data_dir.find('\0') != std::string::npos) {
    return false;
  }
  size_t pos = 0;
  while (pos <= data_dir.size()) {
    size_t slash = data_dir.find('/', pos);
    if (slash == std::string::npos) slash = data_dir.size();
    if (data_dir.compare(pos, slash - pos, "..") == 0 && slash - pos == 2) {
      return false;
    }
    pos = slash + 1;
  }
  return true;
}

struct Asset {
  std::string name;  // stem (relative path without .md for skill_graph)
  std::string rel;   // path relative to the type directory
};

struct WalkState {
  std::vector<Asset> assets;
  size_t visited = 0;
  bool truncated = false;
};

bool IsMdName(const std::string& name) {
  return name.size() > 3 && absl::EndsWith(name, ".md");
}

void Walk(int dirfd_in, const std::string& prefix, int depth, bool recursive,
          WalkState* state) {
  // fdopendir takes ownership of a duplicate so the caller keeps its fd.
  const int fd = fcntl(dirfd_in, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return;
  }
  absl::Cleanup close_dir = [dir] { closedir(dir); };
  rewinddir(dir);
  while (true) {
    const struct dirent* entry = readdir(dir);
    if (entry == nullptr) break;
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (++state->visited > kMaxAssetDirEntries) {
      state->truncated = true;
      return;
    }
    if (!IsValidUtf8(name)) continue;
    struct stat st;
    if (fstatat(dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    const std::string rel =
        prefix.empty() ? name : absl::StrCat(prefix, "/", name);
    if (S_ISREG(st.st_mode) && IsMdName(name) && st.st_nlink == 1) {
      state->assets.push_back({rel.substr(0, rel.size() - 3), rel});
    } else if (S_ISDIR(st.st_mode) && recursive &&
               depth < kMaxSkillGraphDepth) {
      UniqueFd sub(
          openat(dirfd(dir), name.c_str(),
                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!sub.valid()) continue;
      Walk(sub.get(), rel, depth + 1, recursive, state);
      if (state->visited > kMaxAssetDirEntries) return;
    }
  }
}

enum class ReadStatus { kOk, kNotFound, kTooLarge, kError };

// Reads `rel` below the type directory without following any symlink.
ReadStatus ReadAsset(int type_fd, const std::string& rel, std::string* content,
                     uint64_t* size) {
  UniqueFd opath(
      OpenAt2(type_fd, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC, kNoSymlinks));
  if (!opath.valid()) {
    return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
                   errno == EXDEV
               ? ReadStatus::kNotFound
               : ReadStatus::kError;
  }
  struct stat st;
  if (fstat(opath.get(), &st) != 0) return ReadStatus::kError;
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) return ReadStatus::kNotFound;
  *size = static_cast<uint64_t>(st.st_size);
  if (*size > kMaxAssetBytes) return ReadStatus::kTooLarge;
  const std::string proc = absl::StrCat("/proc/self/fd/", opath.get());
  UniqueFd file(
      open(proc.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!file.valid()) return ReadStatus::kError;
  content->clear();
  const size_t limit = kMaxAssetBytes + 1;
  while (content->size() < limit) {
    const size_t old = content->size();
    const size_t want = std::min<size_t>(64 * 1024, limit - old);
    content->resize(old + want);
    const ssize_t n = read(file.get(), content->data() + old, want);
    if (n < 0) {
      content->resize(old);
      if (errno == EINTR) continue;
      return ReadStatus::kError;
    }
    content->resize(old + static_cast<size_t>(n));
    if (n == 0) break;
  }
  if (content->size() > kMaxAssetBytes) {
    *size = content->size();
    return ReadStatus::kTooLarge;
  }
  *size = content->size();
  return ReadStatus::kOk;
}

// The root-relative path of an asset file as the sensitive-path policy sees
// it: data_dir's empty and "." segments dropped ("./.jido//" is ".jido"), as
// fs tools normalize the paths they check.
std::string PolicyPath(const std::string& data_dir, const AssetType& type,
                       const std::string& rel) {
  std::string out;
  for (absl::string_view segment : absl::StrSplit(data_dir, '/')) {
    if (segment.empty() || segment == ".") continue;
    absl::StrAppend(&out, segment, "/");
  }
  absl::StrAppend(&out, type.dir, "/", rel);
  return out;
}

json Item(const AssetType& type, const std::string& data_dir,
          const Asset& asset) {
  return {{"type", type.kind},
          {"name", asset.name},
          {"path", absl::StrCat(data_dir, "/", type.dir, "/", asset.rel)}};
}

class Runner {
 public:
  explicit Runner(const AssetToolContext& ctx) : ctx_(ctx) {}

  ToolOutcome Run(std::string_view tool, const json& args) {
    if (!IsAssetTool(tool)) {
      return ToolOutcome::Fail("unknown_tool", {{"tool", std::string(tool)}});
    }
    if (!args.is_object()) return InvalidArg("$", "expected_object");
    std::string type_name;
    if (auto error = RequiredString(args, "type", &type_name)) return *error;
    std::string query, key;
    if (tool == "asset.search") {
      if (auto error = RequiredString(args, "query", &query)) return *error;
    }
    if (tool == "asset.get") {
      if (auto error = RequiredString(args, "key", &key)) return *error;
      if (key.empty()) return InvalidArg("key", "empty");
      if (key.find('\0') != std::string::npos) {
        return InvalidArg("key", "contains_nul");
      }
    }
    if (type_name.empty()) {
      if (tool == "asset.get") {
        return ToolOutcome::Fail("asset_not_found",
                                 {{"type", type_name}, {"key", key}});
      }
      return ToolOutcome::Ok({{"items", json::array()}});
    }
    const std::optional<AssetType> type = ParseType(type_name);
    if (!type) {
      return ToolOutcome::Fail("invalid_asset_type", {{"type", type_name}});
    }
    if (ctx_.root.empty() || ctx_.root.front() != '/' ||
        ctx_.root.find('\0') != std::string::npos) {
      return ToolOutcome::Fail("invalid_root_path", {{"root", ctx_.root}});
    }
    if (!ValidDataDir(ctx_.data_dir)) {
      return ToolOutcome::Fail("invalid_data_dir",
                               {{"data_dir", ctx_.data_dir}});
    }
    UniqueFd root(open(ctx_.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) {
      return ToolOutcome::Fail("invalid_root_path", {{"root", ctx_.root}});
    }
    std::optional<ScopedFsIdentity> identity;
    if (ctx_.use_identity) {
      identity.emplace(ctx_.uid, ctx_.gid);
      if (!identity->ok()) {
        return ToolOutcome::Fail("internal_error",
                                 {{"problem", identity->problem()}});
      }
    }
    const std::string type_rel = absl::StrCat(ctx_.data_dir, "/", type->dir);
    UniqueFd type_fd(
        OpenAt2(root.get(), type_rel,
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                kNoSymlinks));
    if (!type_fd.valid()) {
      if (errno == ENOENT) {
        if (tool == "asset.get") {
          return ToolOutcome::Fail("asset_not_found",
                                   {{"type", type->kind}, {"key", key}});
        }
        return ToolOutcome::Ok({{"items", json::array()}});
      }
      return ToolOutcome::Fail(
          "asset_dir_unavailable",
          {{"path", type_rel}, {"errno", ErrnoSymbol(errno)}});
    }
    if (tool == "asset.get") return Get(*type, type_fd.get(), key);
    return ListOrSearch(*type, type_fd.get(), tool == "asset.search", query);
  }

 private:
  // True when the policy denies the asset file `rel` (relative to the type
  // directory, ending in ".md"): see "Safety" in the header.
  bool Sensitive(const AssetType& type, const std::string& rel) const {
    const std::string file = PolicyPath(ctx_.data_dir, type, rel);
    const std::string name = file.substr(0, file.size() - 3);
    return IsSensitivePathOrAncestor(file, ctx_.sensitive_denylist,
                                     ctx_.sensitive_allowlist) ||
           IsSensitivePathOrAncestor(name, ctx_.sensitive_denylist,
                                     ctx_.sensitive_allowlist);
  }

  ToolOutcome ListOrSearch(const AssetType& type, int type_fd, bool search,
                           const std::string& query) {
    WalkState state;
    Walk(type_fd, "", 0, type.recursive, &state);
    // Before sorting and the per-type cap: a sensitive asset is not an item,
    // its name is not matched and its content never read.
    std::erase_if(state.assets, [&](const Asset& asset) {
      return Sensitive(type, asset.rel);
    });
    std::sort(state.assets.begin(), state.assets.end(),
              [](const Asset& a, const Asset& b) { return a.name < b.name; });
    bool truncated = state.truncated;
    if (state.assets.size() > kMaxAssetsPerType) {
      state.assets.resize(kMaxAssetsPerType);
      truncated = true;
    }
    const std::string needle = absl::AsciiStrToLower(query);
    uint64_t budget = kMaxAssetSearchBytes;
    json items = json::array();
    for (const Asset& asset : state.assets) {
      if (search && !Matches(type_fd, asset, needle, &budget, &truncated)) {
        continue;
      }
      items.push_back(Item(type, ctx_.data_dir, asset));
    }
    json result = {{"items", std::move(items)}};
    if (truncated) result["truncated"] = true;
    return ToolOutcome::Ok(std::move(result));
  }

  static bool Matches(int type_fd, const Asset& asset,
                      const std::string& needle, uint64_t* budget,
                      bool* truncated) {
    if (absl::AsciiStrToLower(asset.name).find(needle) != std::string::npos) {
      return true;
    }
    if (*budget == 0) {
      *truncated = true;
      return false;
    }
    std::string content;
    uint64_t size = 0;
    if (ReadAsset(type_fd, asset.rel, &content, &size) != ReadStatus::kOk) {
      return false;  // too large, vanished or unreadable: skipped
    }
    *budget -= std::min<uint64_t>(*budget, size);
    absl::AsciiStrToLower(&content);
    return content.find(needle) != std::string::npos;
  }

  ToolOutcome Get(const AssetType& type, int type_fd, const std::string& key) {
    const json not_found = {{"type", type.kind}, {"key", key}};
    // The key must name an asset exactly: no empty, "." or ".." segments,
    // and a single segment outside skill_graph.
    size_t pos = 0;
    while (pos <= key.size()) {
      size_t slash = key.find('/', pos);
      if (slash == std::string::npos) slash = key.size();
      const std::string segment = key.substr(pos, slash - pos);
      if (segment.empty() || segment == "." || segment == "..") {
        return ToolOutcome::Fail("asset_not_found", not_found);
      }
      if (slash != key.size() && !type.recursive) {
        return ToolOutcome::Fail("asset_not_found", not_found);
      }
      pos = slash + 1;
    }
    const Asset asset{key, key + ".md"};
    // Refused before any open, so the answer does not depend on (and does
    // not reveal) whether the file exists.
    if (Sensitive(type, asset.rel)) {
      return ToolOutcome::Fail(
          "sensitive_path_denied",
          {{"type", type.kind},
           {"key", key},
           {"path", Item(type, ctx_.data_dir, asset)["path"]}});
    }
    std::string content;
    uint64_t size = 0;
    switch (ReadAsset(type_fd, asset.rel, &content, &size)) {
      case ReadStatus::kOk:
        break;
      case ReadStatus::kNotFound:
        return ToolOutcome::Fail("asset_not_found", not_found);
      case ReadStatus::kTooLarge:
        return ToolOutcome::Fail("asset_too_large", {{"type", type.kind},
                                                     {"key", key},
                                                     {"size", size},
                                                     {"max", kMaxAssetBytes}});
      case ReadStatus::kError:
        return ToolOutcome::Fail(
            "asset_not_found",
            {{"type", type.kind}, {"key", key}, {"errno", ErrnoSymbol(errno)}});
    }
    if (!IsValidUtf8(content)) {
      return ToolOutcome::Fail("asset_invalid_utf8", not_found);
    }
    json item = Item(type, ctx_.data_dir, asset);
    item["content"] = std::move(content);
    return ToolOutcome::Ok({{"asset", std::move(item)}});
  }

  const AssetToolContext& ctx_;
};

}  // namespace

bool IsAssetTool(std::string_view tool_name) {
  return tool_name == "asset.list" || tool_name == "asset.search" ||
         tool_name == "asset.get";
}

ToolOutcome RunAssetTool(const AssetToolContext& ctx,
                         std::string_view tool_name, const json& args) {
  return Runner(ctx).Run(tool_name, args);
}

}  // namespace jcs::runtime
