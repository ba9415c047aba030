#include "host/io/output_dir.hpp"

#include <fcntl.h>     // open, O_*
#include <sys/file.h>  // flock
#include <unistd.h>    // access, close, getpid

#include <algorithm>          // std::find, std::stable_partition
#include <cerrno>             // errno
#include <cstdio>             // std::fprintf
#include <filesystem>         // std::filesystem
#include <nlohmann/json.hpp>  // nlohmann::json
#include <stdexcept>          // std::runtime_error
#include <utility>            // std::move

#include "common/errors.hpp"      // UsageError
#include "host/io/files.hpp"      // write_new_file, replace_file, read_regular_file
#include "host/io/interrupt.hpp"  // interrupt_remove_if_empty

namespace fs = std::filesystem;
using nlohmann::json;

namespace pinntk {
namespace {

constexpr const char* kManifest = ".pinntk-manifest.json";
constexpr const char* kJournal = ".pinntk-commit.json";
constexpr const char* kStagePrefix = ".pinntk-stage-";
constexpr const char* kMarker = "summary.json";  // removed first, installed last
constexpr size_t kMetaLimit = size_t{64} << 20;

// A name pinntk may write or remove: relative, inside the folder, no "." or ".." parts.
bool safe_name(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  for (const auto& part : fs::path(name)) {
    const std::string s = part.string();
    if (s.empty() || s == "." || s == "..") return false;
  }
  return true;
}

std::vector<std::string> names_of(const json& j, const char* key, const std::string& origin) {
  if (!j.contains(key) || !j[key].is_array()) throw UsageError(origin + ": no list \"" + key + "\"");
  std::vector<std::string> out;
  for (const auto& v : j[key]) {
    if (!v.is_string() || !safe_name(v.get<std::string>()))
      throw UsageError(origin + ": \"" + key + "\" holds a name outside the folder");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// The marker last (removal takes it first) so that summary.json present means a complete set.
void marker_last(std::vector<std::string>& names) {
  std::stable_partition(names.begin(), names.end(), [](const std::string& n) { return n != kMarker; });
}

// A leftover of an interrupted write: "NAME.tmp-PID" of one of the folder's own files, or a staging folder.
bool stale_entry(const std::string& name) {
  if (name.rfind(kStagePrefix, 0) == 0) return true;
  const auto tmp = name.rfind(".tmp-");
  if (tmp == std::string::npos || tmp + 5 == name.size()) return false;
  if (name.find_first_not_of("0123456789", tmp + 5) != std::string::npos) return false;
  const std::string base = name.substr(0, tmp);
  return base == kManifest || base == kJournal || base == "resume.json";
}

}  // namespace

OutputDir::OutputDir(const std::string& path, std::string command) : command_(std::move(command)) {
  if (path.empty()) throw UsageError("--out: empty path");
  std::error_code ec;
  fs::path target = fs::absolute(path, ec);
  if (ec) throw UsageError("--out " + path + ": " + ec.message());
  target = target.lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  if (fs::is_symlink(fs::symlink_status(target, ec)) && !fs::exists(target, ec))
    throw UsageError("--out " + path + ": is a symbolic link to a missing folder (" +
                     fs::read_symlink(target, ec).string() + ")");
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec)) throw UsageError("--out " + path + ": exists and is not a directory");
    if (access(target.c_str(), W_OK | X_OK) != 0) throw UsageError("--out " + path + ": not writable");
  } else {
    fs::path up = target.parent_path();
    while (!fs::exists(up, ec) && up.has_parent_path() && up != up.parent_path()) up = up.parent_path();
    if (!fs::is_directory(up, ec))
      throw UsageError("--out " + path + ": cannot be created (" + up.string() + " is not a directory)");
    if (access(up.c_str(), W_OK | X_OK) != 0)
      throw UsageError("--out " + path + ": cannot be created (" + up.string() + " is not writable)");
  }
  path_ = target.string();
}

OutputDir::~OutputDir() {
  if (lock_fd_ >= 0) close(lock_fd_);
  if (!committed_) {
    std::error_code ec;
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) fs::remove(*it, ec);  // only when empty
  }
}

std::string OutputDir::file(const std::string& name) const { return (fs::path(path_) / name).string(); }

void OutputDir::open() {
  if (lock_fd_ >= 0) return;
  std::vector<fs::path> missing;
  for (fs::path p = path_; !fs::exists(p) && p.has_parent_path() && p != p.parent_path(); p = p.parent_path())
    missing.push_back(p);
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    std::error_code ec;
    if (fs::create_directory(*it, ec)) created_.push_back(it->string());
    if (ec) throw UsageError("--out " + path_ + ": cannot create " + it->string() + " (" + ec.message() + ")");
  }
  interrupt_remove_if_empty(created_);  // a run ended by a signal leaves no empty folder either
  lock_fd_ = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0) throw UsageError("--out " + path_ + ": cannot open the folder");
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    throw UsageError("--out " + path_ + ": another pinntk run is writing to this folder");
  // Under the lock nothing else writes here: finish what a killed run left, then drop its leftovers.
  if (fs::exists(file(kJournal))) {
    const json j = json::parse(read_regular_file(file(kJournal), "--out", kMetaLimit), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("stage") || !j["stage"].is_string())
      throw UsageError("--out " + path_ + ": " + kJournal + " is damaged; remove it and the folder's " + kStagePrefix +
                       "* folders");
    roll_forward_(j);
  }
  for (const auto& entry : fs::directory_iterator(path_)) {
    if (!stale_entry(entry.path().filename().string())) continue;
    std::error_code ec;
    fs::remove_all(entry.path(), ec);
  }
  // Every result set has a summary.json: one that no manifest lists is someone else's, and the folder is not ours.
  std::error_code ec;
  std::string before;
  const std::vector<std::string> old = manifest_(&before);
  if (!command_.empty() && !before.empty() && before != command_)
    throw UsageError("--out " + path_ + ": holds the results of pinntk " + before + "; pinntk " + command_ +
                     " writes a folder of its own: choose another --out");
  if (fs::exists(fs::symlink_status(file(kMarker), ec)) && std::find(old.begin(), old.end(), kMarker) == old.end())
    throw UsageError("--out " + path_ +
                     ": holds a summary.json that no pinntk run wrote here (no manifest lists it); "
                     "pinntk never replaces a file of yours: move it or choose another --out");
}

std::vector<std::string> OutputDir::manifest_(std::string* command) const {
  if (command != nullptr) command->clear();
  if (!fs::exists(file(kManifest))) return {};
  const std::string origin = "--out " + path_ + ": " + kManifest;
  const json j = json::parse(read_regular_file(file(kManifest), "--out", kMetaLimit), nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != "pinntk-manifest-v1")
    throw UsageError(origin + " is damaged; remove it (pinntk then replaces only files of the same names)");
  if (command != nullptr && j.contains("command") && j["command"].is_string()) *command = j["command"];
  return names_of(j, "files", origin);
}

std::string OutputDir::previous(const std::string& name) const {
  const std::vector<std::string> old = manifest_();
  if (std::find(old.begin(), old.end(), name) == old.end() || !fs::is_regular_file(file(name))) return "";
  return read_regular_file(file(name), "--out", kMetaLimit);
}

void OutputDir::write(const std::string& name, const std::string& bytes) {
  if (!safe_name(name) || name.rfind(".pinntk-", 0) == 0)
    throw std::invalid_argument("OutputDir: '" + name + "' is not a result file name");
  for (auto& f : files_)
    if (f.first == name) {
      f.second = bytes;
      return;
    }
  files_.emplace_back(name, bytes);
}

void OutputDir::replace_only(std::vector<std::string> prefixes) { scope_ = std::move(prefixes); }

void OutputDir::commit() {
  open();
  const std::string stage_name = kStagePrefix + std::to_string(getpid());
  const fs::path stage = fs::path(path_) / stage_name;
  std::error_code ec;
  fs::remove_all(stage, ec);
  if (!fs::create_directory(stage, ec) || ec)
    throw std::runtime_error("cannot create " + stage.string() + ": " + ec.message());
  std::vector<std::string> install;
  try {
    for (auto& f : files_) {
      const fs::path dest = stage / f.first;
      fs::create_directories(dest.parent_path(), ec);
      write_new_file(dest.string(), f.second);
      std::string().swap(f.second);  // written: release the memory
      install.push_back(f.first);
    }
  } catch (...) {
    fs::remove_all(stage, ec);
    throw;
  }
  const std::vector<std::string> old = manifest_();
  // A file of the same name that no manifest lists is the user's: kept, renamed NAME.orig (NAME.orig.2, ...).
  for (const auto& n : install) {
    if (std::find(old.begin(), old.end(), n) != old.end() || !fs::exists(fs::symlink_status(file(n), ec))) continue;
    std::string kept = n + ".orig";
    for (int k = 2; fs::exists(fs::symlink_status(file(kept), ec)); ++k) kept = n + ".orig." + std::to_string(k);
    fs::rename(file(n), file(kept), ec);
    if (ec) {
      fs::remove_all(stage, ec);
      throw UsageError("--out " + path_ + ": holds a " + n +
                       " that no pinntk run wrote here, and it cannot be moved "
                       "aside (" +
                       ec.message() + "): move it or choose another --out");
    }
    std::fprintf(stderr, "pinntk: note: %s was not written by pinntk: kept as %s\n", file(n).c_str(),
                 file(kept).c_str());
  }
  auto in_scope = [&](const std::string& n) {
    if (scope_.empty() || std::find(install.begin(), install.end(), n) != install.end()) return true;
    for (const auto& p : scope_)
      if (n == p || n.rfind(p, 0) == 0) return true;
    return false;
  };
  std::vector<std::string> remove, manifest = install;
  for (const auto& n : old) {
    if (in_scope(n)) {
      remove.push_back(n);
    } else if (fs::exists(file(n))) {
      manifest.push_back(n);
    }
  }
  json j = {{"stage", stage_name}, {"install", install}, {"remove", remove}, {"manifest", manifest}};
  if (!command_.empty()) j["command"] = command_;
  replace_file(file(kJournal), j.dump() + "\n");
  roll_forward_(j);
  committed_ = true;
  interrupt_remove_if_empty({});
}

// Carries out a journaled commit; every step tolerates having been done already (a rerun after a kill). The
// journal is rewritten once the removals are done, so that a rerun never removes a file it already installed.
void OutputDir::roll_forward_(const json& j) {
  const std::string origin = "--out " + path_ + ": " + kJournal;
  const std::string stage_name = j["stage"].get<std::string>();
  if (stage_name.rfind(kStagePrefix, 0) != 0 || !safe_name(stage_name))
    throw UsageError(origin + " names a staging folder outside the folder");
  std::vector<std::string> remove = names_of(j, "remove", origin), install = names_of(j, "install", origin);
  const std::vector<std::string> manifest = names_of(j, "manifest", origin);
  std::stable_partition(remove.begin(), remove.end(), [](const std::string& n) { return n == kMarker; });
  marker_last(install);
  std::error_code ec;
  for (const auto& n : remove) {
    const auto st = fs::symlink_status(file(n), ec);
    if (fs::is_regular_file(st) || fs::is_symlink(st)) fs::remove(file(n), ec);
  }
  if (!remove.empty()) {  // removals done: a rerun must not remove the files installed from here on
    json next = j;
    next["remove"] = json::array();
    next["removed"] = remove;
    replace_file(file(kJournal), next.dump() + "\n");
  }
  const fs::path stage = fs::path(path_) / stage_name;
  for (const auto& n : install) {
    const fs::path src = stage / n, dest = fs::path(file(n));
    if (!fs::exists(fs::symlink_status(src, ec))) continue;  // installed before the interruption
    fs::create_directories(dest.parent_path(), ec);
    fs::rename(src, dest, ec);
    if (ec) throw std::runtime_error("cannot move " + n + " into " + path_ + ": " + ec.message());
  }
  json m = {{"format", "pinntk-manifest-v1"}, {"files", manifest}};
  if (j.contains("command") && j["command"].is_string()) m["command"] = j["command"];
  replace_file(file(kManifest), m.dump() + "\n");
  fs::remove(file(kJournal), ec);
  fs::remove_all(stage, ec);
  // Subfolders that held only removed files go too (a folder with a user's file in it stays).
  if (j.contains("removed")) {
    const std::vector<std::string> removed = names_of(j, "removed", origin);
    remove.insert(remove.end(), removed.begin(), removed.end());
  }
  for (const auto& n : remove)
    for (fs::path d = fs::path(n).parent_path(); !d.empty(); d = d.parent_path()) fs::remove(fs::path(path_) / d, ec);
}

}  // namespace pinntk
