// OutputDir: collects a run's files in a hidden staging folder beside the target and moves them into place
// only on commit(), so an interrupted or failed run never leaves a half-written output folder.
#pragma once

#include <string>  // std::string

namespace pinntk {

class OutputDir {
 public:
  // Checks that `path` can be created or written; throws UsageError with the reason otherwise.
  explicit OutputDir(const std::string& path);
  ~OutputDir();  // removes the staging folder if commit() was not reached
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  void write(const std::string& name, const std::string& bytes);
  // Moves every staged file into the target folder (creating it), replacing files of the same name.
  void commit();
  const std::string& path() const { return path_; }
  // Where an unfinished file of this name lives (for writers that stream, like history.csv).
  std::string staged(const std::string& name) const;

 private:
  std::string path_, stage_;
  bool committed_ = false;
};

}  // namespace pinntk
