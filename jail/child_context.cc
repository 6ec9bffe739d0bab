#include "jail/child_context.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "jail/env.h"
#include "jail/landlock.h"
#include "jail/mount_plan.h"
#include "jail/seccomp_precompiled.h"

namespace jcs::jail {

// The program's environment: the baseline, the spec's variables and, in
// egress mode, the proxy variables every common client honours (a program
// that ignores them has no route anyway).
std::vector<std::string> ProgramEnv(const proto::JailSpec& spec,
                                    int egress_port) {
  std::vector<std::string> env = BuildJailEnv(spec);
  if (spec.net() != proto::NET_EGRESS) return env;
  const std::string proxy = absl::StrCat("http://127.0.0.1:", egress_port);
  static constexpr const char* kProxyVars[] = {"HTTP_PROXY",  "HTTPS_PROXY",
                                               "ALL_PROXY",   "http_proxy",
                                               "https_proxy", "all_proxy"};
  env.erase(
      std::remove_if(env.begin(), env.end(),
                     [](const std::string& var) {
                       for (const char* key : kProxyVars) {
                         if (absl::StartsWith(var, absl::StrCat(key, "="))) {
                           return true;
                         }
                       }
                       return absl::StartsWith(var, "NO_PROXY=") ||
                              absl::StartsWith(var, "no_proxy=");
                     }),
      env.end());
  for (const char* key : kProxyVars) {
    env.push_back(absl::StrCat(key, "=", proxy));
  }
  env.push_back("NO_PROXY=");
  env.push_back("no_proxy=");
  return env;
}

absl::Status FillChildContext(const proto::JailSpec& spec, bool warm,
                              ChildContext* ctx,
                              std::vector<std::string>* warnings,
                              std::map<std::string, std::string>* layers) {
  absl::StatusOr<MountPlan> plan = PlanMounts(spec);
  if (!plan.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("mounts: ", plan.status().message()));
  }
  ctx->staging_dir = StagingDir();
  ctx->binds = std::move(plan->binds);
  ctx->symlinks = std::move(plan->symlinks);
  ctx->pins = std::move(plan->pins);
  ctx->pins_after = plan->pins_after;
  std::vector<std::string>& read_exec = plan->read_exec;
  std::vector<std::string>& read_write = plan->read_write;
  ctx->tmp_size = absl::StrCat(spec.tmp_size_bytes());
  ctx->loopback = spec.net() == proto::NET_LOOPBACK;
  ctx->egress = spec.net() == proto::NET_EGRESS;
  ctx->hostname = spec.hostname();
  ctx->uid = spec.uid();
  ctx->gid = spec.gid();
  ctx->cwd = spec.cwd().empty() ? spec.root() : spec.cwd();
  ctx->argv_storage.assign(spec.argv().begin(), spec.argv().end());
  ctx->env_storage = ProgramEnv(spec, ctx->egress_port);
  ctx->warm = warm;
  ctx->argv.clear();
  for (std::string& arg : ctx->argv_storage) ctx->argv.push_back(arg.data());
  ctx->argv.push_back(nullptr);
  ctx->envp.clear();
  for (std::string& var : ctx->env_storage) {
    ctx->envp.push_back(var.data());
    if (absl::StartsWith(var, "PATH=")) ctx->path_env = var.substr(5);
  }
  ctx->envp.push_back(nullptr);
  ctx->nofile = spec.nofile();
  ctx->fsize = spec.fsize_bytes();
  ctx->seccomp = PrecompiledDefaultPolicy().program();

  const int abi = spec.landlock() == proto::LANDLOCK_OFF ? 0 : LandlockAbi();
  if (spec.landlock() == proto::LANDLOCK_REQUIRED && abi == 0) {
    return absl::FailedPreconditionError(
        "landlock: required but this kernel has no Landlock (fix: a kernel "
        "with CONFIG_SECURITY_LANDLOCK=y and landlock in the lsm= boot "
        "parameter, or --landlock best-effort)");
  }
  if (spec.landlock() == proto::LANDLOCK_OFF) {
    (*layers)["landlock"] = "off (--landlock off)";
  } else if (abi == 0) {
    (*layers)["landlock"] = "not enforced: the kernel has no Landlock";
    warnings->push_back(
        "landlock is unavailable on this kernel; mounts and seccomp still "
        "apply");
  }
  if (abi > 0) {
    read_write.push_back("/tmp");
    read_write.push_back("/dev/shm");
    std::string landlock_error;
    if (!BuildLandlockPlan(abi, read_exec, {"/"}, read_write, {"/dev"},
                           &ctx->landlock, &landlock_error)) {
      return absl::FailedPreconditionError(
          absl::StrCat("landlock: ", landlock_error));
    }
  }
  return absl::OkStatus();
}

}  // namespace jcs::jail
