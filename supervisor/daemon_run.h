// `jcs run --daemon` on the daemon's side (issue 16): programs run for
// control clients in the daemon's jails, warm ones when a jail of the same
// shape was built ahead.
//
// The control server hands a connection whose first request is daemon_run
// over to this service (TakeOver), which serves it on its own thread and
// event loop: launching jails never delays the control loop, and the control
// loop's traffic never delays a launch. The protocol after the request is in
// proto/control.proto (DaemonRunRequest).
//
// Warm jails: after a run of a shape (the spec without argv, env, cwd and
// timeout, plus the identity of every bound path: jail/warm_fingerprint.h)
// the service keeps kWarmPerShape jails of it built ahead, for at most
// `warm_shapes` shapes (the least recently used goes first); a shape unused
// for kWarmShapeIdle is dropped, and one whose paths changed identity never
// matches again (its jails are dropped with it).
#ifndef JCS_SUPERVISOR_DAEMON_RUN_H_
#define JCS_SUPERVISOR_DAEMON_RUN_H_

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "jail/runner.h"
#include "jail/spec.h"
#include "loop/event_loop.h"
#include "proto/control.pb.h"
#include "supervisor/control_server.h"
#include "supervisor/daemon_run_metrics.h"
#include "supervisor/daemon_run_policy.h"

namespace jcs::supervisor {

inline constexpr size_t kWarmPerShape = 2;
inline constexpr absl::Duration kWarmShapeIdle = absl::Seconds(60);
inline constexpr absl::Duration kRefillDelay = absl::Milliseconds(5);
// A client that was told to send its stdio and does not.
inline constexpr absl::Duration kStdioWait = absl::Seconds(10);

struct DaemonRunOptions {
  bool enabled = false;
  uint32_t max_concurrent = 64;
  uint32_t warm_shapes = 8;
  // The daemon's own files (DaemonRunPolicy::daemon_paths).
  std::vector<std::string> daemon_paths;
};

class DaemonRunService {
 public:
  // Starts the service's thread and loop.
  static absl::StatusOr<std::unique_ptr<DaemonRunService>> Start(
      DaemonRunOptions options);
  // Stop(), then the loop goes. Call jail::StopWarmJailBuilds() between
  // Stop() and the destruction (the builds post to this loop).
  ~DaemonRunService();
  DaemonRunService(const DaemonRunService&) = delete;
  DaemonRunService& operator=(const DaemonRunService&) = delete;

  // Takes `fd` (a connected control socket whose first request is
  // `request`, with nothing after it read yet) over, with the descriptors
  // that came with the request: stdin, stdout and stderr (the run starts
  // without waiting for them after the accepted answer), or none (they
  // follow the accepted answer, as one byte with SCM_RIGHTS). Thread-safe.
  void TakeOver(int fd, const PeerCredentials& peer, proto::Request request,
                std::vector<int> fds = {});

  // Kills every run (its whole jail) and every warm jail, and stops the
  // thread. Idempotent.
  void Stop();

  // What the runs did (`jcs metrics`). Thread-safe.
  const DaemonRunMetrics& metrics() const { return metrics_; }

  struct Conn;
  struct Pool;

 private:
  explicit DaemonRunService(DaemonRunOptions options);
  // All on the service's thread.
  void Begin(const std::shared_ptr<Conn>& conn);
  void OnStdio(const std::shared_ptr<Conn>& conn);
  void Launch(const std::shared_ptr<Conn>& conn, int fds[3]);
  void ArmSignals(const std::shared_ptr<Conn>& conn);
  void OnSignalBytes(const std::shared_ptr<Conn>& conn, int res);
  void OnDone(const std::shared_ptr<Conn>& conn, jail::RunResult result);
  void Answer(const std::shared_ptr<Conn>& conn,
              const proto::Response& response);
  void Refuse(const std::shared_ptr<Conn>& conn, const std::string& reason,
              const std::string& message);
  void MaybeRelease(const std::shared_ptr<Conn>& conn);
  Pool* FindPool(const std::string& fingerprint);
  Pool& PoolFor(const std::string& fingerprint, const jail::FinalSpec& spec);
  void Refill(Pool& pool);
  void ScheduleRefill(const std::string& fingerprint);
  void RefillIfKept(const std::string& fingerprint);
  void ExpireShapes();
  void Shutdown();

  const DaemonRunOptions options_;
  std::unique_ptr<runtime::EventLoop> loop_;
  std::thread thread_;
  bool stopped_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Conn>> conns_;
  std::list<std::unique_ptr<Pool>> pools_;  // most recently used first
  DaemonRunMetrics metrics_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace jcs::supervisor

#endif  // JCS_SUPERVISOR_DAEMON_RUN_H_
