// Ctrl-C in an interactive shell, as users of database shells expect it:
//
// - at the prompt it abandons the line being typed (and the rest of a
//   statement spread over several lines) and shows a fresh prompt;
// - while a statement runs it cannot recall it: the request is already with
//   the cluster, which will apply it or not whatever the shell does. The
//   first Ctrl-C says so and keeps waiting for the outcome; a second one
//   leaves the shell at once (exit status 130), telling that the outcome is
//   unknown.
//
// Only interactive sessions install this; scripts and -e keep the default
// (Ctrl-C ends them).
#pragma once

namespace distdb::cli {

class InterruptHandler {
 public:
  // Installs the SIGINT handler (without SA_RESTART, so that a read waiting
  // for a key returns); the previous one comes back on destruction. The
  // notices are translated here, outside the signal handler.
  InterruptHandler();
  ~InterruptHandler();
  InterruptHandler(const InterruptHandler&) = delete;
  InterruptHandler& operator=(const InterruptHandler&) = delete;

  // Whether Ctrl-C was pressed since the last call (at the prompt); clears it.
  static bool take_interrupt();
  // Waits until `fd` can be read (true) or Ctrl-C is pressed (false). A
  // press that came just before the wait counts too: a handler that only set
  // a flag could lose it to a read() that had not started yet, which is why
  // the line editor reads its keys through this.
  static bool wait_readable(int fd);
  // Brackets a statement or command that talks to the cluster.
  static void begin_running();
  static void end_running();
};

}  // namespace distdb::cli
