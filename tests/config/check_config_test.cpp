// `portvigil check-config FILE`: exit 0 with "FILE: OK (...)" on stdout, or exit 2 with one
// "portvigil: ..." line on stderr.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
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
