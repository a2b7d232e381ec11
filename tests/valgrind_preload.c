/* Preloaded only for valgrind runs of the faceau program (.ci/run). libavcodec pulls in libjxl
 * and its libhwy, whose start-up code measures hwy::platform::TimerResolution() with RDTSCP, an
 * instruction valgrind 3.19 cannot run (SIGILL before main). The value only feeds Highway's
 * benchmark helpers, never image decoding, so this stand-in (called through the PLT, hence
 * interposable) changes nothing faceau computes. The C name is the C++ symbol's mangled name. */
#include <stdint.h>

uint64_t _ZN3hwy8platform15TimerResolutionEv(void);

uint64_t _ZN3hwy8platform15TimerResolutionEv(void) {
    return 1;
}
