#pragma once

#include <stdexcept>

namespace portvigil {

// Bad input from a person (command line, config file, target file). The message is one
// line that says what is wrong and where; the CLI prints it and exits with status 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace portvigil
