#include "state_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace portvigil {
namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Opens (creating, mode 0600) a regular file in the state directory, never through a
// symlink; throws naming it.
int open_private(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
  if (fd < 0) {
    const int err = errno;
    throw std::runtime_error("cannot open " + path + ": " +
                             (err == ELOOP ? std::string("it is a symbolic link; refusing to "
                                                         "follow it")
                                           : std::string(std::strerror(err))));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("cannot use " + path + ": not a regular file");
  }
  return fd;
}

}  // namespace

void prepare_state_dir(const std::string& dir) {
  const std::filesystem::path p(dir);
  std::error_code ec;
  if (p.has_parent_path() && !p.parent_path().empty()) {
    std::filesystem::create_directories(p.parent_path(), ec);
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw std::runtime_error("cannot create state directory " + dir + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    throw std::runtime_error("state directory " + dir + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw std::runtime_error("state directory " + dir + ": not a directory");
  }
  // Its owner can chmod it and swap its files whatever the mode: only this user or root.
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    throw std::runtime_error("state directory " + dir + " belongs to user id " +
                             std::to_string(st.st_uid) + ", not to the agent's user (id " +
                             std::to_string(::geteuid()) +
                             ") or root: that user could replace its files; expected it to be "
                             "owned by the user the agent runs as (chown)");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw std::runtime_error("state directory " + dir + " is writable by " +
                             ((st.st_mode & S_IWOTH) ? "every user" : "its group") + " (mode " +
                             octal(st.st_mode) +
                             "): another user could replace its files; expected mode 0700 "
                             "(chmod go-w " +
                             dir + ")");
  }
  ::close(open_private(dir + "/portvigil.db", O_RDWR));
}

int lock_state_dir(const std::string& dir) {
  const int fd = open_private(dir + "/agent.lock", O_RDWR);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw std::runtime_error("another portvigil agent is using " + dir);
  }
  return fd;
}

}  // namespace portvigil
