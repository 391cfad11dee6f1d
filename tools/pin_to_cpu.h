// Pins the calling thread to one CPU, for the tools that time two threads on CPUs 0 and 1.
// Exits with a message naming the tool when the CPU is not there: both threads on one CPU would
// time the scheduler, not the hardware.
#pragma once

#include <pthread.h>

#include <cstdio>
#include <cstdlib>

inline void pin_to_cpu(int cpu, const char* tool) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
    std::fprintf(stderr, "%s: cannot run on CPU %d; it needs CPUs 0 and 1\n", tool, cpu);
    std::exit(1);
  }
}
