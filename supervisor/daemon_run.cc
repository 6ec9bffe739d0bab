#include "supervisor/daemon_run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "jail/fd_passing.h"
#include "jail/report.h"
#include "jail/run_notes.h"
#include "jail/warm_fingerprint.h"
#include "supervisor/framing.h"

namespace jcs::supervisor {

struct DaemonRunService::Conn {
  uint64_t id = 0;
  int fd = -1;
  PeerCredentials peer;
  uint64_t request_id = 0;
  bool want_report = false;
  bool tty = false;
  jail::FinalSpec spec;
  std::string fingerprint;
  std::unique_ptr<jail::JailRun> run;
  bool warm = false;
  // Read of the client's stdio message or its signal bytes in flight.
  runtime::OpId read_op = 0;
  bool reading = false;
  runtime::OpId timer_op = 0;
  bool timing = false;
  bool writing = false;
  std::string frame;         // the answer being written
  bool finished = false;     // the run's done came (or it never started)
  bool client_gone = false;  // EOF or error on the connection
  bool closing = false;      // the last frame is queued: close after it
  bool released = false;
  int signals = 0;  // SIGINT/SIGTERM/SIGHUP/SIGQUIT received so far
  char buffer[64];
  // stdin, stdout and stderr when they came with the request (one round
  // trip); owned until Launch takes them.
  std::vector<int> stdio_fds;

  ~Conn() { CloseStdio(); }
  void CloseStdio() {
    for (int fd : stdio_fds) close(fd);
    stdio_fds.clear();
  }
};

struct DaemonRunService::Pool {
  std::string fingerprint;
  jail::FinalSpec spec;
  std::vector<std::unique_ptr<jail::JailRun>> jails;  // building or idle
  absl::Time last_used;
};

namespace {

bool ForwardedSignal(int sig) {
  return sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT ||
         sig == SIGWINCH;
}

// The host path of the pseudo-terminal slave `fd` (what JailRun binds at the
// same path): read from the daemon's own view of the descriptor, never from
// the client.
absl::StatusOr<std::string> TtyPath(int fd) {
  if (isatty(fd) != 1) {
    return absl::InvalidArgumentError(
        "tty: the descriptors sent are not a terminal");
  }
  char path[PATH_MAX];
  const std::string link = absl::StrCat("/proc/self/fd/", fd);
  const ssize_t n = readlink(link.c_str(), path, sizeof(path) - 1);
  if (n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tty: ", link, ": ", strerror(errno)));
  }
  path[n] = '\0';
  if (!absl::StartsWith(path, "/dev/pts/")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tty: expected a pseudo-terminal under /dev/pts, got ", path));
  }
  // The path is bound into the jail: it must name this very terminal here
  // (a client in another devpts instance would name someone else's).
  struct stat by_fd;
  struct stat by_path;
  if (fstat(fd, &by_fd) != 0 || stat(path, &by_path) != 0 ||
      by_fd.st_rdev != by_path.st_rdev || by_fd.st_dev != by_path.st_dev) {
    return absl::InvalidArgumentError(
        absl::StrCat("tty: ", path,
                     " in the daemon's /dev/pts is not the client's "
                     "terminal (another devpts instance?); run without --tty"));
  }
  return std::string(path);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DaemonRunService>> DaemonRunService::Start(
    DaemonRunOptions options) {
  std::unique_ptr<DaemonRunService> service(
      new DaemonRunService(std::move(options)));
  absl::StatusOr<std::unique_ptr<runtime::EventLoop>> loop =
      runtime::EventLoop::Create();
  if (!loop.ok()) {
    return absl::Status(loop.status().code(),
                        absl::StrCat("daemon runs: ", loop.status().message()));
  }
  service->loop_ = *std::move(loop);
  DaemonRunService* self = service.get();
  service->thread_ = std::thread([self] {
    (void)self->loop_->Post([self] { self->ExpireShapes(); });
    (void)self->loop_->Run();
    // Still on the loop's thread: the runs and warm jails go with it.
    self->Shutdown();
  });
  return service;
}

DaemonRunService::DaemonRunService(DaemonRunOptions options)
    : options_(std::move(options)) {}

DaemonRunService::~DaemonRunService() {
  Stop();
  *alive_ = false;
  loop_.reset();
}

void DaemonRunService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  loop_->Stop();
  if (thread_.joinable()) thread_.join();
}

void DaemonRunService::Shutdown() {
  // Every run's jail is killed now, waiting for it (no async teardown left
  // behind a thread that is about to exit).
  for (auto& [id, conn] : conns_) {
    if (conn->run != nullptr && !conn->run->finished()) {
      conn->run->set_async_teardown(false);
    }
    conn->run.reset();
    if (!conn->released) close(conn->fd);
    conn->released = true;
  }
  conns_.clear();
  for (std::unique_ptr<Pool>& pool : pools_) {
    for (std::unique_ptr<jail::JailRun>& jail : pool->jails) {
      if (jail != nullptr) jail->set_async_teardown(false);
    }
  }
  pools_.clear();
}

void DaemonRunService::TakeOver(int fd, const PeerCredentials& peer,
                                proto::Request request, std::vector<int> fds) {
  auto conn = std::make_shared<Conn>();
  conn->stdio_fds = std::move(fds);
  conn->fd = fd;
  conn->peer = peer;
  conn->request_id = request.id();
  conn->want_report = request.daemon_run().report();
  conn->tty = request.daemon_run().tty();
  auto spec = std::make_shared<proto::JailSpec>(
      std::move(*request.mutable_daemon_run()->mutable_spec()));
  std::weak_ptr<bool> alive = alive_;
  absl::Status posted = loop_->Post([this, alive, conn, spec] {
    if (alive.expired()) {
      close(conn->fd);
      return;
    }
    conn->spec.spec = std::move(*spec);
    Begin(conn);
  });
  if (!posted.ok()) close(fd);
}

void DaemonRunService::Begin(const std::shared_ptr<Conn>& conn) {
  conn->id = next_id_++;
  conns_[conn->id] = conn;
  conn->finished = true;  // until a run starts
  if (!options_.enabled) {
    Refuse(conn, "daemon_run_disabled",
           "this daemon does not serve jcs run --daemon (daemon_run: true in "
           "its config switches it on)");
    return;
  }
  // Every connection counts, running or still to send its stdio: taken over,
  // it is no longer bounded by the control server's max_clients.
  if (conns_.size() > options_.max_concurrent) {
    Refuse(conn, "daemon_run_busy",
           absl::StrCat("the daemon runs at most ", options_.max_concurrent,
                        " programs for jcs run --daemon at once "
                        "(daemon_run_max_concurrent)"));
    return;
  }
  if (!conn->stdio_fds.empty() && conn->stdio_fds.size() != 3) {
    Refuse(conn, "malformed_request",
           absl::StrCat("daemon_run: ", conn->stdio_fds.size(),
                        " descriptors came with the request; it takes "
                        "stdin, stdout and stderr (3) or none"));
    return;
  }
  DaemonRunPolicy policy;
  policy.privileged = conn->peer.uid == 0 || conn->peer.uid == geteuid();
  policy.daemon_paths = options_.daemon_paths;
  absl::StatusOr<jail::FinalSpec> checked =
      CheckDaemonRunSpec(conn->spec.spec, conn->peer, policy);
  if (!checked.ok()) {
    Refuse(conn,
           checked.status().code() == absl::StatusCode::kPermissionDenied
               ? "unauthorized"
               : "invalid_spec",
           std::string(checked.status().message()));
    return;
  }
  conn->spec = *std::move(checked);
  conn->fingerprint = jail::WarmFingerprint(conn->spec.spec);
  proto::Response accepted;
  accepted.set_id(conn->request_id);
  accepted.mutable_daemon_run()->set_accepted(true);
  // The first frame on a fresh connection: its send buffer is empty.
  const std::string frame = EncodeFrame(accepted.SerializeAsString());
  if (send(conn->fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
      static_cast<ssize_t>(frame.size())) {
    MaybeRelease(conn);
    return;
  }
  conn->finished = false;
  if (conn->stdio_fds.size() == 3) {
    // The stdio came with the request: no second round trip.
    int fds[3] = {conn->stdio_fds[0], conn->stdio_fds[1], conn->stdio_fds[2]};
    conn->stdio_fds.clear();
    Launch(conn, fds);
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<runtime::OpId> poll =
      loop_->Poll(conn->fd, POLLIN, [this, alive, conn](int res) {
        if (alive.expired()) return;
        conn->reading = false;
        if (conn->timing) (void)loop_->Cancel(conn->timer_op);
        if (res < 0 || conn->released) {
          conn->finished = true;
          MaybeRelease(conn);
          return;
        }
        OnStdio(conn);
      });
  if (!poll.ok()) {
    conn->finished = true;
    MaybeRelease(conn);
    return;
  }
  conn->read_op = *poll;
  conn->reading = true;
  absl::StatusOr<runtime::OpId> timer =
      loop_->Timeout(kStdioWait, [this, alive, conn](int res) {
        if (alive.expired()) return;
        conn->timing = false;
        if (res != -ECANCELED && conn->reading && !conn->run) {
          (void)loop_->Cancel(conn->read_op);  // the poll ends it
        }
        MaybeRelease(conn);
      });
  if (timer.ok()) {
    conn->timer_op = *timer;
    conn->timing = true;
  }
}

void DaemonRunService::OnStdio(const std::shared_ptr<Conn>& conn) {
  char byte = 0;
  int fds[jail::kMaxPassedFds];
  int nfds = 0;
  bool truncated = false;
  const ssize_t n =
      jail::RecvWithFds(conn->fd, &byte, 1, fds, jail::kMaxPassedFds, &nfds,
                        &truncated, MSG_DONTWAIT);
  if (n != 1 || nfds != 3 || truncated) {
    for (int i = 0; i < nfds; ++i) close(fds[i]);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      conn->finished = true;
      MaybeRelease(conn);
      return;
    }
    Refuse(conn, "malformed_request",
           "daemon_run: expected one byte with stdin, stdout and stderr "
           "attached (SCM_RIGHTS) after the accepted answer");
    return;
  }
  Launch(conn, fds);
}

void DaemonRunService::Launch(const std::shared_ptr<Conn>& conn, int fds[3]) {
  std::weak_ptr<bool> alive = alive_;
  std::weak_ptr<Conn> weak = conn;
  auto done = [this, alive, weak](jail::RunResult result) {
    if (alive.expired()) return;
    if (std::shared_ptr<Conn> c = weak.lock()) OnDone(c, std::move(result));
  };
  const jail::JailStdio stdio{fds[0], fds[1], fds[2]};
  std::string tty;
  if (conn->tty) {
    absl::StatusOr<std::string> path = TtyPath(fds[0]);
    if (!path.ok()) {
      for (int i = 0; i < 3; ++i) close(fds[i]);
      Refuse(conn, "invalid_spec", std::string(path.status().message()));
      return;
    }
    tty = *path;
  }
  Pool* pool = FindPool(conn->fingerprint);
  std::unique_ptr<jail::JailRun> warm;
  if (pool != nullptr && tty.empty()) {
    pool->last_used = absl::Now();
    for (auto it = pool->jails.begin(); it != pool->jails.end(); ++it) {
      if (*it != nullptr && (*it)->idle()) {
        warm = std::move(*it);
        pool->jails.erase(it);
        break;
      }
    }
  }
  conn->finished = false;
  if (warm != nullptr && warm->Launch(conn->spec.spec, stdio, done).ok()) {
    conn->run = std::move(warm);
    conn->warm = true;
    metrics_.Started(/*warm=*/true);
  } else {
    if (warm != nullptr) warm->Abandon();
    // Counted first: a jail that cannot start ends (`done`) inside Start.
    metrics_.Started(/*warm=*/false);
    conn->run = jail::JailRun::Start(loop_.get(), conn->spec.spec,
                                     conn->spec.warnings, stdio, done,
                                     /*on_denied=*/nullptr, tty);
  }
  conn->run->set_async_teardown(true);
  for (int i = 0; i < 3; ++i) close(fds[i]);
  // A shape seen for the first time gets its warm jails now; a known one is
  // topped up when this run ends (building competes with it for the CPUs).
  if (options_.warm_shapes > 0 && tty.empty() && pool == nullptr) {
    Refill(PoolFor(conn->fingerprint, conn->spec));
  }
  if (!conn->finished) ArmSignals(conn);
}

void DaemonRunService::ArmSignals(const std::shared_ptr<Conn>& conn) {
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<runtime::OpId> op =
      loop_->Read(conn->fd, absl::MakeSpan(conn->buffer, sizeof(conn->buffer)),
                  [this, alive, conn](int res) {
                    if (alive.expired()) return;
                    conn->reading = false;
                    OnSignalBytes(conn, res);
                  });
  if (!op.ok()) {
    conn->client_gone = true;
    if (conn->run != nullptr && !conn->run->finished()) conn->run->Kill();
    return;
  }
  conn->read_op = *op;
  conn->reading = true;
}

void DaemonRunService::OnSignalBytes(const std::shared_ptr<Conn>& conn,
                                     int res) {
  if (conn->finished || conn->released) {
    MaybeRelease(conn);
    return;
  }
  if (res <= 0) {
    // The client is gone (killed, or closed its end): so is its program,
    // with every process of its jail.
    conn->client_gone = true;
    if (conn->run != nullptr && !conn->run->finished()) conn->run->Kill();
    MaybeRelease(conn);
    return;
  }
  for (int i = 0; i < res && !conn->finished; ++i) {
    const int sig = static_cast<unsigned char>(conn->buffer[i]);
    if (!ForwardedSignal(sig)) {
      // Not our client speaking: end the run rather than guess.
      conn->client_gone = true;
      conn->run->Kill();
      break;
    }
    // As a cold jcs run: the first one goes to the program, a second one
    // ends the run at once. A window size change is always passed on.
    if (sig == SIGWINCH || ++conn->signals == 1) {
      conn->run->Signal(sig);
    } else {
      conn->run->Kill();
    }
  }
  if (!conn->finished && !conn->client_gone) ArmSignals(conn);
}

void DaemonRunService::OnDone(const std::shared_ptr<Conn>& conn,
                              jail::RunResult result) {
  conn->finished = true;
  metrics_.Finished(result);
  // Destroyed later: this runs inside the jail's own callback.
  std::shared_ptr<jail::JailRun> dead(conn->run.release());
  (void)loop_->Post([dead] {});
  ScheduleRefill(conn->fingerprint);
  if (conn->reading) (void)loop_->Cancel(conn->read_op);
  if (conn->client_gone) {
    MaybeRelease(conn);
    return;
  }
  proto::Response response;
  response.set_id(conn->request_id);
  proto::DaemonRunResponse* out = response.mutable_daemon_run();
  out->set_finished(true);
  out->set_exit_code(result.exit_code);
  out->set_warm(conn->warm);
  if (std::string end = jail::RunEndMessage(conn->spec.spec, result);
      !end.empty()) {
    out->add_messages(std::move(end));
  }
  for (std::string& note : jail::RunNotes(conn->spec.spec, result)) {
    out->add_notes(std::move(note));
  }
  if (conn->want_report) {
    out->set_report_json(jail::FormatReport(conn->spec.spec, result));
  }
  Answer(conn, response);
}

void DaemonRunService::Refuse(const std::shared_ptr<Conn>& conn,
                              const std::string& reason,
                              const std::string& message) {
  conn->finished = true;
  metrics_.Refused(reason);
  conn->CloseStdio();
  proto::Response response;
  response.set_id(conn->request_id);
  response.mutable_error()->set_reason(reason);
  response.mutable_error()->set_message(message);
  Answer(conn, response);
}

void DaemonRunService::Answer(const std::shared_ptr<Conn>& conn,
                              const proto::Response& response) {
  conn->closing = true;
  conn->frame = EncodeFrame(response.SerializeAsString());
  std::weak_ptr<bool> alive = alive_;
  absl::StatusOr<runtime::OpId> op = loop_->WriteAll(
      conn->fd, absl::MakeConstSpan(conn->frame.data(), conn->frame.size()),
      [this, alive, conn](int) {
        if (alive.expired()) return;
        conn->writing = false;
        MaybeRelease(conn);
      });
  conn->writing = op.ok();
  MaybeRelease(conn);
}

// The connection closes once the run is over, its answer written and no
// operation on it is left in flight (the fd number is not reused under one).
void DaemonRunService::MaybeRelease(const std::shared_ptr<Conn>& conn) {
  if (conn->released || !conn->finished) return;
  if (conn->reading) {
    (void)loop_->Cancel(conn->read_op);
    return;
  }
  if (conn->writing || conn->timing) return;
  conn->released = true;
  close(conn->fd);
  conns_.erase(conn->id);
}

DaemonRunService::Pool* DaemonRunService::FindPool(
    const std::string& fingerprint) {
  for (auto it = pools_.begin(); it != pools_.end(); ++it) {
    if ((*it)->fingerprint != fingerprint) continue;
    if (it != pools_.begin()) pools_.splice(pools_.begin(), pools_, it);
    return pools_.front().get();
  }
  return nullptr;
}

DaemonRunService::Pool& DaemonRunService::PoolFor(
    const std::string& fingerprint, const jail::FinalSpec& spec) {
  if (Pool* pool = FindPool(fingerprint)) return *pool;
  while (!pools_.empty() && pools_.size() >= options_.warm_shapes) {
    for (std::unique_ptr<jail::JailRun>& jail : pools_.back()->jails) {
      if (jail != nullptr) jail->Abandon();
    }
    pools_.pop_back();
  }
  auto pool = std::make_unique<Pool>();
  pool->fingerprint = fingerprint;
  pool->spec = spec;
  pool->last_used = absl::Now();
  pools_.push_front(std::move(pool));
  return *pools_.front();
}

void DaemonRunService::Refill(Pool& pool) {
  std::erase_if(pool.jails, [](const std::unique_ptr<jail::JailRun>& jail) {
    return jail == nullptr;
  });
  std::weak_ptr<bool> alive = alive_;
  while (pool.jails.size() < kWarmPerShape) {
    const std::string fingerprint = pool.fingerprint;
    std::unique_ptr<jail::JailRun> jail = jail::JailRun::StartWarm(
        loop_.get(), pool.spec.spec, pool.spec.warnings, [] {},
        [this, alive, fingerprint](jail::RunResult) {
          // Died or failed before it was used: forget it (no rebuild here,
          // so a host that cannot build jails does not spin).
          if (alive.expired()) return;
          Pool* owner = nullptr;
          for (std::unique_ptr<Pool>& p : pools_) {
            if (p->fingerprint == fingerprint) owner = p.get();
          }
          if (owner == nullptr) return;
          for (std::unique_ptr<jail::JailRun>& j : owner->jails) {
            if (j != nullptr && j->finished()) {
              std::shared_ptr<jail::JailRun> dead(j.release());
              (void)loop_->Post([dead] {});
            }
          }
        });
    jail->set_async_teardown(true);
    pool.jails.push_back(std::move(jail));
  }
}

// The pool is topped up kRefillDelay after a run ends, not at once: building
// a jail takes milliseconds of CPU, and on a small host it would compete with
// the client that is just being woken with its exit status (and with its
// exit). The other warm jail of the shape serves a run that comes sooner.
void DaemonRunService::ScheduleRefill(const std::string& fingerprint) {
  std::weak_ptr<bool> alive = alive_;
  const absl::StatusOr<runtime::OpId> op =
      loop_->Timeout(kRefillDelay, [this, alive, fingerprint](int res) {
        if (alive.expired() || res == -ECANCELED) return;
        RefillIfKept(fingerprint);
      });
  if (!op.ok()) RefillIfKept(fingerprint);
}

// Unlike FindPool, leaves the pools' recency order alone: a refill is not a
// use of the shape.
void DaemonRunService::RefillIfKept(const std::string& fingerprint) {
  for (std::unique_ptr<Pool>& pool : pools_) {
    if (pool->fingerprint == fingerprint) {
      Refill(*pool);
      return;
    }
  }
}

void DaemonRunService::ExpireShapes() {
  const absl::Time now = absl::Now();
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (now - (*it)->last_used < kWarmShapeIdle) {
      ++it;
      continue;
    }
    for (std::unique_ptr<jail::JailRun>& jail : (*it)->jails) {
      if (jail != nullptr) jail->Abandon();
    }
    it = pools_.erase(it);
  }
  std::weak_ptr<bool> alive = alive_;
  (void)loop_->Timeout(kWarmShapeIdle / 4, [this, alive](int res) {
    if (!alive.expired() && res != -ECANCELED) ExpireShapes();
  });
}

}  // namespace jcs::supervisor
