// `portvigil agent --web.listen-address` serves the endpoint where it is told to.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

namespace {

int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  socklen_t len = sizeof sin;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  close(fd);
  return ntohs(sin.sin_port);
}

std::string capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n = 0;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

TEST(AgentBinary, WebListenAddressFlagOverridesTheConfig) {
  const auto dir =
      std::filesystem::path(testing::TempDir()) / ("pv-web-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string address = "127.0.0.1:" + std::to_string(free_loopback_port());
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl(PORTVIGIL_BINARY, PORTVIGIL_BINARY, "agent", "--state-dir", dir.c_str(),
          "--web.listen-address", address.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string healthy;
  for (int i = 0; i < 100 && healthy.find("healthy") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    healthy = capture("curl -s http://" + address + "/-/healthy");
  }
  const std::string metrics = capture("curl -s http://" + address + "/metrics");
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);
  EXPECT_NE(healthy.find("portvigil is healthy"), std::string::npos) << healthy;
  EXPECT_NE(metrics.find("portvigil_build_info"), std::string::npos) << metrics;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// "999.1.1.1:1" was handed to civetweb, which bound 231.1.1.1:1; the flag is now checked
// like the web-listen-address key: exit 2 before anything starts (timeout guards the old
// behaviour, a running agent).
TEST(AgentBinary, WebListenAddressFlagIsValidated) {
  const auto dir =
      std::filesystem::path(testing::TempDir()) / ("pv-web-bad-" + std::to_string(getpid()));
  for (const char* bad : {"999.1.1.1:1", "127.0.0.1", "[::1]:70000", "::1:10117"}) {
    const std::string out =
        capture(std::string("timeout 20 ") + PORTVIGIL_BINARY + " agent --state-dir " +
                dir.string() + " --web.listen-address '" + bad + "' 2>&1; echo rc=$?");
    EXPECT_NE(out.find("portvigil: --web.listen-address: expected a listen address"),
              std::string::npos)
        << bad << ": " << out;
    EXPECT_NE(out.find("rc=2"), std::string::npos) << bad << ": " << out;
  }
  std::filesystem::remove_all(dir);
}

// A web configuration that cannot be used is a configuration error: exit 2 before anything
// listens, naming the file and the line, from the agent and from check-config alike.
TEST(AgentBinary, BadWebConfigFileIsAConfigurationError) {
  const auto dir =
      std::filesystem::path(testing::TempDir()) / ("pv-web-cfg-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto web = (dir / "web.yml").string();
  FILE* f = std::fopen(web.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("basic_auth_users:\n  prometheus: plaintext\n", f);
  std::fclose(f);
  auto out =
      capture(std::string("timeout 20 ") + PORTVIGIL_BINARY + " agent --state-dir " + dir.string() +
              " --web.listen-address 127.0.0.1:0 --web.config.file " + web + " 2>&1; echo rc=$?");
  EXPECT_NE(out.find(web + ":2:15: the password of \"prometheus\" is not a bcrypt hash"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
  out =
      capture(std::string("timeout 20 ") + PORTVIGIL_BINARY + " agent --state-dir " + dir.string() +
              " --web.config.file " + (dir / "none.yml").string() + " 2>&1; echo rc=$?");
  EXPECT_NE(out.find("none.yml: cannot read the web configuration file"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
  const auto toml = (dir / "portvigil.toml").string();
  f = std::fopen(toml.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(
      ("[agent]\nweb-config-file = \"" + web +
       "\"\n[[authorization]]\nnetworks = [\"127.0.0.1/32\"]\n"
       "[[job]]\nname = \"lo\"\ntargets = [\"127.0.0.1\"]\nports = \"22\"\ninterval = \"1m\"\n")
          .c_str(),
      f);
  std::fclose(f);
  out = capture(std::string(PORTVIGIL_BINARY) + " check-config " + toml + " 2>&1; echo rc=$?");
  EXPECT_NE(out.find("is not a bcrypt hash"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

// A file sink must not write the event log's file, however its path is spelt and wherever
// --state-dir moves the log: a configuration error (exit 2) before anything starts.
TEST(AgentBinary, AFileSinkNamingTheEventLogIsAConfigurationError) {
  const auto dir =
      std::filesystem::path(testing::TempDir()) / ("pv-sink-alias-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "state");
  const auto config = (dir / "agent.toml").string();
  const auto write_config = [&](const std::string& path) {
    FILE* f = std::fopen(config.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(("[[authorization]]\nnetworks = [\"127.0.0.0/8\"]\n[[job]]\nname = \"j\"\n"
                "targets = [\"127.0.0.1\"]\nports = \"1\"\ninterval = \"1h\"\n"
                "[[sink]]\nname = \"copy\"\ntype = \"file\"\npath = \"" +
                path + "\"\n")
                   .c_str(),
               f);
    std::fclose(f);
  };
  // The default event log under --state-dir, spelt with "//" and "/./".
  for (const auto& alias :
       {(dir / "state//events.jsonl").string(), (dir / "state/./events.jsonl").string()}) {
    write_config(alias);
    const std::string out =
        capture(std::string("timeout 20 ") + PORTVIGIL_BINARY + " agent --once --config " + config +
                " --state-dir " + (dir / "state").string() + " 2>&1; echo rc=$?");
    EXPECT_NE(out.find("sink \"copy\": key \"path\": names the same file as the event log"),
              std::string::npos)
        << alias << ": " << out;
    EXPECT_NE(out.find("rc=2"), std::string::npos) << alias << ": " << out;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
