#include "supervisor/serve.h"

#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "base/version.h"
#include "jail/procfs.h"
#include "jail/spec.h"
#include "jail/zygote.h"
#include "loop/event_loop.h"
#include "runtime/project/value.h"
#include "supervisor/a2a_http.h"
#include "supervisor/alert_exec.h"
#include "supervisor/control_server.h"
#include "supervisor/control_service.h"
#include "supervisor/daemon_run.h"
#include "supervisor/mcp_http.h"
#include "supervisor/metrics_textfile.h"
#include "supervisor/serve_config.h"
#include "telemetry/logging/line_writer.h"
#include "telemetry/logging/structured_log.h"

namespace jcs::supervisor {
namespace {

constexpr int kUsageError = 2;
constexpr int kStartError = 1;

// `path` made canonical as far as it exists: the realpath of its deepest
// existing ancestor, then the rest as written.
std::string CanonicalAsFarAsItExists(const std::string& path) {
  std::string existing = path;
  std::string rest;
  while (!existing.empty() && existing != "/") {
    char* real = realpath(existing.c_str(), nullptr);
    if (real != nullptr) {
      std::string out(real);
      free(real);
      return rest.empty() ? out : absl::StrCat(out == "/" ? "" : out, rest);
    }
    const size_t slash = existing.rfind('/');
    if (slash == std::string::npos) break;
    rest = existing.substr(slash) + rest;
    existing = slash == 0 ? "/" : existing.substr(0, slash);
  }
  return rest.empty() ? "/" : rest;
}

absl::Status CheckOutsideJailView(const char* what, const std::string& path) {
  const std::string canonical = CanonicalAsFarAsItExists(path);
  for (const std::string& dir : jail::DefaultSystemDirs()) {
    char* real = realpath(dir.c_str(), nullptr);
    if (real == nullptr) continue;
    const std::string system(real);
    free(real);
    if (canonical == system ||
        (canonical.rfind(system, 0) == 0 && canonical[system.size()] == '/')) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, " ", path, " is inside ", system,
          ", which every jail sees (read-only): a jailed program could reach "
          "the daemon's files there; use a directory such as /run/jcs or "
          "/var/lib/jcs"));
    }
  }
  return absl::OkStatus();
}

// mkdir -p with `mode` for the directories it creates.
absl::Status MakeDirs(const std::string& path, mode_t mode) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("mkdir ", prefix, ": ", strerror(errno)));
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a directory"));
  }
  return absl::OkStatus();
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

using telemetry::logging::LogLevel;

class Daemon {
 public:
  Daemon(proto::SupervisorConfig config, std::string config_path)
      : config_(std::move(config)), config_path_(std::move(config_path)) {}
  int Run();

 private:
  // metrics_textfile: writes the scrape now and every period after.
  void RefreshTextfile();
  void Log(LogLevel level, const char* msg,
           nlohmann::json fields = nlohmann::json::object()) {
    if (log_ != nullptr) log_->Log(level, msg, std::move(fields));
  }

  void OnSignal();
  void BeginDrain();
  void FlushThenStop(absl::Time deadline);
  void ReapChildren();
  void ReloadAlerts();
  // AlertRouterConfig with the jailed runner for exec sinks (their roots
  // under the running state_dir: a reload cannot move it).
  telemetry::alerts::RouterConfig RouterConfig(
      const proto::SupervisorConfig& config) const {
    telemetry::alerts::RouterConfig out = AlertRouterConfig(config);
    out.exec_runner =
        JailedAlertExecRunner(config_.state_dir() + "/alert-exec");
    return out;
  }

  proto::SupervisorConfig config_;
  std::string config_path_;  // "" without --config
  std::unique_ptr<telemetry::logging::StructuredLog> log_;
  std::string textfile_error_;  // the last one reported (said once)
  uint64_t textfile_errors_ = 0;
  std::unique_ptr<jail::Zygote> zygote_;
  std::unique_ptr<runtime::EventLoop> loop_;
  // After the loop (it posts to it), before the service (which writes to it).
  std::unique_ptr<runtime::journal::Journal> journal_;
  std::unique_ptr<ControlService> service_;
  std::unique_ptr<ControlServer> server_;
  // `jcs run --daemon` (daemon_run: true): its own thread and loop.
  std::unique_ptr<DaemonRunService> daemon_runs_;
  // MCP over HTTP (when configured): its threads reach the service through
  // the bridge, which is closed before the server stops.
  std::unique_ptr<LoopBridge> mcp_bridge_;
  AssetReloads mcp_reloads_;  // the MCP HTTP sessions' list_changed
  std::unique_ptr<protocol::mcp::McpHttpServer> mcp_http_;
  // The A2A gateway (its streams' events come from the hub).
  std::unique_ptr<LoopBridge> a2a_bridge_;
  std::unique_ptr<A2aEventHub> a2a_events_;
  std::unique_ptr<protocol::a2a::A2aHttpServer> a2a_http_;
  int signal_fd_ = -1;
  bool draining_ = false;
};

void Daemon::ReapChildren() {
  while (true) {
    const pid_t pid = waitpid(-1, nullptr, WNOHANG);
    if (pid <= 0) break;
  }
}

void Daemon::BeginDrain() {
  if (draining_) {
    loop_->Stop();  // second signal: stop now
    return;
  }
  draining_ = true;
  telemetry::logging::StderrLine(absl::StrFormat(
      "jcs serve: draining (grace %u ms)", config_.drain_grace_ms()));
  Log(LogLevel::kInfo, "serve.draining",
      {{"grace_ms", config_.drain_grace_ms()},
       {"running_tool_calls", service_->running_tool_calls()}});
  server_->StopAccepting();
  // Running tool calls get the grace period to finish, then are killed; then
  // queued responses get a moment to flush.
  service_->Drain(absl::Milliseconds(config_.drain_grace_ms()), [this] {
    telemetry::logging::StderrLine("jcs serve: tool calls drained");
    Log(LogLevel::kInfo, "serve.drained");
    const absl::Duration flush = std::min(
        absl::Milliseconds(config_.drain_grace_ms()), absl::Milliseconds(200));
    FlushThenStop(absl::Now() + flush);
  });
}

// Stops once every queued answer is written, or at `deadline` (a client that
// does not read must not hold the exit up).
void Daemon::FlushThenStop(absl::Time deadline) {
  if (server_->queued_bytes() == 0 || absl::Now() >= deadline) {
    loop_->Stop();
    return;
  }
  (void)loop_->Timeout(absl::Milliseconds(5),
                       [this, deadline](int) { FlushThenStop(deadline); });
}

void Daemon::OnSignal() {
  struct signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
    switch (info.ssi_signo) {
      case SIGCHLD:
        ReapChildren();
        break;
      case SIGTERM:
      case SIGINT:
        BeginDrain();
        break;
      case SIGHUP:
        ReloadAlerts();
        break;
      default:
        break;
    }
  }
}

// The alert sink paths of `config` that a jail could see: in its system view,
// or (checked by ReconfigureAlerts) inside a project root.
absl::Status CheckAlertSinks(const proto::SupervisorConfig& config) {
  for (const proto::AlertSink& sink : config.alert_router().sinks()) {
    const std::string& path =
        sink.has_file() ? sink.file() : sink.unix_socket();
    if (path.empty()) continue;
    if (absl::Status s = CheckOutsideJailView("alert sink", path); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// SIGHUP: re-reads --config and applies alert_signal_events and
// alert_router; everything else needs a restart. A config that fails to
// parse or validate leaves the running one in place.
void Daemon::ReloadAlerts() {
  // logrotate moved the log file: write to a fresh one at the same path.
  if (log_ != nullptr) {
    if (absl::Status s = log_->Reopen(); !s.ok()) {
      telemetry::logging::StderrLine(
          absl::StrFormat("jcs serve: SIGHUP: %s (still writing the old file)",
                          std::string(s.message()).c_str()));
    }
  }
  if (config_path_.empty()) {
    telemetry::logging::StderrLine("jcs serve: SIGHUP: no --config to reload");
    return;
  }
  std::ifstream in(config_path_);
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<proto::SupervisorConfig> parsed =
      in ? ParseServeConfig(text.str(), config_path_)
         : absl::StatusOr<proto::SupervisorConfig>(
               absl::FailedPreconditionError(absl::StrCat(
                   "cannot read ", config_path_, ": ", strerror(errno))));
  absl::Status status = parsed.status();
  if (status.ok()) status = CheckAlertSinks(*parsed);
  if (status.ok()) status = service_->ReconfigureAlerts(RouterConfig(*parsed));
  if (!status.ok()) {
    telemetry::logging::StderrLine(absl::StrFormat(
        "jcs serve: SIGHUP: alert config reload refused, keeping the "
        "current one: %s",
        std::string(status.message()).c_str()));
    return;
  }
  *config_.mutable_alert_signal_events() = parsed->alert_signal_events();
  *config_.mutable_alert_router() = parsed->alert_router();
  telemetry::logging::StderrLine(
      absl::StrFormat("jcs serve: SIGHUP: alert config reloaded (%d sink(s))",
                      config_.alert_router().sinks_size()));
  Log(LogLevel::kInfo, "serve.alerts_reloaded",
      {{"sinks", config_.alert_router().sinks_size()}});
}

int Daemon::Run() {
  // Jails are addressed through /proc: refuse a /proc of another pid
  // namespace (unshare --pid without --mount-proc) before anything starts.
  if (absl::Status s = jail::CheckOwnProcfs(); !s.ok()) {
    fprintf(stderr, "jcs serve: %s\n", std::string(s.message()).c_str());
    return kStartError;
  }
  // Forked first, while this process is small: warm jails are cloned by it
  // (jail/zygote.h).
  absl::StatusOr<std::unique_ptr<jail::Zygote>> zygote = jail::Zygote::Start();
  if (zygote.ok()) {
    zygote_ = *std::move(zygote);
    jail::SetProcessZygote(zygote_.get());
  } else {
    fprintf(stderr, "jcs serve: %s (warm jails are cloned in-process)\n",
            std::string(zygote.status().message()).c_str());
  }
  // Every jail sees the system directories: the daemon's socket (a jailed
  // program could connect to it as the project's owner) and state must not
  // be among them.
  for (const auto& [what, path] : {std::pair<const char*, std::string>{
                                       "socket_path", config_.socket_path()},
                                   {"state_dir", config_.state_dir()}}) {
    if (absl::Status s = CheckOutsideJailView(what, path); !s.ok()) {
      fprintf(stderr, "jcs serve: %s\n", std::string(s.message()).c_str());
      return kStartError;
    }
  }
  if (absl::Status s = CheckAlertSinks(config_); !s.ok()) {
    fprintf(stderr, "jcs serve: %s\n", std::string(s.message()).c_str());
    return kStartError;
  }
  // The log and the metrics name every project's calls: no jail may see
  // them.
  for (const auto& [what, path] :
       {std::pair<const char*, std::string>{"log_file", config_.log_file()},
        {"metrics_textfile", config_.metrics_textfile()}}) {
    if (path.empty()) continue;
    if (absl::Status s = CheckOutsideJailView(what, path); !s.ok()) {
      fprintf(stderr, "jcs serve: %s\n", std::string(s.message()).c_str());
      return kStartError;
    }
  }
  {
    telemetry::logging::StructuredLog::Options log_options;
    log_options.path = config_.log_file();
    log_options.level =
        telemetry::logging::ParseLogLevel(config_.log_level())
            .value_or(LogLevel::kInfo);  // validated with the config
    absl::StatusOr<std::unique_ptr<telemetry::logging::StructuredLog>> log =
        telemetry::logging::StructuredLog::Open(std::move(log_options));
    if (!log.ok()) {
      fprintf(stderr, "jcs serve: %s\n",
              std::string(log.status().message()).c_str());
      return kStartError;
    }
    log_ = *std::move(log);
    // Written once the daemon serves: a boot that fails prints only its
    // error.
    log_->Hold();
  }
  if (absl::Status s = MakeDirs(config_.state_dir(), 0700); !s.ok()) {
    fprintf(stderr, "jcs serve: state_dir: %s\n",
            std::string(s.message()).c_str());
    return kStartError;
  }
  if (absl::Status s = MakeDirs(Dirname(config_.socket_path()), 0755);
      !s.ok()) {
    fprintf(stderr, "jcs serve: socket_path: %s\n",
            std::string(s.message()).c_str());
    return kStartError;
  }
  if (config_.has_mcp_http_socket()) {
    if (absl::Status s = MakeDirs(Dirname(config_.mcp_http_socket()), 0755);
        !s.ok()) {
      fprintf(stderr, "jcs serve: mcp_http_socket: %s\n",
              std::string(s.message()).c_str());
      return kStartError;
    }
  }
  if (config_.has_a2a_http_socket()) {
    if (absl::Status s = MakeDirs(Dirname(config_.a2a_http_socket()), 0755);
        !s.ok()) {
      fprintf(stderr, "jcs serve: a2a_http_socket: %s\n",
              std::string(s.message()).c_str());
      return kStartError;
    }
  }
  // A daemon serves many clients: use the whole descriptor allowance.
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
      nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // Orphans of anything this daemon starts are reparented here and reaped.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) {
    fprintf(stderr, "jcs serve: signalfd: %s\n", strerror(errno));
    return kStartError;
  }

  absl::StatusOr<std::unique_ptr<runtime::EventLoop>> loop =
      runtime::EventLoop::Create();
  if (!loop.ok()) {
    fprintf(stderr, "jcs serve: %s\n",
            std::string(loop.status().message()).c_str());
    return kStartError;
  }
  loop_ = *std::move(loop);
  // Root's supplementary groups must not reach jails or the in-process file
  // tools (which run under the project's fsuid/fsgid).
  if (setgroups(0, nullptr) != 0) {
    fprintf(stderr, "jcs serve: setgroups(0): %s\n", strerror(errno));
    return kStartError;
  }
  ControlServiceOptions service_options;
  service_options.default_options =
      runtime::OptionsFromProto(config_.default_options());
  service_options.admin_uids.insert(config_.admin_uids().begin(),
                                    config_.admin_uids().end());
  service_options.admin_gids.insert(config_.admin_gids().begin(),
                                    config_.admin_gids().end());
  // A jail must never reach the daemon's socket, state or config.
  service_options.daemon_paths = {config_.socket_path(), config_.state_dir()};
  for (const std::string& path :
       {config_.mcp_http_socket(), config_.mcp_http_token_file(),
        config_.a2a_http_socket()}) {
    if (!path.empty()) service_options.daemon_paths.push_back(path);
  }
  if (!config_path_.empty()) {
    service_options.daemon_paths.push_back(config_path_);
  }
  // ... nor the log and the metrics, nor the alerts, which carry every
  // project's events.
  for (const std::string& path :
       {config_.log_file(), config_.metrics_textfile()}) {
    if (!path.empty()) service_options.daemon_paths.push_back(path);
  }
  for (const proto::AlertSink& sink : config_.alert_router().sinks()) {
    if (sink.has_file()) service_options.daemon_paths.push_back(sink.file());
    // Bound into the sink's jail: no project may hold (or write) it.
    if (sink.has_exec() && sink.exec().argv_size() > 0) {
      const std::string& program = sink.exec().argv(0);
      service_options.daemon_paths.push_back(
          program.substr(0, std::max<size_t>(1, program.rfind('/'))));
    }
    if (sink.has_unix_socket()) {
      service_options.daemon_paths.push_back(sink.unix_socket());
    }
  }
  service_options.alerts = RouterConfig(config_);
  const std::vector<std::string> daemon_paths = service_options.daemon_paths;
  service_ =
      std::make_unique<ControlService>(loop_.get(), std::move(service_options));
  service_->set_log(log_.get());

  // The journal: what a subscriber was told is durable survives kill -9, and
  // the projects that ran come back. Fail closed: a daemon that cannot keep
  // it does not start.
  runtime::journal::JournalOptions journal_options;
  journal_options.path = config_.state_dir() + "/journal.db";
  journal_options.retention.max_age_ms =
      int64_t{config_.journal_max_age_hours()} * 3600 * 1000;
  journal_options.retention.max_bytes =
      static_cast<int64_t>(config_.journal_max_bytes());
  runtime::journal::Journal::Callbacks journal_callbacks;
  journal_callbacks.durable = [this](uint64_t seq) {
    service_->OnJournalDurable(seq);
  };
  journal_callbacks.committed = [this](absl::Duration took, size_t entries) {
    service_->OnJournalCommitted(took, entries);
  };
  journal_callbacks.health = [this](const absl::Status& status,
                                    size_t pending) {
    service_->OnJournalHealth(status, pending);
  };
  absl::StatusOr<std::unique_ptr<runtime::journal::Journal>> journal =
      runtime::journal::Journal::Open(loop_.get(), journal_options,
                                      journal_callbacks);
  if (!journal.ok()) {
    fprintf(stderr, "jcs serve: %s\n",
            std::string(journal.status().message()).c_str());
    return kStartError;
  }
  journal_ = *std::move(journal);
  service_->set_journal(journal_.get());

  ControlServerOptions options;
  options.socket_path = config_.socket_path();
  options.socket_mode = config_.socket_mode();
  options.allowed_uids.insert(config_.allowed_uids().begin(),
                              config_.allowed_uids().end());
  options.allowed_gids.insert(config_.allowed_gids().begin(),
                              config_.allowed_gids().end());
  options.max_frame_bytes = config_.max_frame_bytes();
  options.max_clients = config_.max_clients();
  options.max_send_queue_bytes = config_.max_send_queue_bytes();
  absl::StatusOr<std::unique_ptr<ControlServer>> server =
      ControlServer::Start(loop_.get(), options, service_.get());
  if (!server.ok()) {
    fprintf(stderr, "jcs serve: %s\n",
            std::string(server.status().message()).c_str());
    return kStartError;
  }
  server_ = *std::move(server);
  if (config_.daemon_run()) {
    DaemonRunOptions run_options;
    run_options.enabled = true;
    run_options.max_concurrent = config_.daemon_run_max_concurrent();
    run_options.warm_shapes = config_.daemon_run_warm_shapes();
    // The same files no project root may hold.
    run_options.daemon_paths = daemon_paths;
    absl::StatusOr<std::unique_ptr<DaemonRunService>> runs =
        DaemonRunService::Start(std::move(run_options));
    if (!runs.ok()) {
      fprintf(stderr, "jcs serve: %s\n",
              std::string(runs.status().message()).c_str());
      return kStartError;
    }
    daemon_runs_ = *std::move(runs);
    server_->set_take_over([this](int fd, const PeerCredentials& peer,
                                  proto::Request request,
                                  std::vector<int> fds) {
      daemon_runs_->TakeOver(fd, peer, std::move(request), std::move(fds));
    });
  }
  service_->set_publisher([this](const proto::Event& event) {
    server_->Publish(event);
    mcp_reloads_.Publish(event);
    if (a2a_events_ != nullptr) a2a_events_->Publish(event);
  });
  service_->set_metrics_collector([this](telemetry::metrics::Exposition& exp) {
    exp.Gauge("jcs_control_clients", "Control API connections open now.", {},
              static_cast<double>(server_->client_count()));
    exp.Gauge("jcs_control_send_queue_bytes",
              "Responses and events queued for clients, not yet written.", {},
              static_cast<double>(server_->queued_bytes()));
    exp.Counter("jcs_control_clients_rejected_total",
                "Connections refused (max_clients, unauthorized peers).", {},
                static_cast<double>(server_->clients_rejected()));
    if (daemon_runs_ != nullptr) daemon_runs_->metrics().AppendTo(exp);
    if (!config_.metrics_textfile().empty()) {
      exp.Counter("jcs_metrics_textfile_errors_total",
                  "Failed rewrites of metrics_textfile.", {},
                  static_cast<double>(textfile_errors_));
    }
  });

  std::set<std::string> boot_ids;
  for (const proto::BootProject& boot : config_.projects()) {
    if (boot.has_project_id()) boot_ids.insert(boot.project_id());
  }
  const int restored = service_->RestoreProjects(boot_ids);
  if (restored > 0) {
    fprintf(stderr, "jcs serve: %d project(s) from the journal are back\n",
            restored);
  }
  for (int i = 0; i < config_.projects_size(); ++i) {
    const proto::BootProject& boot = config_.projects(i);
    runtime::StartProjectParams params;
    if (boot.has_project_id()) params.project_id = boot.project_id();
    if (boot.has_data_dir()) params.data_dir = boot.data_dir();
    if (boot.has_run_as_uid()) params.run_as_uid = boot.run_as_uid();
    if (boot.has_run_as_gid()) params.run_as_gid = boot.run_as_gid();
    absl::StatusOr<std::string> id = service_->StartProject(
        boot.root(), runtime::OptionsFromProto(boot.options()), params,
        /*boot=*/true);
    if (!id.ok()) {
      fprintf(stderr, "jcs serve: config: projects[%d]: %s\n", i,
              std::string(id.status().message()).c_str());
      return kUsageError;
    }
  }

  // One bearer token for the HTTP gateways on loopback TCP.
  std::string token;
  if (config_.has_mcp_http_address() || config_.has_a2a_http_address()) {
    absl::StatusOr<std::pair<std::string, std::string>> made =
        McpHttpToken(config_);
    if (!made.ok()) {
      fprintf(stderr, "jcs serve: %s\n",
              std::string(made.status().message()).c_str());
      return kStartError;
    }
    token = made->first;
    fprintf(stderr, "jcs serve: HTTP bearer token in %s\n",
            made->second.c_str());
  }
  if (config_.has_mcp_http_address() || config_.has_mcp_http_socket()) {
    mcp_bridge_ = std::make_unique<LoopBridge>(loop_.get(), service_.get());
    absl::StatusOr<std::unique_ptr<protocol::mcp::McpHttpServer>> http =
        StartMcpHttp(config_, token, mcp_bridge_.get(), &mcp_reloads_);
    if (!http.ok()) {
      fprintf(stderr, "jcs serve: %s\n",
              std::string(http.status().message()).c_str());
      return kStartError;
    }
    mcp_http_ = *std::move(http);
    if (config_.has_mcp_http_address()) {
      fprintf(stderr, "jcs serve: MCP HTTP on %s port %u\n",
              config_.mcp_http_address().c_str(), mcp_http_->tcp_port());
    }
    if (config_.has_mcp_http_socket()) {
      fprintf(stderr, "jcs serve: MCP HTTP on %s\n",
              config_.mcp_http_socket().c_str());
    }
  }

  if (config_.has_a2a_http_address() || config_.has_a2a_http_socket()) {
    a2a_bridge_ = std::make_unique<LoopBridge>(loop_.get(), service_.get());
    a2a_events_ = std::make_unique<A2aEventHub>();
    absl::StatusOr<std::unique_ptr<protocol::a2a::A2aHttpServer>> http =
        StartA2aHttp(config_, token, a2a_bridge_.get(), a2a_events_.get());
    if (!http.ok()) {
      fprintf(stderr, "jcs serve: %s\n",
              std::string(http.status().message()).c_str());
      return kStartError;
    }
    a2a_http_ = *std::move(http);
    if (config_.has_a2a_http_address()) {
      fprintf(stderr, "jcs serve: A2A HTTP on %s port %u\n",
              config_.a2a_http_address().c_str(), a2a_http_->tcp_port());
    }
    if (config_.has_a2a_http_socket()) {
      fprintf(stderr, "jcs serve: A2A HTTP on %s\n",
              config_.a2a_http_socket().c_str());
    }
  }

  absl::StatusOr<runtime::OpId> signals =
      loop_->PollMultishot(signal_fd_, POLLIN, [this](int res, bool more) {
        if (res > 0) OnSignal();
        if (!more && !draining_) {
          (void)loop_->PollMultishot(signal_fd_, POLLIN, [this](int r, bool) {
            if (r > 0) OnSignal();
          });
        }
      });
  if (!signals.ok()) {
    fprintf(stderr, "jcs serve: %s\n",
            std::string(signals.status().message()).c_str());
    return kStartError;
  }
  ReapChildren();  // anything inherited before the signalfd existed
  telemetry::logging::StderrLine(
      absl::StrFormat("jcs serve: listening on %s (pid %d)",
                      config_.socket_path().c_str(), getpid()));
  log_->Release();
  Log(LogLevel::kInfo, "serve.listening",
      {{"socket_path", config_.socket_path()},
       {"pid", getpid()},
       {"version", kJcsVersion},
       {"log_level", config_.log_level()}});
  if (!config_.metrics_textfile().empty()) RefreshTextfile();
  absl::Status status = loop_->Run();
  // The loop answers nothing now: MCP HTTP calls fail fast, then its
  // connections and sessions end.
  if (mcp_bridge_ != nullptr) mcp_bridge_->Close();
  mcp_http_.reset();
  if (a2a_bridge_ != nullptr) a2a_bridge_->Close();
  a2a_http_.reset();
  service_.reset();  // kills any tool call still running
  // Daemon runs: every run's jail killed, the thread stopped; its loop goes
  // after the warm builds that post to it.
  if (daemon_runs_ != nullptr) daemon_runs_->Stop();
  jail::StopWarmJailBuilds();
  jail::StopJailTeardowns();
  daemon_runs_.reset();
  server_.reset();
  journal_.reset();  // commits what is queued
  ReapChildren();
  if (!status.ok()) {
    telemetry::logging::StderrLine(absl::StrFormat(
        "jcs serve: event loop: %s", std::string(status.message()).c_str()));
    return kStartError;
  }
  // Numbers left behind would look live to a collector.
  if (!config_.metrics_textfile().empty()) {
    unlink(config_.metrics_textfile().c_str());
  }
  telemetry::logging::StderrLine("jcs serve: drained, exiting");
  Log(LogLevel::kInfo, "serve.stopped");
  return 0;
}

void Daemon::RefreshTextfile() {
  if (draining_) return;
  absl::Status s = WriteTextfileAtomically(config_.metrics_textfile(),
                                           service_->MetricsText());
  if (!s.ok()) {
    ++textfile_errors_;
    if (std::string(s.message()) != textfile_error_) {
      textfile_error_ = std::string(s.message());
      telemetry::logging::StderrLine(
          absl::StrFormat("jcs serve: %s", textfile_error_.c_str()));
      Log(LogLevel::kWarn, "serve.metrics_textfile_failed",
          {{"error", textfile_error_}});
    }
  } else {
    textfile_error_.clear();
  }
  (void)loop_->Timeout(absl::Milliseconds(config_.metrics_textfile_period_ms()),
                       [this](int res) {
                         if (res == 0) RefreshTextfile();
                       });
}

}  // namespace

int ServeMain(const std::string& config_path,
              const std::optional<std::string>& log_level) {
  proto::SupervisorConfig config = DefaultServeConfig();
  if (!config_path.empty()) {
    std::ifstream in(config_path);
    if (!in) {
      fprintf(stderr, "jcs serve: --config: cannot read %s: %s\n",
              config_path.c_str(), strerror(errno));
      return kUsageError;
    }
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<proto::SupervisorConfig> parsed =
        ParseServeConfig(text.str(), config_path);
    if (!parsed.ok()) {
      fprintf(stderr, "jcs serve: %s\n",
              std::string(parsed.status().message()).c_str());
      return kUsageError;
    }
    config = *std::move(parsed);
  }
  if (log_level.has_value()) {
    if (absl::Status s =
            telemetry::logging::ParseLogLevel(*log_level, "--log-level")
                .status();
        !s.ok()) {
      fprintf(stderr, "jcs serve: %s\n", std::string(s.message()).c_str());
      return kUsageError;
    }
    config.set_log_level(*log_level);
  }
  Daemon daemon(std::move(config), config_path);
  return daemon.Run();
}

}  // namespace jcs::supervisor
