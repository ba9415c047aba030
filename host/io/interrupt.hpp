// What the CLI says and leaves when SIGINT or SIGTERM ends a run: one line on stderr (the signal, and how to
// continue when a resume state was saved), the folders the run created removed while they are still empty, then the
// signal's own default action (so the exit status still says which signal ended the process).
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

namespace pinntk {

// Installs the handlers (the CLI's main; a library caller keeps its own).
void install_interrupt_handlers();
// The folders a run created, outermost first: removed, innermost first, if still empty when a signal ends the run.
// An empty list (after a commit) forgets them, and the message then no longer says that nothing was written.
void interrupt_remove_if_empty(const std::vector<std::string>& folders);
// The resume state a signal's message points to when it exists ("" for none).
void interrupt_resume_file(const std::string& path);

}  // namespace pinntk
