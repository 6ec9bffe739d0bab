#include "egress/resolver.h"

#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace jcs::egress {

absl::StatusOr<std::vector<IpAddress>> SystemResolve(const std::string& host) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return absl::NotFoundError(
        absl::StrCat("getaddrinfo(", host, "): ", gai_strerror(rc)));
  }
  std::vector<IpAddress> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    IpAddress a;
    if (ai->ai_family == AF_INET) {
      a.family = AF_INET;
      memcpy(a.bytes.data(),
             &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, 4);
    } else if (ai->ai_family == AF_INET6) {
      a.family = AF_INET6;
      memcpy(a.bytes.data(),
             &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  freeaddrinfo(res);
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("getaddrinfo(", host, "): no IPv4/IPv6 address"));
  }
  return out;
}

Resolver::Resolver(ResolveFn fn, int threads, size_t max_queue)
    : fn_(fn ? std::move(fn) : ResolveFn(SystemResolve)),
      max_queue_(std::max<size_t>(max_queue, 1)) {
  threads = std::clamp(threads, 1, 64);
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

Resolver::~Resolver() { Stop(); }

void Resolver::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

absl::Status Resolver::Submit(std::string host, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return absl::FailedPreconditionError("resolver stopped");
    }
    if (queue_.size() >= max_queue_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("resolver queue full (", max_queue_, " lookups)"));
    }
    queue_.push_back(Job{std::move(host), std::move(done)});
  }
  cv_.notify_one();
  return absl::OkStatus();
}

void Resolver::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<std::vector<IpAddress>> result = fn_(job.host);
    {
      // A lookup that finishes after Stop() is dropped.
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    job.done(std::move(result));
  }
}

}  // namespace jcs::egress
