// The event log and the state directory are not followed blindly (issue #11): no symlink is
// followed, only regular files are read back or repaired, a file that holds no event is left
// alone, and everything the agent creates is private whatever the umask.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "agent_test_util.hpp"
#include "portvigil/exporters/event_log.hpp"
#include "state_dir.hpp"

namespace portvigil {
namespace {

using test::read_all;
using test::write_all;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Runs `fn` under umask `mask`, restoring the old one.
template <typename Fn>
void with_umask(mode_t mask, Fn&& fn) {
  const mode_t old = ::umask(mask);
  try {
    fn();
  } catch (...) {
    ::umask(old);
    throw;
  }
  ::umask(old);
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

const std::string kEvent =
    "{\"id\":1,\"time\":\"2023-11-14T22:13:20.123Z\",\"job\":\"web\",\"host\":\"h\"}\n";

// A symlink in the state directory pointing at another file: the file must not be truncated,
// read back or appended to.
TEST(EventLogFiles, SymlinkIsRefusedAndTargetUntouched) {
  test::TempDir dir("symlink");
  const auto target = dir.file("precious");
  const std::string content = "{\"id\":1,\"time\":\"2023-11-14T22";  // looks like a torn line
  write_all(target, content);
  const auto link = dir.file("events.jsonl");
  std::filesystem::create_symlink(target, link);
  const auto what = error_of([&] { EventLog log(link); });
  EXPECT_NE(what.find("symbolic link"), std::string::npos) << what;
  EXPECT_EQ(read_all(target), content);
}

TEST(EventLogFiles, FifoAndDirectoryAreRefused) {
  test::TempDir dir("fifo");
  const auto fifo = dir.file("events.jsonl");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto what = error_of([&] { EventLog log(fifo); });  // must not block either
  EXPECT_NE(what.find("not a regular file"), std::string::npos) << what;
  const auto sub = dir.file("sub");
  std::filesystem::create_directory(sub);
  what = error_of([&] { EventLog log(sub); });
  EXPECT_NE(what.find(sub), std::string::npos) << what;
  EXPECT_FALSE(what.empty());
}

// event-log pointed at the configuration file: nothing in it is an event, so it is neither
// "repaired" (its unterminated last line cut) nor written to.
TEST(EventLogFiles, ForeignContentIsLeftAlone) {
  test::TempDir dir("foreign");
  const auto path = dir.file("portvigil.toml");
  const std::string config = "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n# no newline";
  write_all(path, config);
  const auto what = error_of([&] { EventLog log(path); });
  EXPECT_NE(what.find("not an event log"), std::string::npos) << what;
  EXPECT_EQ(read_all(path), config);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.str()), {}), 1);
}

TEST(EventLogFiles, NewFileIsPrivateWhateverTheUmask) {
  test::TempDir dir("umask-log");
  const auto path = dir.file("events.jsonl");
  with_umask(0, [&] { EventLog log(path); });
  EXPECT_EQ(mode_of(path), 0600);
  // The copy that replaces a file with lines set aside is private too.
  write_all(path, kEvent + "junk\n");
  ::chmod(path.c_str(), 0600);
  with_umask(0, [&] { EventLog log(path); });
  EXPECT_EQ(mode_of(path), 0600);
}

TEST(StateDir, CreatedPrivateWhateverTheUmask) {
  test::TempDir dir("umask-state");
  const auto state = dir.file("state");
  with_umask(0, [&] {
    prepare_state_dir(state);
    const int lock = lock_state_dir(state);
    ::close(lock);
  });
  EXPECT_EQ(mode_of(state), 0700);
  EXPECT_EQ(mode_of(state + "/portvigil.db"), 0600);
  EXPECT_EQ(mode_of(state + "/agent.lock"), 0600);
  // An existing private directory is fine, twice.
  EXPECT_NO_THROW(prepare_state_dir(state));
}

TEST(StateDir, GroupOrWorldWritableIsRefused) {
  test::TempDir dir("writable");
  const auto state = dir.file("state");
  std::filesystem::create_directory(state);
  ::chmod(state.c_str(), 0777);
  auto what = error_of([&] { prepare_state_dir(state); });
  EXPECT_NE(what.find("writable by every user (mode 0777)"), std::string::npos) << what;
  ::chmod(state.c_str(), 0770);
  what = error_of([&] { prepare_state_dir(state); });
  EXPECT_NE(what.find("writable by its group"), std::string::npos) << what;
  EXPECT_FALSE(std::filesystem::exists(state + "/portvigil.db"));
  ::chmod(state.c_str(), 0755);
  EXPECT_NO_THROW(prepare_state_dir(state));
}

// Needs root to give the directory away; CI runs as root.
TEST(StateDir, OwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) {
    const char* require = std::getenv("PORTVIGIL_REQUIRE_LAB");
    if (require != nullptr && std::string(require) == "1") FAIL() << "needs root";
    GTEST_SKIP() << "needs root to chown a directory to another user";
  }
  test::TempDir dir("owned");
  const auto state = dir.file("state");
  std::filesystem::create_directory(state);
  ::chmod(state.c_str(), 0700);
  ASSERT_EQ(::chown(state.c_str(), 4242, 4242), 0);
  const auto what = error_of([&] { prepare_state_dir(state); });
  EXPECT_NE(what.find("belongs to user id 4242"), std::string::npos) << what;
  EXPECT_FALSE(std::filesystem::exists(state + "/portvigil.db"));
  ASSERT_EQ(::chown(state.c_str(), 0, 0), 0);
  EXPECT_NO_THROW(prepare_state_dir(state));
}

TEST(StateDir, SymlinkedDatabaseOrLockIsRefused) {
  test::TempDir dir("state-links");
  const auto state = dir.file("state");
  prepare_state_dir(state);
  const auto target = dir.file("other");
  write_all(target, "keep");
  std::filesystem::remove(state + "/portvigil.db");
  std::filesystem::create_symlink(target, state + "/portvigil.db");
  auto what = error_of([&] { prepare_state_dir(state); });
  EXPECT_NE(what.find("symbolic link"), std::string::npos) << what;
  std::filesystem::create_symlink(target, state + "/agent.lock");
  what = error_of([&] { ::close(lock_state_dir(state)); });
  EXPECT_NE(what.find("symbolic link"), std::string::npos) << what;
  EXPECT_EQ(read_all(target), "keep");
}

}  // namespace
}  // namespace portvigil
