#include "host/io/output_dir.hpp"

#include <unistd.h>  // getpid, access

#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream

#include "host/errors.hpp"  // UsageError

namespace fs = std::filesystem;

namespace pinntk {

OutputDir::OutputDir(const std::string& path) : path_(path) {
  if (path.empty()) throw UsageError("--out: empty path");
  std::error_code ec;
  fs::path target = fs::absolute(path, ec);
  if (ec) throw UsageError("--out " + path + ": " + ec.message());
  target = target.lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  if (fs::exists(target, ec) && !fs::is_directory(target, ec))
    throw UsageError("--out " + path + ": exists and is not a directory");
  const fs::path parent = target.parent_path();
  fs::create_directories(parent, ec);
  if (ec) throw UsageError("--out " + path + ": cannot create " + parent.string() + " (" + ec.message() + ")");
  if (access(parent.c_str(), W_OK) != 0) throw UsageError("--out " + path + ": " + parent.string() + " is not writable");
  if (fs::exists(target, ec) && access(target.c_str(), W_OK) != 0)
    throw UsageError("--out " + path + ": not writable");
  stage_ = (parent / ("." + target.filename().string() + ".partial-" + std::to_string(getpid()))).string();
  fs::remove_all(stage_, ec);
  if (!fs::create_directory(stage_, ec) || ec)
    throw UsageError("--out " + path + ": cannot create a staging folder in " + parent.string());
  path_ = target.string();
}

OutputDir::~OutputDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(stage_, ec);
  }
}

std::string OutputDir::staged(const std::string& name) const { return (fs::path(stage_) / name).string(); }

void OutputDir::write(const std::string& name, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(fs::path(staged(name)).parent_path(), ec);  // names may hold subfolders: "fig2/sweep.csv"
  std::ofstream out(staged(name), std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + staged(name));
}

void OutputDir::commit() {
  std::error_code ec;
  if (!fs::exists(path_)) {
    fs::rename(stage_, path_, ec);
    if (ec) throw std::runtime_error("cannot move results into " + path_ + ": " + ec.message());
  } else {
    for (const auto& entry : fs::directory_iterator(stage_)) {
      const fs::path dest = fs::path(path_) / entry.path().filename();
      if (fs::is_directory(dest)) fs::remove_all(dest, ec);  // a subfolder is replaced whole
      fs::rename(entry.path(), dest, ec);
      if (ec) throw std::runtime_error("cannot move results into " + path_ + ": " + ec.message());
    }
    fs::remove_all(stage_, ec);
  }
  committed_ = true;
}

}  // namespace pinntk
