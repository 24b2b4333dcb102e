// The silence policy both engines share: how many transmissions a silent probe gets.
#include <gtest/gtest.h>

#include "silence_policy.hpp"

namespace portvigil::engine {
namespace {

TEST(SilencePolicy, NoLossOnEnoughAnswersNeedsOneQuietRetransmission) {
  const LossEvidence clean{kLossFreeSample, 0};
  EXPECT_EQ(min_attempts(clean, 2), 2);
  EXPECT_EQ(min_attempts(clean, 10), 2);
  EXPECT_EQ(loss_rounds(clean, 5000), 1);
  // --max-retries below that is honoured: 0 retries means one transmission.
  EXPECT_EQ(min_attempts(clean, 0), 1);
  EXPECT_EQ(max_attempts(0), 1);
}

TEST(SilencePolicy, TooFewAnswersFallBackToMaxRetries) {
  const LossEvidence few{kLossFreeSample - 1, 0};
  EXPECT_EQ(min_attempts(few, 2), 3);
  EXPECT_EQ(min_attempts(LossEvidence{}, 4), 5);
}

TEST(SilencePolicy, MeasuredLossAsksForMoreQuietRounds) {
  // 5% loss, 1000 silent ports: 1000 * 0.05^k < 0.1 needs k = 4 (0.05^3 * 1000 = 0.125).
  const LossEvidence lossy{1000, 50};
  EXPECT_EQ(loss_rounds(lossy, 1000), 4);
  EXPECT_EQ(min_attempts(lossy, 2), 3);  // any loss: --max-retries stands
  // Fewer silent ports need fewer rounds; one silent port at 5%: 0.05^1 < 0.1.
  EXPECT_EQ(loss_rounds(lossy, 1), 1);
  EXPECT_EQ(max_attempts(2), 2 + 1 + kMaxExtraAttempts);
}

TEST(SilencePolicy, LossAtOrAboveOneNeverSettles) {
  // Every answered probe needed retransmissions: no round count makes silence safe, and the
  // number stays finite (no float-to-int overflow).
  EXPECT_GT(loss_rounds(LossEvidence{10, 10}, 100), max_attempts(50));
  EXPECT_GT(loss_rounds(LossEvidence{10, 30}, 100), max_attempts(50));
  EXPECT_EQ(loss_rounds(LossEvidence{10, 0}, 0), 1);
}

}  // namespace
}  // namespace portvigil::engine
