#include "egress/resolver.h"

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace jcs::egress {
namespace {

TEST(SystemResolveTest, LocalhostFromHosts) {
  absl::StatusOr<std::vector<IpAddress>> a = SystemResolve("localhost");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_FALSE(a->empty());
  EXPECT_EQ(ClassifyAddress((*a)[0]), AddressClass::kLoopback);
}

TEST(SystemResolveTest, InvalidName) {
  EXPECT_FALSE(SystemResolve("no-such-host.invalid.").ok());
}

TEST(ResolverTest, RunsOffThreadAndCallsBack) {
  const std::thread::id caller = std::this_thread::get_id();
  Resolver r(
      [](const std::string& host) -> absl::StatusOr<std::vector<IpAddress>> {
        if (host == "a.test")
          return std::vector<IpAddress>{*IpAddress::Parse("203.0.113.7")};
        return absl::NotFoundError(host);
      },
      2, 8);
  std::promise<std::string> p1, p2;
  ASSERT_TRUE(r.Submit("a.test", [&](absl::StatusOr<std::vector<IpAddress>> a) {
                 EXPECT_NE(std::this_thread::get_id(), caller);
                 p1.set_value(a.ok() ? (*a)[0].ToString() : "error");
               }).ok());
  ASSERT_TRUE(r.Submit("b.test", [&](absl::StatusOr<std::vector<IpAddress>> a) {
                 p2.set_value(a.ok() ? "ok" : "error");
               }).ok());
  EXPECT_EQ(p1.get_future().get(), "203.0.113.7");
  EXPECT_EQ(p2.get_future().get(), "error");
}

TEST(ResolverTest, BoundedQueue) {
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> done{0};
  Resolver r(
      [gate](const std::string&) -> absl::StatusOr<std::vector<IpAddress>> {
        gate.wait();
        return std::vector<IpAddress>{};
      },
      1, 2);
  auto cb = [&](absl::StatusOr<std::vector<IpAddress>>) { ++done; };
  ASSERT_TRUE(r.Submit("1", cb).ok());
  // The worker takes the first job; wait until the queue is empty again.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(r.Submit("2", cb).ok());
  ASSERT_TRUE(r.Submit("3", cb).ok());
  absl::Status s = r.Submit("4", cb);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  release.set_value();
  r.Stop();
  EXPECT_FALSE(r.Submit("5", cb).ok());
}

}  // namespace
}  // namespace jcs::egress
