// `jcs run`: parse, finalize, run the jail, report.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "jail/env.h"
#include "jail/procfs.h"
#include "jail/pty.h"
#include "jail/report.h"
#include "jail/run_notes.h"
#include "jail/runner.h"
#include "jail/spec.h"
#include "tools/commands.h"
#include "tools/flags.h"
#include "tools/run_daemon_client.h"

namespace jcs::tools {
namespace {

constexpr int kUsageError = 125;

bool WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Where the report goes, settled before the jail starts: a path that cannot
// be written, or a descriptor that is not open for writing, stops the run
// before anything runs (not after it, with the report lost).
struct ReportSink {
  int fd = -1;  // -1: no report
  bool owned = false;
  std::string what;  // for the error if the final write fails
};

absl::StatusOr<ReportSink> OpenReport(const jail::RunInvocation& inv) {
  ReportSink sink;
  if (inv.report_fd >= 0) {
    sink.fd = inv.report_fd;
    sink.what = absl::StrCat("--report-fd ", inv.report_fd);
    const int flags = fcntl(sink.fd, F_GETFL);
    if (flags < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(sink.what, ": not an open descriptor"));
    }
    if ((flags & O_ACCMODE) == O_RDONLY) {
      return absl::InvalidArgumentError(
          absl::StrCat(sink.what, ": not open for writing"));
    }
    // Never into the jail (which closes every descriptor above its stdio
    // anyway): 0-2 are the program's own stdio and stay as they are.
    if (sink.fd > 2 && fcntl(sink.fd, F_SETFD, FD_CLOEXEC) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(sink.what, ": ", strerror(errno)));
    }
    return sink;
  }
  if (inv.report_path.empty()) return sink;
  if (inv.report_path == "-") {
    sink.fd = STDERR_FILENO;
    sink.what = "--report -";
    return sink;
  }
  sink.what = absl::StrCat("--report ", inv.report_path);
  sink.fd = open(inv.report_path.c_str(),
                 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
  if (sink.fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--report: cannot write ", inv.report_path, ": ", strerror(errno)));
  }
  sink.owned = true;
  return sink;
}

void Note(bool quiet, const std::string& line) {
  if (!quiet) fprintf(stderr, "jcs: %s\n", line.c_str());
}

// --tty: the program's terminal type is the user's (docker's xterm when the
// user has none or an invalid one); an explicit --env TERM wins.
void AddTerm(proto::JailSpec* spec) {
  for (const proto::EnvVar& var : spec->env()) {
    if (var.key() == "TERM") return;
  }
  const char* host = getenv("TERM");
  std::string term = host != nullptr && host[0] != '\0' ? host : "xterm";
  if (!jail::ValidateEnvVar("TERM", term).ok()) term = "xterm";
  proto::EnvVar* var = spec->add_env();
  var->set_key("TERM");
  var->set_value(term);
}

// `jcs run --tty`, for the duration of the run: a new pseudo-terminal whose
// slave goes to the jail, this process's stdin in raw mode (when it is a
// terminal), and the relay. The destructor order puts the terminal back
// after the program's last output.
struct TtySession {
  jail::JailStdio stdio;
  std::string slave_path;
  std::unique_ptr<jail::PtyRelay> relay;
  std::unique_ptr<jail::RawTerminal> raw;
  sigset_t old_mask;
  bool mask_saved = false;

  // After the run: the rest of the program's output, then the terminal.
  void End() {
    if (relay != nullptr) relay->Finish(/*idle_ms=*/2000);
    relay.reset();
    raw.reset();
    if (mask_saved) sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    mask_saved = false;
  }
  ~TtySession() { End(); }
};

absl::Status StartTty(TtySession* tty) {
  absl::StatusOr<jail::Pty> pty = jail::OpenPty();
  if (!pty.ok()) return pty.status();
  const bool stdin_tty = isatty(STDIN_FILENO) == 1;
  // The program starts with the user's window size; SIGWINCH stays pending
  // for the relay's signalfd (blocked here before the relay's thread and
  // the jail exist; the jail's processes reset their signal mask).
  if (stdin_tty) jail::CopyWindowSize(STDIN_FILENO, pty->master);
  sigset_t winch;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  sigprocmask(SIG_BLOCK, &winch, &tty->old_mask);
  tty->mask_saved = true;
  tty->stdio = {pty->slave, pty->slave, pty->slave};
  tty->slave_path = pty->slave_path;
  absl::StatusOr<std::unique_ptr<jail::PtyRelay>> relay = jail::PtyRelay::Start(
      pty->master, STDIN_FILENO, STDOUT_FILENO, stdin_tty);
  if (!relay.ok()) {  // the relay closed the master it was given
    close(pty->slave);
    tty->stdio = {};
    return relay.status();
  }
  tty->relay = *std::move(relay);
  if (stdin_tty) {
    absl::StatusOr<std::unique_ptr<jail::RawTerminal>> raw =
        jail::RawTerminal::Enter(STDIN_FILENO);
    if (!raw.ok()) {
      close(pty->slave);
      tty->stdio = {};
      return raw.status();
    }
    tty->raw = *std::move(raw);
  }
  return absl::OkStatus();
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<jail::RunInvocation> invocation = jail::ParseRunArgs(args);
  if (!invocation.ok()) {
    fprintf(stderr, "jcs run: %s\n",
            std::string(invocation.status().message()).c_str());
    return kUsageError;
  }
  if (invocation->help) {
    fputs(WrapUsageLines(jail::RunUsage()).c_str(), stdout);
    return 0;
  }
  const bool quiet = invocation->quiet;
  if (invocation->daemon_fallback && !invocation->daemon) {
    fprintf(stderr, "jcs run: --daemon-fallback: only with --daemon\n");
    return kUsageError;
  }
  if (invocation->tty) AddTerm(&invocation->spec);
  // The jail is addressed through /proc: refuse a /proc of another pid
  // namespace (unshare --pid without --mount-proc) up front.
  if (absl::Status s = jail::CheckOwnProcfs(); !s.ok()) {
    fprintf(stderr, "jcs run: %s\n", std::string(s.message()).c_str());
    return kUsageError;
  }
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) {
    fprintf(stderr, "jcs run: cannot read the current directory: %s\n",
            strerror(errno));
    return kUsageError;
  }
  // `bazel run` starts the binary in its runfiles tree; the user's directory is
  // the natural root.
  std::string base = cwd;
  if (const char* dir = getenv("BUILD_WORKING_DIRECTORY");
      dir != nullptr && dir[0] == '/') {
    base = dir;
  }
  absl::StatusOr<jail::FinalSpec> final_spec =
      jail::Finalize(invocation->spec, base,
                     /*require_program=*/!invocation->print_config);
  if (!final_spec.ok()) {
    fprintf(stderr, "jcs run: %s\n",
            std::string(final_spec.status().message()).c_str());
    return kUsageError;
  }
  for (const std::string& warning : final_spec->warnings) Note(quiet, warning);
  if (invocation->print_config) {
    fputs(jail::FormatSpec(final_spec->spec).c_str(), stdout);
    return 0;
  }
  absl::StatusOr<ReportSink> report = OpenReport(*invocation);
  if (!report.ok()) {
    fprintf(stderr, "jcs run: %s\n",
            std::string(report.status().message()).c_str());
    return kUsageError;
  }
  TtySession tty;
  if (invocation->tty) {
    if (absl::Status s = StartTty(&tty); !s.ok()) {
      fprintf(stderr, "jcs run: --tty: %s\n", std::string(s.message()).c_str());
      return kUsageError;
    }
  }
  // --daemon: the same spec, run by the daemon (tools/run_daemon_client.h).
  DaemonRunOutcome outcome;
  bool ran = false;
  if (invocation->daemon) {
    absl::StatusOr<DaemonRunOutcome> through =
        RunThroughDaemon(DaemonRunSocket(*invocation), final_spec->spec,
                         report->fd >= 0, invocation->tty, tty.stdio);
    if (through.ok()) {
      outcome = *std::move(through);
      ran = true;
      // The jail holds its own copies: the relay sees the end of the output.
      if (tty.stdio.in >= 0) close(tty.stdio.in);
    } else if (invocation->daemon_fallback &&
               absl::IsUnavailable(through.status())) {
      Note(quiet, absl::StrCat(through.status().message(),
                               "; running cold (--daemon-fallback)"));
    } else {
      tty.End();
      fprintf(stderr, "jcs run: --daemon: %s\n",
              std::string(through.status().message()).c_str());
      if (report->owned) close(report->fd);
      return kUsageError;
    }
  }
  if (!ran) {
    const jail::RunResult result = jail::RunJail(
        final_spec->spec, final_spec->warnings, tty.stdio, tty.slave_path);
    outcome.exit_code = result.exit_code;
    if (std::string end = jail::RunEndMessage(final_spec->spec, result);
        !end.empty()) {
      outcome.messages.push_back(std::move(end));
    }
    outcome.notes = jail::RunNotes(final_spec->spec, result);
    if (report->fd >= 0) {
      outcome.report_json = jail::FormatReport(final_spec->spec, result);
    }
  }
  // What follows (the jcs run: lines, notes, --report -) comes after the
  // program's last output, on a terminal back in its own mode.
  tty.End();
  for (const std::string& message : outcome.messages) {
    fprintf(stderr, "jcs run: %s\n", message.c_str());
  }
  for (const std::string& note : outcome.notes) Note(quiet, note);
  if (report->fd >= 0) {
    if (!WriteAll(report->fd, outcome.report_json)) {
      fprintf(stderr, "jcs run: %s: cannot write the report: %s\n",
              report->what.c_str(), strerror(errno));
    }
    if (report->owned) close(report->fd);
  }
  return outcome.exit_code;
}

}  // namespace jcs::tools
