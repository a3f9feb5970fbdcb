/* The yardstick for the exact k-NN scan: a plain C loop, one thread, dot products of one
 * query with every row of an N x D float32 matrix, then a top-k pass. Prints JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 100000;
  const long d = argc > 2 ? atol(argv[2]) : 384;
  const int reps = argc > 3 ? atoi(argv[3]) : 20;
  float* m = malloc(sizeof(float) * n * d);
  float* q = malloc(sizeof(float) * d);
  float* s = malloc(sizeof(float) * n);
  uint32_t x = 12345;
  for (long i = 0; i < n * d; i++) { x = x * 1664525u + 1013904223u; m[i] = (float)x / 4294967296.0f - 0.5f; }
  for (long i = 0; i < d; i++) { x = x * 1664525u + 1013904223u; q[i] = (float)x / 4294967296.0f - 0.5f; }
  double best = 1e9, total = 0;
  long top = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    for (long i = 0; i < n; i++) {
      const float* row = m + i * d;
      float acc = 0;
      for (long j = 0; j < d; j++) acc += row[j] * q[j];
      s[i] = acc;
    }
    for (long i = 1; i < n; i++) if (s[i] > s[top]) top = i;
    double t = now() - t0;
    total += t;
    if (t < best) best = t;
  }
  double bytes = (double)n * d * sizeof(float);
  printf("{\"n\": %ld, \"d\": %ld, \"best_ms\": %.3f, \"mean_ms\": %.3f, \"best_gbps\": %.2f, \"top\": %ld}\n", n, d, best * 1e3, total / reps * 1e3, bytes / best / 1e9, top);
  return 0;
}
