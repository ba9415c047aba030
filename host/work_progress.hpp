// Progress of long work inside a command (the chunks of the NTK's Grams, the kernel products of Lanczos): the CLI
// sets a sink that prints a line on stderr; the library has none by default, so Python and tests stay quiet. The
// sink is called at most every few seconds, from the thread doing the work.
#pragma once

#include <functional>  // std::function
#include <string>      // std::string

namespace pinntk {

// The sink; an empty function switches reporting off.
void set_work_progress_sink(std::function<void(const std::string&)> sink);
// `done` of `total` steps of `what` (total <= 0: no known total); passed to the sink at most every 5 s.
void work_progress(const char* what, long done, long total);
// Whether work_progress would print now (a sink is set and 5 s have passed since its last line): asynchronous work
// (a device stream) waits for what it has queued only then, so that the line counts finished steps.
bool work_progress_due();

}  // namespace pinntk
