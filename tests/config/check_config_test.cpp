// `portvigil check-config FILE`: exit 0 with "FILE: OK (...)" on stdout, or exit 2 with one
// "portvigil: ..." line on stderr.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "portvigil/config/agent_config.hpp"

namespace portvigil {
namespace {

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

Outcome run(std::vector<std::string> args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  Outcome o;
  o.status = check_config_command(views);
  o.out = ::testing::internal::GetCapturedStdout();
  o.err = ::testing::internal::GetCapturedStderr();
  return o;
}

class CheckConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("portvigil-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

constexpr std::string_view kValid = R"([[authorization]]
networks = ["198.18.0.0/24", "2001:db8::/64"]

[[job]]
name = "web"
targets = ["198.18.0.1"]
interval = "15m"
)";

TEST_F(CheckConfig, ValidFileExitsZero) {
  const auto path = write("ok.toml", std::string(kValid));
  const auto o = run({path});
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.out, path + ": OK (1 job, 2 authorized networks)\n");
  EXPECT_EQ(o.err, "");
}

TEST_F(CheckConfig, ExampleFileIsValid) {
  const auto o = run({PORTVIGIL_EXAMPLE_CONFIG});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out,
            std::string(PORTVIGIL_EXAMPLE_CONFIG) + ": OK (2 jobs, 3 authorized networks)\n");
}

TEST_F(CheckConfig, InvalidFileExitsTwoWithOneLine) {
  const auto path = write("bad.toml", std::string(kValid) + "intervall = \"1m\"\n");
  const auto o = run({path});
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "portvigil: " + path +
                       ":8:1: job \"web\": unknown key \"intervall\" (did you mean "
                       "\"interval\"?)\n");
}

TEST_F(CheckConfig, ExpiredAuthorizationWarnsButPasses) {
  const auto path = write("old.toml",
                          "[[authorization]]\nnetworks = [\"198.18.0.0/24\"]\n"
                          "expires = 2000-01-01\n[[job]]\nname = \"web\"\n"
                          "targets = [\"198.18.0.0/30\"]\ninterval = \"1h\"\n");
  const auto o = run({path});
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.out, path + ": OK (1 job, 1 authorized network)\n");
  EXPECT_NE(o.err.find("portvigil: warning: " + path +
                       ":3:11: authorization #1: key \"expires\": 2000-01-01 has passed"),
            std::string::npos)
      << o.err;
}

TEST_F(CheckConfig, MissingFileExitsTwo) {
  const auto o = run({(dir_ / "absent.toml").string()});
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err, "portvigil: " + (dir_ / "absent.toml").string() +
                       ": cannot open configuration file: No such file or directory\n");
}

// check-config /dev/zero aborted on bad_alloc; a device is not a configuration file.
TEST_F(CheckConfig, DeviceIsRefused) {
  const auto o = run({"/dev/zero"});
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err,
            "portvigil: /dev/zero: not a regular file, expected a TOML configuration file\n");
}

TEST_F(CheckConfig, FileOver16MiBIsRefused) {
  const auto path = write("huge.toml", std::string(kValid));
  std::filesystem::resize_file(path, kMaxConfigBytes + 1);
  const auto o = run({path});
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err, "portvigil: " + path +
                       ": the configuration file is larger than 16 MiB; expected a TOML "
                       "configuration file\n");
  std::filesystem::resize_file(path, kValid.size());
  EXPECT_EQ(run({path}).status, 0);
}

TEST_F(CheckConfig, PipeIsReadUpToTheLimit) {
  const auto fifo = (dir_ / "pipe.toml").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] {
    std::ofstream out(fifo);
    out << kValid;
  });
  const auto o = run({fifo});
  writer.join();
  EXPECT_EQ(o.status, 0) << o.err;
}

// Error text quotes the file: a 1 MB token and control bytes must not reach the terminal.
TEST_F(CheckConfig, ErrorTextIsEscapedAndCut) {
  const auto path = write("junk.toml", std::string(kValid) + "x = \"" + std::string(1 << 20, 'a') +
                                           "\x1b[31m\"\n" + std::string(1 << 20, 'b') + "\n");
  const auto o = run({path});
  EXPECT_EQ(o.status, 2);
  EXPECT_LT(o.err.size(), 2000u) << o.err.substr(0, 300);
  EXPECT_EQ(o.err.find('\x1b'), std::string::npos);
  EXPECT_EQ(o.err.find('\n'), o.err.size() - 1) << "one line";
  const auto arg = run({std::string("--a\nportvigil: forged ") + std::string(5000, 'z')});
  EXPECT_EQ(arg.err.find('\n'), arg.err.size() - 1) << arg.err;
  EXPECT_LT(arg.err.size(), 400u);
}

TEST_F(CheckConfig, UsageErrorsExitTwo) {
  EXPECT_EQ(run({}).status, 2);
  EXPECT_EQ(run({"a.toml", "b.toml"}).status, 2);
  const auto o = run({"--frobnicate"});
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err,
            "portvigil: check-config: unknown option \"--frobnicate\" (see portvigil "
            "check-config --help)\n");
}

TEST_F(CheckConfig, HelpExitsZero) {
  for (const char* flag : {"--help", "-h"}) {
    const auto o = run({flag});
    EXPECT_EQ(o.status, 0);
    EXPECT_EQ(o.out.rfind("Usage: portvigil check-config FILE\n", 0), 0u);
    EXPECT_EQ(o.err, "");
  }
}

TEST_F(CheckConfig, DefaultConfigTextIsValid) {
  const auto path = write("default.toml", std::string(default_config_toml()));
  const auto o = run({path});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, path + ": OK (1 job, 2 authorized networks)\n");
}

}  // namespace
}  // namespace portvigil
