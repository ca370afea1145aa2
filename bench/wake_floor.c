/*
 * The wake-up floor of issue 22: the CPU one bare timed sleep and wake-up
 * costs this thread, with no work in between. Any sampler that sleeps between
 * samples pays at least this much per sample at a fixed rate, so the bench
 * reads its 100 Hz figure against it. Built and run by bench/wake.mjs:
 *
 *     wake_floor RATE_HZ WAKES      prints one JSON line
 *
 * Sleeps to absolute deadlines on CLOCK_MONOTONIC (as a steady-rate sampler
 * does) and reads CLOCK_THREAD_CPUTIME_ID around the whole loop; the CPU
 * spent in the kernel's sleep and wake-up path is charged to this thread.
 * "late" counts the wakes that came past the next deadline (the schedule then
 * restarts from now, so that every iteration really sleeps).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: wake_floor RATE_HZ WAKES\n");
        return 2;
    }
    long rate = strtol(argv[1], NULL, 10);
    long wakes = strtol(argv[2], NULL, 10);
    if (rate <= 0 || rate > 1000000 || wakes <= 0) {
        fprintf(stderr, "wake_floor: RATE_HZ and WAKES must be positive\n");
        return 2;
    }
    long long period = 1000000000LL / rate;
    long long deadline = ns(CLOCK_MONOTONIC);
    long long wall0 = deadline;
    long long cpu0 = ns(CLOCK_THREAD_CPUTIME_ID);
    long late = 0;
    for (long i = 0; i < wakes; i++) {
        deadline += period;
        /* Woken past the next deadline (a busy machine): start the schedule again from now, so
         * that every iteration really sleeps and wakes, which is what is measured. */
        long long t = ns(CLOCK_MONOTONIC);
        if (deadline <= t) {
            deadline = t + period;
            late++;
        }
        struct timespec ts = { (time_t)(deadline / 1000000000LL), (long)(deadline % 1000000000LL) };
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR) {
        }
        if (rc != 0) {
            fprintf(stderr, "wake_floor: clock_nanosleep failed: %d\n", rc);
            return 1;
        }
    }
    long long cpu = ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    long long wall = ns(CLOCK_MONOTONIC) - wall0;
    printf("{\"rateHz\":%ld,\"wakes\":%ld,\"cpuNsPerWake\":%.1f,\"wallSeconds\":%.3f,\"late\":%ld}\n",
           rate, wakes, (double)cpu / (double)wakes, (double)wall / 1e9, late);
    return 0;
}
