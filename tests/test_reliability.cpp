// Reliability classes: result sets replaced as a whole and never a user's file, temporary files that follow no
// planted symlink and leave nothing on a full disk, bounded reads, resume files checked field by field, and runs
// whose loss stops being finite stopped with the last finite network kept (L-BFGS here; Adam on every backend in
// test_train.cpp).
#include <gtest/gtest.h>
#include <signal.h>        // signal, SIGXFSZ
#include <sys/resource.h>  // setrlimit

#include <cmath>              // std::isfinite
#include <filesystem>         // std::filesystem
#include <fstream>            // std::ofstream
#include <nlohmann/json.hpp>  // nlohmann::json

#include "common/errors.hpp"       // UsageError
#include "host/io/files.hpp"       // replace_file, read_regular_file
#include "host/io/output_dir.hpp"  // OutputDir
#include "host/memory.hpp"         // available_memory_bytes_under
#include "host/optim/lbfgs.hpp"    // minimize_lbfgs
#include "host/train.hpp"          // TrainState, train_state_json, load_train_state
#include "tests/slurp.hpp"         // slurp

namespace fs = std::filesystem;

namespace pinntk {
namespace {

fs::path fresh(const std::string& name) {
  const fs::path p = fs::path(PINNTK_TEST_TMP) / "reliability" / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p;
}

void put(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

// --- result sets -----------------------------------------------------------------------------------------------

TEST(OutputDir, ARefusedOrFailedRunLeavesNoFolder) {
  const fs::path root = fresh("refused");
  { OutputDir out((root / "a" / "b").string()); }  // checked only
  EXPECT_FALSE(fs::exists(root));
  {
    OutputDir out((root / "a" / "b").string());
    out.open();
    EXPECT_TRUE(fs::is_directory(root / "a" / "b"));
    out.write("summary.json", "{}");
  }  // never committed: the folders it made go again
  EXPECT_FALSE(fs::exists(root));
}

TEST(OutputDir, ReplacesItsOwnFilesAndNeverAUsersFile) {
  const fs::path dir = fresh("replace");
  {
    OutputDir out(dir.string());
    out.write("J.npy", "J");
    out.write("sub/a.csv", "a1");
    out.write("summary.json", "{\"run\":1}");
    out.commit();
  }
  put(dir / "notes.txt", "mine");
  put(dir / "sub" / "mine.txt", "mine too");
  {
    OutputDir out(dir.string());
    out.write("sub/a.csv", "a2");
    out.write("summary.json", "{\"run\":2}");
    out.commit();
  }
  EXPECT_FALSE(fs::exists(dir / "J.npy"));  // the earlier run's file the new one does not write
  EXPECT_EQ(slurp(dir / "sub" / "a.csv"), "a2");
  EXPECT_EQ(slurp(dir / "summary.json"), "{\"run\":2}");
  EXPECT_EQ(slurp(dir / "notes.txt"), "mine");
  EXPECT_EQ(slurp(dir / "sub" / "mine.txt"), "mine too");
  for (const auto& e : fs::directory_iterator(dir))  // no staging folder, journal or temporary left
    EXPECT_TRUE(e.path().filename() == ".pinntk-manifest.json" || e.path().filename().string()[0] != '.') << e.path();
}

// A user's file with a result file's name is never replaced: a foreign summary.json refuses the folder before any
// work; another name is kept as NAME.orig (NAME.orig.2, ...) when the result set is installed.
TEST(OutputDir, AUsersFileOfAResultFilesNameIsKept) {
  const fs::path dir = fresh("users_names");
  put(dir / "summary.json", "{\"mine\":1}");
  {
    OutputDir out(dir.string());
    EXPECT_THROW(out.open(), UsageError);
  }
  EXPECT_EQ(slurp(dir / "summary.json"), "{\"mine\":1}");
  fs::remove(dir / "summary.json");
  put(dir / "history.csv", "mine");
  put(dir / "history.csv.orig", "mine, older");
  put(dir / "sub" / "a.csv", "mine in sub");
  {
    OutputDir out(dir.string());
    out.open();
    out.write("history.csv", "run 1");
    out.write("sub/a.csv", "a1");
    out.write("summary.json", "{\"run\":1}");
    out.commit();
  }
  EXPECT_EQ(slurp(dir / "history.csv"), "run 1");
  EXPECT_EQ(slurp(dir / "history.csv.orig"), "mine, older");
  EXPECT_EQ(slurp(dir / "history.csv.orig.2"), "mine");
  EXPECT_EQ(slurp(dir / "sub" / "a.csv"), "a1");
  EXPECT_EQ(slurp(dir / "sub" / "a.csv.orig"), "mine in sub");
  {  // the run's own files are replaced as before, the kept ones stay
    OutputDir out(dir.string());
    out.write("history.csv", "run 2");
    out.write("summary.json", "{\"run\":2}");
    out.commit();
  }
  EXPECT_EQ(slurp(dir / "history.csv"), "run 2");
  EXPECT_FALSE(fs::exists(dir / "history.csv.orig.3"));
  EXPECT_FALSE(fs::exists(dir / "sub" / "a.csv"));  // run 1's file, not written by run 2
  EXPECT_EQ(slurp(dir / "sub" / "a.csv.orig"), "mine in sub");
  EXPECT_EQ(slurp(dir / "history.csv.orig.2"), "mine");
}

// One command's result set per folder: `reproduce` into a `train` folder would mix the two.
TEST(OutputDir, AFolderHoldsTheResultsOfOneCommand) {
  const fs::path dir = fresh("one_command");
  {
    OutputDir out(dir.string(), "train");
    out.write("summary.json", "{\"run\":1}");
    out.commit();
  }
  {
    OutputDir out(dir.string(), "reproduce");
    EXPECT_THROW(out.open(), UsageError);
  }
  {
    OutputDir out(dir.string(), "train");  // the same command replaces its set
    out.write("summary.json", "{\"run\":2}");
    out.commit();
  }
  EXPECT_EQ(slurp(dir / "summary.json"), "{\"run\":2}");
  {
    OutputDir out(dir.string());  // a caller that names no command
    out.write("summary.json", "{\"run\":3}");
    out.commit();
  }
  {
    OutputDir out(dir.string(), "ntk");  // a manifest that names no command is taken as it is
    out.write("summary.json", "{\"run\":4}");
    out.commit();
  }
  EXPECT_EQ(slurp(dir / "summary.json"), "{\"run\":4}");
}

// A dangling symbolic link as --out: one line saying so (creating the folder would fail with "File exists").
TEST(OutputDir, ADanglingSymlinkIsRefusedByName) {
  const fs::path dir = fresh("dangling");
  fs::create_directories(dir);
  fs::create_directory_symlink(dir / "missing", dir / "link");
  try {
    OutputDir out((dir / "link").string());
    FAIL() << "a dangling link was taken";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("symbolic link to a missing folder"), std::string::npos) << e.what();
  }
}

TEST(OutputDir, AScopedCommitKeepsTheOtherPartsOfTheSet) {
  const fs::path dir = fresh("scope");
  {
    OutputDir out(dir.string());
    out.write("fig2/sweep.csv", "2");
    out.write("fig3/spectra.csv", "3");
    out.write("summary.json", "{}");
    out.commit();
  }
  {
    OutputDir out(dir.string());
    out.replace_only({"fig3/"});
    EXPECT_EQ(out.previous("summary.json"), "{}");
    out.write("fig3/other.csv", "3b");
    out.write("summary.json", "{\"fig3\":1}");
    out.commit();
  }
  EXPECT_EQ(slurp(dir / "fig2" / "sweep.csv"), "2");
  EXPECT_FALSE(fs::exists(dir / "fig3" / "spectra.csv"));
  EXPECT_EQ(slurp(dir / "fig3" / "other.csv"), "3b");
  // The kept file stays in the manifest: a later full replacement removes it.
  {
    OutputDir out(dir.string());
    out.write("summary.json", "{}");
    out.commit();
  }
  EXPECT_FALSE(fs::exists(dir / "fig2"));
}

TEST(OutputDir, OneWriterAtATime) {
  const fs::path dir = fresh("lock");
  OutputDir first(dir.string());
  first.open();
  OutputDir second(dir.string());
  EXPECT_THROW(second.open(), UsageError);
}

// The folder as a run killed in the middle of its commit leaves it: the earlier set {checkpoint, stale, summary}
// is being replaced by {checkpoint, history, summary}. With removals pending, summary.json is already gone; with
// removals done, checkpoint.json is already installed.
void interrupted_commit(const fs::path& dir, bool removals_done) {
  {
    OutputDir out(dir.string());
    out.write("checkpoint.json", "old");
    out.write("stale.csv", "old");
    out.write("summary.json", "old");
    out.commit();
  }
  nlohmann::json j = {{"stage", ".pinntk-stage-424242"},
                      {"install", {"checkpoint.json", "history.csv", "summary.json"}},
                      {"remove", {"summary.json", "checkpoint.json", "stale.csv"}},
                      {"manifest", {"checkpoint.json", "history.csv", "summary.json"}}};
  fs::remove(dir / "summary.json");
  put(dir / ".pinntk-stage-424242" / "history.csv", "new");
  put(dir / ".pinntk-stage-424242" / "summary.json", "new");
  if (removals_done) {
    fs::remove(dir / "stale.csv");
    fs::remove(dir / "checkpoint.json");
    put(dir / "checkpoint.json", "new");
    j["removed"] = j["remove"];
    j["remove"] = nlohmann::json::array();
  } else {
    put(dir / ".pinntk-stage-424242" / "checkpoint.json", "new");
  }
  put(dir / ".pinntk-commit.json", j.dump());
  put(dir / ".pinntk-stage-777" / "x", "an older crash");
  put(dir / "resume.json.tmp-31337", "truncated");
}

TEST(OutputDir, TheNextRunCompletesAnInterruptedCommitAndDropsLeftovers) {
  for (bool removals_done : {false, true}) {
    const fs::path dir = fresh(removals_done ? "interrupted_installing" : "interrupted_removing");
    interrupted_commit(dir, removals_done);
    {
      OutputDir out(dir.string());
      out.open();
    }
    EXPECT_EQ(slurp(dir / "checkpoint.json"), "new");
    EXPECT_EQ(slurp(dir / "history.csv"), "new");
    EXPECT_EQ(slurp(dir / "summary.json"), "new");
    EXPECT_FALSE(fs::exists(dir / "stale.csv"));
    for (const char* gone :
         {".pinntk-commit.json", ".pinntk-stage-424242", ".pinntk-stage-777", "resume.json.tmp-31337"})
      EXPECT_FALSE(fs::exists(dir / gone)) << gone;
  }
}

TEST(OutputDir, AnEditedManifestCannotReachOutsideTheFolder) {
  const fs::path dir = fresh("escape");
  put(dir.parent_path() / "escape_victim.txt", "precious");
  put(dir / ".pinntk-manifest.json", R"({"format":"pinntk-manifest-v1","files":["../escape_victim.txt"]})");
  OutputDir out(dir.string());
  out.write("summary.json", "{}");
  EXPECT_THROW(out.commit(), UsageError);
  EXPECT_EQ(slurp(dir.parent_path() / "escape_victim.txt"), "precious");
}

// --- files -----------------------------------------------------------------------------------------------------

TEST(Files, APlantedSymlinkIsReplacedNotFollowed) {
  const fs::path dir = fresh("symlink");
  fs::create_directories(dir);
  put(dir / "victim.txt", "precious");
  const fs::path target = dir / "state.json";
  fs::create_symlink(dir / "victim.txt", target.string() + ".tmp-" + std::to_string(getpid()));
  fs::create_symlink(dir / "victim.txt", target);
  replace_file(target.string(), "state");
  EXPECT_EQ(slurp(dir / "victim.txt"), "precious");
  EXPECT_FALSE(fs::is_symlink(target));
  EXPECT_EQ(slurp(target), "state");
}

TEST(Files, AFailedWriteKeepsTheOldFileAndLeavesNoTemporary) {
  const fs::path dir = fresh("full");
  fs::create_directories(dir);
  const fs::path target = dir / "state.json";
  put(target, "old state");
  // A file-size limit stands in for a full disk: write() fails part way (EFBIG) instead of killing the process.
  signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit tiny = old;
  tiny.rlim_cur = 1000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tiny), 0);
  EXPECT_THROW(replace_file(target.string(), std::string(5000, 'x')), std::runtime_error);
  setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_EQ(slurp(target), "old state");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename() != "state.json";
  EXPECT_EQ(entries, 0);
}

TEST(Files, ReadsOnlyBoundedRegularFiles) {
  EXPECT_THROW(read_regular_file("/dev/zero", "checkpoint", 1 << 20), UsageError);
  EXPECT_THROW(read_regular_file(PINNTK_TEST_TMP, "checkpoint", 1 << 20), UsageError);
  const fs::path p = fresh("bounded");
  put(p, std::string(100, 'a'));
  EXPECT_THROW(read_regular_file(p.string(), "checkpoint", 99), UsageError);
  EXPECT_EQ(read_regular_file(p.string(), "checkpoint", 100).size(), 100u);
}

// --- resume files ----------------------------------------------------------------------------------------------

class ResumeFile : public ::testing::Test {
 protected:
  void SetUp() override {
    st.iteration = 40;
    st.adam_step = 40;
    st.theta.assign(kParams, 0.5);
    st.m.assign(kParams, 0.1);
    st.v.assign(kParams, 0.2);
    st.history.push_back({0, "adam", 1e-3, 1.0, 0.9, 0.1, 0.5, 0.01});
    st.history.push_back({20, "adam", 1e-3, 0.5, 0.4, 0.1, 0.3, 0.02});
    st.elapsed_s = 3.5;
  }
  // Writes the state with one field edited and loads it against a 60-step schedule.
  TrainState load_edited(const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(train_state_json(st, "{\"run\":1}"));
    edit(j);
    const fs::path p = fresh("state.json");
    put(p, j.dump());
    return load_train_state(p.string(), "{\"run\":1}", kParams, 60, 20);
  }
  static constexpr long kParams = 7;
  TrainState st;
};

TEST_F(ResumeFile, AnIntactFileLoads) {
  const TrainState back = load_edited([](nlohmann::json&) {});
  EXPECT_EQ(back.theta, st.theta);
  EXPECT_EQ(back.history.size(), 2u);
  EXPECT_EQ(back.elapsed_s, 3.5);
  // A file of an earlier version has no elapsed_s: the clock goes on from its last history row's time.
  EXPECT_EQ(load_edited([](nlohmann::json& j) { j.erase("elapsed_s"); }).elapsed_s, 0.02);
}

TEST_F(ResumeFile, EveryEditedFieldIsRefused) {
  using J = nlohmann::json;
  const std::vector<std::function<void(J&)>> edits = {
      [](J& j) { j["theta"] = std::vector<double>(7000, 1.0); },  // would overflow the parameter vector
      [](J& j) { j["theta"] = std::vector<double>(3, 1.0); },
      [](J& j) { j["m"] = std::vector<double>(6, 1.0); },
      [](J& j) { j["v"] = std::vector<double>(8, 1.0); },
      [](J& j) { j["v"][0] = -1.0; },
      [](J& j) { j["theta"][2] = nullptr; },  // how NaN is written
      [](J& j) { j["iteration"] = -1; },
      [](J& j) { j["iteration"] = 61; },
      [](J& j) { j["iteration"] = 40.5; },
      [](J& j) { j["adam_step"] = -3; },
      [](J& j) { j["adam_step"] = 39; },
      [](J& j) { j.erase("m"); },
      [](J& j) { j["history"][1][0] = 50; },  // after the state's own iteration
      [](J& j) {
        j["history"][0] = J::array({0, "adam"});
      },
      [](J& j) { j["history"][1][3] = "loss"; },
      [](J& j) { j["format"] = "pinntk-mlp-v1"; },
      [](J& j) { j["elapsed_s"] = -1.0; },
      [](J& j) { j["history"] = J::array(); },  // rows removed: the resumed history.csv would lack them
      [](J& j) { j["history"].erase(1); },
      [](J& j) { j["history"][1][0] = 10; },  // a row where --history-every 20 puts none
      [](J& j) { j["elapsed_s"] = "soon"; },
  };
  for (size_t i = 0; i < edits.size(); ++i) EXPECT_THROW(load_edited(edits[i]), UsageError) << "edit " << i;
}

// --- runs whose loss stops being finite ------------------------------------------------------------------------

TEST(Divergence, LbfgsStopsAtANonFiniteTrialPoint) {
  // f(x) = 1000 x^2 for x >= 1, infinite below: the first line search overshoots.
  std::vector<double> x = {1.5};
  LbfgsConfig cfg;
  cfg.max_iter = 50;
  const LbfgsResult r = minimize_lbfgs(
      x,
      [](span<const double> v, span<double> g) -> double {
        if (v[0] < 1.0) {
          g[0] = NAN;
          return HUGE_VAL;
        }
        g[0] = 2.0 * v[0] * 1000.0;
        return 1000.0 * v[0] * v[0];
      },
      cfg);
  EXPECT_TRUE(r.non_finite) << r.stop;
  EXPECT_TRUE(std::isfinite(r.loss));
  EXPECT_GE(x[0], 1.0);
}

TEST(Divergence, TheProblemRefusesCoefficientsBeyondDoublePrecision) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.omega = 1e308;  // a'(y)/eps overflows
  spec.nc = 16;
  EXPECT_THROW(build_points(spec), UsageError);
  ProblemSpec wide = problem_preset("poisson-twoscale");
  wide.xa = -1e308;
  wide.xb = 1e308;
  EXPECT_THROW(build_points(wide), UsageError);
}

// The memory a run may take: MemAvailable, lowered by a cgroup limit below the machine's memory to the limit less the
// usage that is not file cache; a limit at or above MemTotal, "max", or missing files leave MemAvailable.
// --memory-limit's sizes: binary units in either case, with or without B or iB; anything else one line.
TEST(Memory, SizesTakeBinaryUnitsInAnySpelling) {
  const double g = 1024.0 * 1024 * 1024;
  for (const char* t : {"8G", "8g", "8GB", "8gb", "8GiB", "8gib", "8gB"})
    EXPECT_EQ(static_cast<double>(parse_bytes(t, "--memory-limit")), 8 * g) << t;
  EXPECT_EQ(parse_bytes("512M", "x"), 512u << 20);
  EXPECT_EQ(parse_bytes("512MiB", "x"), 512u << 20);
  EXPECT_EQ(parse_bytes("2k", "x"), 2048u);
  EXPECT_EQ(parse_bytes("1.5K", "x"), 1536u);
  EXPECT_EQ(parse_bytes("100B", "x"), 100u);
  EXPECT_EQ(parse_bytes("1e9", "x"), 1000000000u);
  EXPECT_EQ(parse_bytes("1T", "x"), uint64_t{1} << 40);
  for (const char* t : {"lots", "8GG", "8iB", "8X", "8Gb2", "-1G", "0", "G", ""})
    EXPECT_THROW(parse_bytes(t, "--memory-limit"), UsageError) << t;
}

TEST(Memory, AvailableMemoryFollowsMeminfoAndCgroupLimits) {
  const fs::path root = fresh("meminfo");
  const uint64_t GiB = uint64_t{1} << 30;
  put(root / "proc/meminfo", "MemTotal:       16777216 kB\nMemFree:         1048576 kB\nMemAvailable:    8388608 kB\n");
  EXPECT_EQ(available_memory_bytes_under(root.string()), 8 * GiB);  // no cgroup files
  // v2: 4 GiB limit, 3.5 GiB used of which 1 GiB inactive and 0.5 GiB active file cache: 2 GiB left.
  put(root / "sys/fs/cgroup/memory.max", std::to_string(4 * GiB) + "\n");
  put(root / "sys/fs/cgroup/memory.current", std::to_string(7 * GiB / 2) + "\n");
  put(root / "sys/fs/cgroup/memory.stat",
      "anon 1000\nfile 99\ninactive_file " + std::to_string(GiB) + "\nactive_file " + std::to_string(GiB / 2) + "\n");
  EXPECT_EQ(available_memory_bytes_under(root.string()), 2 * GiB);
  // A limit at or above MemTotal (a machine's root, say) is not a constraint: MemAvailable again.
  put(root / "sys/fs/cgroup/memory.max", std::to_string(16 * GiB) + "\n");
  put(root / "sys/fs/cgroup/memory.current", std::to_string(40 * GiB) + "\n");
  EXPECT_EQ(available_memory_bytes_under(root.string()), 8 * GiB);
  put(root / "sys/fs/cgroup/memory.max", "max\n");
  EXPECT_EQ(available_memory_bytes_under(root.string()), 8 * GiB);
  // Usage beyond the limit after the cache: nothing left. v1 files beside are read the same way.
  put(root / "sys/fs/cgroup/memory.max", std::to_string(2 * GiB) + "\n");
  EXPECT_EQ(available_memory_bytes_under(root.string()), 0u);
  fs::remove(root / "sys/fs/cgroup/memory.max");
  put(root / "sys/fs/cgroup/memory/memory.limit_in_bytes", std::to_string(6 * GiB) + "\n");
  put(root / "sys/fs/cgroup/memory/memory.usage_in_bytes", std::to_string(3 * GiB) + "\n");
  put(root / "sys/fs/cgroup/memory/memory.stat",
      "total_inactive_file " + std::to_string(GiB) + "\ntotal_active_file 0\n");
  EXPECT_EQ(available_memory_bytes_under(root.string()), 4 * GiB);
  put(root / "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");  // v1's "unlimited"
  EXPECT_EQ(available_memory_bytes_under(root.string()), 8 * GiB);
}

}  // namespace
}  // namespace pinntk
