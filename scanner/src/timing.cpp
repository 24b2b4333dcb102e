// Nmap's timing templates (-T0..-T5), mapped onto portvigil's timing options. Nmap paces
// the slow ones with a delay between probes and one probe at a time; here that is the same
// rate cap and a window of one.
#include <stdexcept>
#include <string>

#include "portvigil/scanner/engine.hpp"

namespace portvigil {

TimingOptions timing_template(int level) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  TimingOptions t;
  switch (level) {
    case 0:  // paranoid: one probe every 5 minutes
      t.max_rate = 1.0 / 300;
      t.max_parallelism = 1;
      t.initial_rtt_timeout = t.max_rtt_timeout = seconds(300);
      break;
    case 1:  // sneaky: one probe every 15 s
      t.max_rate = 1.0 / 15;
      t.max_parallelism = 1;
      t.initial_rtt_timeout = t.max_rtt_timeout = seconds(15);
      break;
    case 2:  // polite: one probe every 0.4 s
      t.max_rate = 2.5;
      t.max_parallelism = 1;
      break;
    case 3:  // normal: the defaults
      break;
    case 4:  // aggressive: Nmap's -T4 timeouts, which are portvigil's defaults
      t.min_rtt_timeout = milliseconds(100);
      t.max_rtt_timeout = milliseconds(1250);
      t.initial_rtt_timeout = milliseconds(500);
      break;
    case 5:  // insane
      t.min_rtt_timeout = milliseconds(50);
      t.max_rtt_timeout = milliseconds(300);
      t.initial_rtt_timeout = milliseconds(250);
      t.host_timeout = seconds(900);
      break;
    default:
      throw std::invalid_argument("timing template " + std::to_string(level) + " is not 0-5");
  }
  return t;
}

}  // namespace portvigil
