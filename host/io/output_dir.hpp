// OutputDir: a run's result set in the --out folder, replaced as a whole.
//
// The folder is checked when the object is made (nothing is created then, so a refused run leaves no trace),
// created and locked by open() (one pinntk run per folder at a time), and filled only by commit(): files are held
// in memory until then, written into a staging folder inside --out (so the final renames never cross file
// systems, as with a mount point), and renamed into place under a journal. The files pinntk wrote are listed in
// the folder's manifest; only those are ever replaced or removed, never a user's own files (open() refuses a folder
// whose summary.json no manifest lists; commit() renames a user's file of a result file's name NAME.orig).
// summary.json is the first file removed and the last one installed: a folder holding summary.json holds one
// complete result set. A commit that a kill interrupted is completed by the next run that opens the folder.
#pragma once

#include <nlohmann/json_fwd.hpp>  // nlohmann::json
#include <string>                 // std::string
#include <utility>                // std::pair
#include <vector>                 // std::vector

namespace pinntk {

class OutputDir {
 public:
  // Checks that `path` is, or can be created as, a writable folder; throws UsageError with the reason otherwise.
  // `command` ("train", "ntk", "reproduce") is recorded in the manifest: open() refuses a folder that holds another
  // command's result set (the two would mix), and one whose manifest names none is taken as it is.
  explicit OutputDir(const std::string& path, std::string command = "");
  ~OutputDir();  // releases the lock; removes the folders open() created when nothing was committed
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  // Creates the folder (and missing parents), takes its lock (UsageError when another run holds it), completes
  // a commit an interrupted run left and removes stale staging folders.
  void open();
  // Stages a file of the result set ("fig2/sweep.csv" names a subfolder); written at commit().
  void write(const std::string& name, const std::string& bytes);
  // Limits the replacement to earlier files under these prefixes (e.g. "fig3/"); earlier files elsewhere stay
  // part of the result set. By default every earlier file is replaced.
  void replace_only(std::vector<std::string> prefixes);
  // Installs the staged files as the folder's result set.
  void commit();

  const std::string& path() const { return path_; }
  // The path of a file in the folder that is not part of the result set (a resume state).
  std::string file(const std::string& name) const;
  // A file of the earlier result set (manifest-listed) read back, or "" when there is none.
  std::string previous(const std::string& name) const;

 private:
  // The earlier result set's files, and (when asked) the command that wrote them ("" when the manifest names none).
  std::vector<std::string> manifest_(std::string* command = nullptr) const;
  void roll_forward_(const nlohmann::json& j);  // carries out a journaled commit
  std::string path_, command_;
  std::vector<std::string> created_;  // folders open() made, outermost first
  std::vector<std::pair<std::string, std::string>> files_;
  std::vector<std::string> scope_;
  int lock_fd_ = -1;
  bool committed_ = false;
};

}  // namespace pinntk
