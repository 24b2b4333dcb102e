// The agent's state directory: created private, refused when others may write to it, and
// its files (database, lock) created 0600 whatever the umask, never through a symlink.
#pragma once

#include <string>

namespace portvigil {

// Creates `dir` (mode 0700; missing parents as the umask allows) or checks the existing one,
// and pre-creates the database file `dir`/portvigil.db with mode 0600 so that SQLite (which
// gives its -wal and -shm files the database's mode) never makes a world-readable file.
// Throws std::runtime_error naming the directory when it is not a directory, when its
// group or others may write to it (they could plant a symlink or swap the database), or when
// it belongs to a user other than the agent's or root (who could chmod it and do the same).
void prepare_state_dir(const std::string& dir);

// One agent per state directory: takes `dir`/agent.lock (mode 0600, not through a symlink)
// and returns the descriptor, held until exit. Throws when another agent holds it.
int lock_state_dir(const std::string& dir);

}  // namespace portvigil
