/*
 * gen_snap_corpus.c: writes the seed corpus of fuzz_snapshot.
 *
 *   gen_snap_corpus tests/fuzz/corpus/snapshot
 *
 * Valid snapshots (no member, one, a dozen with lists of 0..3 services
 * and every member status) and near misses (truncated, a flipped byte,
 * another version, trailing bytes). Rerun after changing the format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../snap_fixture.h"

static const char *g_dir;

static void put(const char *name, const void *p, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "gen_snap_corpus: cannot write %s\n", path);
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_snap_corpus DIR\n");
    return 2;
  }
  g_dir = argv[1];
  size_t sizes[] = {0, 1, 12};
  const char *names[] = {"empty", "one", "twelve"};
  for (int i = 0; i < 3; i++) {
    size_t len;
    uint8_t *b = fx_snapshot(sizes[i], &len);
    if (!b) {
      fprintf(stderr, "gen_snap_corpus: %s does not encode\n", names[i]);
      return 1;
    }
    put(names[i], b, len);
    if (i == 2) {
      put("truncated", b, len / 2);
      uint8_t *c = malloc(len + 1);
      memcpy(c, b, len);
      c[len / 3] ^= 0x40;
      put("flipped", c, len);
      memcpy(c, b, len);
      c[len] = 0xc0;
      put("trailing", c, len + 1);
      memcpy(c, b, len);
      /* the version follows the array header and the 17-byte magic */
      c[1 + 1 + 17] = 2;
      put("version2", c, len);
      free(c);
    }
    free(b);
  }
  return 0;
}
