// RealPacketIo owns its descriptors: a constructor that throws after opening its raw sockets
// (here: no route to the first target) must not leak them. Runs in a forked child inside a
// fresh, empty network namespace (root only): nothing can be sent, and the route lookup
// fails there.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "portvigil/scanner/packet_io.hpp"

namespace portvigil {
namespace {

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST(RealPacketIo, FailedConstructorLeaksNoDescriptor) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (raw sockets, a network namespace)";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(3);
    IoRequest req;
    req.capture_filter = "tcp";
    req.first_target = asio::ip::make_address("198.18.0.1");  // no route: lo is down
    req.scope.add(parse_cidr("198.18.0.1"));
    const auto before = open_fds();
    for (int i = 0; i < 3; ++i) {
      try {
        (void)real_packet_io()(req);
        ::_exit(4);  // expected to throw
      } catch (const std::runtime_error&) {
      }
    }
    ::_exit(open_fds() == before ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) GTEST_SKIP() << "unshare(CLONE_NEWNET) not permitted";
  EXPECT_NE(WEXITSTATUS(status), 4) << "the constructor did not throw";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "descriptors leaked by a failed constructor";
}

}  // namespace
}  // namespace portvigil
