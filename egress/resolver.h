// Name resolution off the event loop (issue 5: the proxy resolves names
// itself, never on the loop thread).
//
// A Resolver owns a few worker threads and a bounded queue. Submit() queues
// a lookup; a worker runs the ResolveFn (getaddrinfo(3) by default, or one a
// test injects) and calls `done` on the worker thread, which is expected to
// hand the answer to the loop with EventLoop::Post(). The destructor stops
// the workers and joins them (a lookup in progress is waited for; queued
// ones are dropped without calling `done`).
#ifndef JCS_EGRESS_RESOLVER_H_
#define JCS_EGRESS_RESOLVER_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "egress/egress_policy.h"

namespace jcs::egress {

// Maps a normalized DNS name to its addresses. Must be thread-safe.
using ResolveFn =
    std::function<absl::StatusOr<std::vector<IpAddress>>(const std::string&)>;

// getaddrinfo(host, AF_UNSPEC, SOCK_STREAM), deduplicated, in the resolver's
// order. NOT_FOUND when the name has no address.
absl::StatusOr<std::vector<IpAddress>> SystemResolve(const std::string& host);

class Resolver {
 public:
  using Done =
      std::function<void(absl::StatusOr<std::vector<IpAddress>> addresses)>;

  Resolver(ResolveFn fn, int threads, size_t max_queue);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // RESOURCE_EXHAUSTED when max_queue lookups are already waiting,
  // FAILED_PRECONDITION after Stop().
  absl::Status Submit(std::string host, Done done);
  // Stops and joins the workers (idempotent).
  void Stop();

 private:
  struct Job {
    std::string host;
    Done done;
  };
  void Work();

  const ResolveFn fn_;
  const size_t max_queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace jcs::egress

#endif  // JCS_EGRESS_RESOLVER_H_
