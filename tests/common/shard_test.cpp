#include "portvigil/common/shard.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "portvigil/common/errors.hpp"

namespace portvigil {
namespace {

// Known values: Python's hashlib.md5(s).digest()[8:] read big-endian, modulo n, which is
// what Prometheus' relabel action "hashmod" computes (relabel.go: md5.Sum, last 8 bytes).
TEST(Hashmod, MatchesPrometheusOnKnownValues) {
  EXPECT_EQ(prometheus_hashmod("198.18.0.1", 3), 1u);
  EXPECT_EQ(prometheus_hashmod("198.18.0.2", 3), 2u);
  EXPECT_EQ(prometheus_hashmod("198.18.0.7", 4), 2u);
  EXPECT_EQ(prometheus_hashmod("2001:db8::1", 3), 0u);
  EXPECT_EQ(prometheus_hashmod("127.0.0.1", 2), 0u);
  EXPECT_EQ(prometheus_hashmod("db1.lab.invalid", 5), 3u);
  EXPECT_EQ(prometheus_hashmod("", 7), 1u);
  // The whole 64-bit value: 0xb3bc52cf12dccf31.
  EXPECT_EQ(prometheus_hashmod("198.18.0.1", 1000000007), 79649516u);
  EXPECT_EQ(prometheus_hashmod("198.18.0.1", UINT64_MAX), 0xb3bc52cf12dccf31u);
}

TEST(Shard, ShardsOfOneCountAreDisjointAndCoverEveryHost) {
  for (std::uint32_t n : {1u, 2u, 3u, 4u, 7u}) {
    std::set<std::uint32_t> used;
    for (int host = 0; host < 256; ++host) {
      const std::string key = "198.18.0." + std::to_string(host);
      int owners = 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        if (Shard{i, n}.owns(key)) {
          ++owners;
          used.insert(i);
        }
      }
      EXPECT_EQ(owners, 1) << key << " in " << n << " shards";
    }
    EXPECT_EQ(used.size(), n) << "256 hosts leave a shard of " << n << " empty";
  }
  EXPECT_TRUE(Shard{}.owns("anything"));
  EXPECT_TRUE(Shard{}.whole());
}

TEST(Shard, ParsesAndPrints) {
  EXPECT_EQ(parse_shard("0/3"), (Shard{0, 3}));
  EXPECT_EQ(parse_shard("2/3"), (Shard{2, 3}));
  EXPECT_EQ(parse_shard("0/1"), Shard{});
  EXPECT_EQ(parse_shard("65535/65536"), (Shard{65535, 65536}));
  EXPECT_EQ((Shard{1, 4}).text(), "1/4");
}

TEST(Shard, RejectsWhatIsNotIOfN) {
  auto message = [](const char* text) {
    try {
      (void)parse_shard(text);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("3/3").find("I must be 0 to 2"), std::string::npos) << message("3/3");
  EXPECT_NE(message("1/0").find("N must be 1 to 65536"), std::string::npos);
  EXPECT_NE(message("0/65537").find("N must be 1 to 65536"), std::string::npos);
  EXPECT_NE(message("1").find("expected \"I/N\""), std::string::npos);
  for (const char* bad :
       {"", "/", "a/3", "1/b", "-1/3", "1/3x", " 1/3", "1//3", "1/+3", "99999999999/3", "1/3/4"}) {
    EXPECT_NE(message(bad).find("invalid shard"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace portvigil
