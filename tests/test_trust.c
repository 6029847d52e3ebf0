/*
 * test_trust.c: unit tests of the trust layer (mesh/trust/trust.h): keys and key
 * files, certificates, the trust set and key rotation, record signing, the
 * envelope (plain, encrypted, stream frames with certificates) and replay
 * windows. Every test asserts outcomes, error codes included, since the
 * runtime counts drops by code.
 *
 * Depends on the trust module and cmocka only; never on libuv or the
 * runtime. Keys come from fixed seeds so failures reproduce.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>
#include <sodium.h>

#include "trust.h"

#define NOW 1700000000ull /* a fixed "now" in unix seconds */

/* ---- fixtures ----------------------------------------------------------- */

static void seed_kp(lm_keypair_t *kp, uint8_t fill) {
  uint8_t seed[LM_SEED_LEN];
  memset(seed, fill, sizeof seed);
  assert_int_equal(lm_keypair_from_seed(kp, seed), 0);
}

/* The runtime's view of admitted members, for the lookup callback. */
typedef struct {
  size_t n;
  uint8_t pk[8][LM_PUBLICKEY_LEN];
  int calls;
} keyring_t;

static int keyring_lookup(void *ud, uint64_t hint, uint8_t pk[LM_PUBLICKEY_LEN]) {
  keyring_t *kr = ud;
  kr->calls++;
  for (size_t i = 0; i < kr->n; i++)
    if (lm_key_hint(kr->pk[i]) == hint) {
      memcpy(pk, kr->pk[i], LM_PUBLICKEY_LEN);
      return 0;
    }
  return -1;
}

static void keyring_add(keyring_t *kr, const uint8_t pk[LM_PUBLICKEY_LEN]) {
  assert_true(kr->n < 8);
  memcpy(kr->pk[kr->n++], pk, LM_PUBLICKEY_LEN);
}

typedef struct {
  lm_cluster_t cluster;
  lm_keypair_t node, cluster_key;
  lm_trust_set_t trust;
  keyring_t ring;
  lm_sender_t tx;
  lm_receiver_t rx;
} fx_t;

static void fx_init(fx_t *f, const uint8_t *secret, unsigned flags) {
  memset(f, 0, sizeof *f);
  assert_int_equal(lm_cluster_init(&f->cluster, "prod-eu", secret, flags), 0);
  seed_kp(&f->node, 0x11);
  seed_kp(&f->cluster_key, 0xc1);
  lm_trust_set_init(&f->trust);
  assert_int_equal(lm_trust_set_add(&f->trust, f->cluster_key.pk), 0);
  keyring_add(&f->ring, f->node.pk);
  assert_int_equal(lm_sender_init(&f->tx, &f->cluster, &f->node, 1000), 0);
  assert_int_equal(lm_receiver_init(&f->rx, &f->cluster, &f->trust,
                                    keyring_lookup, &f->ring),
                   0);
}

static void fx_close(fx_t *f) {
  lm_receiver_close(&f->rx);
  lm_sender_close(&f->tx);
  lm_cluster_close(&f->cluster);
}

/* A fresh receiver, so a replay window is never the reason a check fails. */
static int open_fresh(fx_t *f, const uint8_t *pkt, size_t len, int frame,
                      uint64_t now) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len)
    memcpy(copy, pkt, len);
  lm_receiver_t rx;
  assert_int_equal(lm_receiver_init(&rx, f->rx.cluster, f->rx.trust,
                                    f->rx.lookup, f->rx.lookup_ud),
                   0);
  lm_env_msg_t msg;
  int rc = frame ? lm_env_open_frame(&msg, copy, len, &rx, now)
                 : lm_env_open(&msg, copy, len, &rx);
  lm_receiver_close(&rx);
  free(copy);
  return rc;
}

static size_t seal(fx_t *f, uint8_t *out, size_t cap, const char *text) {
  size_t n = 0;
  assert_int_equal(
      lm_env_seal(out, cap, &n, (const uint8_t *)text, strlen(text), &f->tx), 0);
  return n;
}

static char tmpdir[64];

static int make_tmpdir(void **state) {
  (void)state;
  strcpy(tmpdir, "/tmp/lm_trust_test.XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
  (void)state;
  DIR *d = opendir(tmpdir);
  if (!d)
    return -1;
  struct dirent *e;
  char p[512];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
    unlink(p);
  }
  closedir(d);
  return rmdir(tmpdir);
}

static void tmp_path(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_raw(const char *path, const char *data, size_t len) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, len, fp), len);
  assert_int_equal(fclose(fp), 0);
}

static size_t read_raw(const char *path, char *buf, size_t cap) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  size_t n = fread(buf, 1, cap, fp);
  fclose(fp);
  return n;
}

static int contains(const uint8_t *hay, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(hay + i, needle, k) == 0)
      return 1;
  return 0;
}

/* ---- errors ------------------------------------------------------------- */

static void test_error_table(void **state) {
  (void)state;
  int seen[LM_TRUST_ERR_COUNT] = {0};
  for (int code = LM_TRUST_ERR_FIRST; code > LM_TRUST_ERR_FIRST - LM_TRUST_ERR_COUNT;
       code--) {
    int i = lm_trust_err_index(code);
    assert_true(i >= 0 && i < LM_TRUST_ERR_COUNT);
    assert_int_equal(seen[i], 0);
    seen[i] = 1;
    assert_string_not_equal(lm_trust_strerror(code), "unknown error");
    assert_string_not_equal(lm_trust_err_name(code), "unknown");
  }
  assert_string_equal(lm_trust_err_name(LM_TRUST_EBADSIG), "bad_signature");
  assert_string_equal(lm_trust_err_name(LM_TRUST_EREPLAYED), "replayed");
  assert_string_equal(lm_trust_err_name(0), "ok");
  assert_int_equal(lm_trust_err_index(0), -1);
  assert_int_equal(lm_trust_err_index(-1), -1);
  assert_string_equal(lm_trust_strerror(-1), "unknown error");
  assert_string_equal(lm_trust_err_name(12345), "unknown");
}

/* ---- keys and key files ------------------------------------------------- */

static void test_key_text(void **state) {
  (void)state;
  lm_keypair_t kp;
  assert_int_equal(lm_keypair_generate(&kp), 0);
  char text[LM_KEY_TEXT_LEN + 1];
  assert_int_equal(lm_key_to_text(text, sizeof text, kp.pk), 0);
  assert_int_equal(strlen(text), LM_KEY_TEXT_LEN);
  uint8_t back[32];
  assert_int_equal(lm_key_from_text(back, text), 0);
  assert_memory_equal(back, kp.pk, 32);

  char padded[64];
  snprintf(padded, sizeof padded, "  %s\n", text);
  memset(back, 0, sizeof back);
  assert_int_equal(lm_key_from_text(back, padded), 0);
  assert_memory_equal(back, kp.pk, 32);

  assert_int_equal(lm_key_to_text(text, LM_KEY_TEXT_LEN, kp.pk), LM_TRUST_ENOSPACE);
  assert_int_equal(lm_key_from_text(back, ""), LM_TRUST_EMALFORMED);
  char shorter[LM_KEY_TEXT_LEN + 1];
  assert_int_equal(lm_key_to_text(shorter, sizeof shorter, kp.pk), 0);
  shorter[LM_KEY_TEXT_LEN - 1] = '\0';
  assert_int_equal(lm_key_from_text(back, shorter), LM_TRUST_EMALFORMED);
  char bad[LM_KEY_TEXT_LEN + 1];
  memcpy(bad, text, sizeof bad);
  bad[5] = '*';
  assert_int_equal(lm_key_from_text(back, bad), LM_TRUST_EMALFORMED);
  char longer[LM_KEY_TEXT_LEN + 3];
  snprintf(longer, sizeof longer, "%sAA", text);
  assert_int_equal(lm_key_from_text(back, longer), LM_TRUST_EMALFORMED);
  lm_keypair_wipe(&kp);
  static const uint8_t zero[sizeof kp] = {0};
  assert_memory_equal(&kp, zero, sizeof kp);
}

static void test_keypair_from_seed_is_deterministic(void **state) {
  (void)state;
  lm_keypair_t a, b, c;
  seed_kp(&a, 7);
  seed_kp(&b, 7);
  seed_kp(&c, 8);
  assert_memory_equal(&a, &b, sizeof a);
  assert_memory_not_equal(a.pk, c.pk, 32);
  assert_int_equal(lm_key_hint(a.pk) >> 56, a.pk[0]);
}

static void test_keyfile_roundtrip(void **state) {
  (void)state;
  char path[256], pub[256], sec[256];
  tmp_path(path, sizeof path, "node.key");
  tmp_path(pub, sizeof pub, "node.pub");
  tmp_path(sec, sizeof sec, "cluster.secret");
  lm_keypair_t kp, back;
  assert_int_equal(lm_keypair_generate(&kp), 0);
  assert_int_equal(lm_keypair_save(path, &kp), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(lm_keypair_load(&back, path), 0);
  assert_memory_equal(&back, &kp, sizeof kp);

  /* Overwriting goes through a rename and leaves no temporary behind. */
  lm_keypair_t kp2;
  assert_int_equal(lm_keypair_generate(&kp2), 0);
  assert_int_equal(lm_keypair_save(path, &kp2), 0);
  assert_int_equal(lm_keypair_load(&back, path), 0);
  assert_memory_equal(&back, &kp2, sizeof kp2);

  assert_int_equal(lm_pubkey_save(pub, kp.pk), 0);
  assert_int_equal(stat(pub, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644);
  uint8_t pk[32];
  assert_int_equal(lm_pubkey_load(pk, pub), 0);
  assert_memory_equal(pk, kp.pk, 32);
  /* The public key file's second word is the text form operators paste. */
  char line[256], text[LM_KEY_TEXT_LEN + 1];
  size_t n = read_raw(pub, line, sizeof line - 1);
  line[n] = '\0';
  assert_int_equal(lm_key_to_text(text, sizeof text, kp.pk), 0);
  assert_non_null(strstr(line, text));

  uint8_t secret[LM_SECRET_LEN], sback[LM_SECRET_LEN];
  randombytes_buf(secret, sizeof secret);
  assert_int_equal(lm_secret_save(sec, secret), 0);
  assert_int_equal(stat(sec, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(lm_secret_load(sback, sec), 0);
  assert_memory_equal(sback, secret, sizeof secret);

  DIR *d = opendir(tmpdir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)))
    assert_null(strstr(e->d_name, ".tmp."));
  closedir(d);
}

static void test_keyfile_corrupt(void **state) {
  (void)state;
  char path[256], bad[256];
  tmp_path(path, sizeof path, "good.key");
  tmp_path(bad, sizeof bad, "bad.key");
  lm_keypair_t kp, back;
  seed_kp(&kp, 0x33);
  assert_int_equal(lm_keypair_save(path, &kp), 0);
  char buf[512];
  size_t n = read_raw(path, buf, sizeof buf);
  assert_true(n > 30 && n < sizeof buf);

  /* Any changed character of a key must be caught, not loaded as another
   * valid identity. */
  for (size_t i = 0; i < n - 1; i++) {
    char c[512];
    memcpy(c, buf, n);
    c[i] = c[i] == 'A' ? 'B' : 'A';
    write_raw(bad, c, n);
    int rc = lm_keypair_load(&back, bad);
    assert_int_equal(rc, LM_TRUST_EKEYFILE);
  }
  /* Every truncation, down to empty. */
  for (size_t cut = 0; cut + 1 < n; cut++) {
    write_raw(bad, buf, cut);
    assert_int_equal(lm_keypair_load(&back, bad), LM_TRUST_EKEYFILE);
  }
  /* Extra bytes, a public key file, an oversized file, a missing file. */
  char extra[600];
  memcpy(extra, buf, n - 1);
  memcpy(extra + n - 1, " AAAA\n", 6);
  write_raw(bad, extra, n + 5);
  assert_int_equal(lm_keypair_load(&back, bad), LM_TRUST_EKEYFILE);
  char pub[256];
  tmp_path(pub, sizeof pub, "good.pub");
  assert_int_equal(lm_pubkey_save(pub, kp.pk), 0);
  assert_int_equal(lm_keypair_load(&back, pub), LM_TRUST_EKEYFILE);
  uint8_t pk[32];
  assert_int_equal(lm_pubkey_load(pk, path), LM_TRUST_EKEYFILE);
  char big[4096];
  memset(big, 'A', sizeof big);
  write_raw(bad, big, sizeof big);
  assert_int_equal(lm_keypair_load(&back, bad), LM_TRUST_EKEYFILE);
  char missing[256];
  tmp_path(missing, sizeof missing, "nope.key");
  assert_int_equal(lm_keypair_load(&back, missing), LM_TRUST_EIO);
  assert_int_equal(lm_keypair_load(&back, tmpdir), LM_TRUST_EIO);
  /* Windows line ending and no final newline are both fine. */
  char crlf[600];
  memcpy(crlf, buf, n - 1);
  memcpy(crlf + n - 1, "\r\n", 2);
  write_raw(bad, crlf, n + 1);
  assert_int_equal(lm_keypair_load(&back, bad), 0);
  assert_memory_equal(&back, &kp, sizeof kp);
  write_raw(bad, buf, n - 1);
  assert_int_equal(lm_keypair_load(&back, bad), 0);

  /* The cluster secret file carries a check value. */
  char sec[256];
  tmp_path(sec, sizeof sec, "c.secret");
  uint8_t secret[32], sback[32];
  memset(secret, 0x5a, sizeof secret);
  assert_int_equal(lm_secret_save(sec, secret), 0);
  n = read_raw(sec, buf, sizeof buf);
  size_t at = strlen("livemesh-cluster-secret-v1 ") + 3;
  buf[at] = buf[at] == 'A' ? 'B' : 'A';
  write_raw(bad, buf, n);
  assert_int_equal(lm_secret_load(sback, bad), LM_TRUST_EKEYFILE);
}

/* ---- certificates ------------------------------------------------------- */

static void test_cert_roundtrip(void **state) {
  (void)state;
  lm_keypair_t node, ck;
  seed_kp(&node, 1);
  seed_kp(&ck, 2);
  lm_cert_t cert, back;
  assert_int_equal(lm_cert_issue(&cert, node.pk, "web-1.eu", NOW - 10, NOW + 3600, &ck), 0);
  assert_int_equal(cert.version, LM_CERT_VERSION);
  assert_memory_equal(cert.cluster_key_id, ck.pk, LM_KEY_ID_LEN);
  uint8_t enc[LM_CERT_MAX];
  size_t len = 0;
  assert_int_equal(lm_cert_encode(enc, sizeof enc, &len, &cert), 0);
  assert_int_equal(len, LM_CERT_MIN - 1 + strlen("web-1.eu"));
  assert_int_equal(lm_cert_encode(enc, len - 1, &len, &cert), LM_TRUST_ENOSPACE);
  assert_int_equal(lm_cert_encode(enc, sizeof enc, &len, &cert), 0);
  assert_int_equal(lm_cert_decode(&back, enc, len), (int)len);
  assert_memory_equal(&back, &cert, sizeof cert);

  lm_trust_set_t ts;
  lm_trust_set_init(&ts);
  assert_int_equal(lm_trust_set_add(&ts, ck.pk), 0);
  assert_int_equal(lm_cert_verify(&ts, &back, NOW), 0);

  /* Trailing bytes are not consumed. */
  uint8_t more[LM_CERT_MAX + 4];
  memcpy(more, enc, len);
  memset(more + len, 0xee, 4);
  assert_int_equal(lm_cert_decode(&back, more, len + 4), (int)len);

  /* File round trip. */
  char path[256];
  tmp_path(path, sizeof path, "node.cert");
  assert_int_equal(lm_cert_save(path, &cert), 0);
  memset(&back, 0, sizeof back);
  assert_int_equal(lm_cert_load(&back, path), 0);
  assert_memory_equal(&back, &cert, sizeof cert);

  /* Names: 1..64 bytes; the longest one fits LM_CERT_MAX exactly. */
  char name[LM_CERT_NAME_MAX + 2];
  memset(name, 'n', sizeof name);
  name[LM_CERT_NAME_MAX] = '\0';
  assert_int_equal(lm_cert_issue(&cert, node.pk, name, NOW, NOW + 1, &ck), 0);
  assert_int_equal(lm_cert_encode(enc, sizeof enc, &len, &cert), 0);
  assert_int_equal(len, LM_CERT_MAX);
  name[LM_CERT_NAME_MAX] = 'n';
  name[LM_CERT_NAME_MAX + 1] = '\0';
  assert_int_equal(lm_cert_issue(&cert, node.pk, name, NOW, NOW + 1, &ck), LM_TRUST_EINVAL);
  assert_int_equal(lm_cert_issue(&cert, node.pk, "", NOW, NOW + 1, &ck), LM_TRUST_EINVAL);
  assert_int_equal(lm_cert_issue(&cert, node.pk, "x", NOW, NOW, &ck), LM_TRUST_EINVAL);
}

static void test_cert_decode_malformed(void **state) {
  (void)state;
  lm_keypair_t node, ck;
  seed_kp(&node, 1);
  seed_kp(&ck, 2);
  lm_cert_t cert, back;
  assert_int_equal(lm_cert_issue(&cert, node.pk, "db-3", NOW, NOW + 60, &ck), 0);
  uint8_t enc[LM_CERT_MAX];
  size_t len = 0;
  assert_int_equal(lm_cert_encode(enc, sizeof enc, &len, &cert), 0);

  /* Each truncation is reported as such, from a buffer of exactly that
   * size, so ASan would catch a read past its end. */
  for (size_t cut = 0; cut < len; cut++) {
    uint8_t *p = malloc(cut ? cut : 1);
    assert_non_null(p);
    memcpy(p, enc, cut);
    assert_int_equal(lm_cert_decode(&back, p, cut), LM_TRUST_ETRUNCATED);
    free(p);
  }
  uint8_t c[LM_CERT_MAX];
  memcpy(c, enc, len);
  c[0] = 2;
  assert_int_equal(lm_cert_decode(&back, c, len), LM_TRUST_EVERSION);
  memcpy(c, enc, len);
  c[33] = 0;
  assert_int_equal(lm_cert_decode(&back, c, len), LM_TRUST_EMALFORMED);
  c[33] = LM_CERT_NAME_MAX + 1;
  assert_int_equal(lm_cert_decode(&back, c, len), LM_TRUST_EMALFORMED);
  memcpy(c, enc, len);
  c[35] = '\0'; /* a NUL inside the name */
  assert_int_equal(lm_cert_decode(&back, c, len), LM_TRUST_EMALFORMED);
}

static void test_cert_tamper_and_forgery(void **state) {
  (void)state;
  lm_keypair_t node, ck, rogue;
  seed_kp(&node, 1);
  seed_kp(&ck, 2);
  seed_kp(&rogue, 3);
  lm_trust_set_t ts;
  lm_trust_set_init(&ts);
  assert_int_equal(lm_trust_set_add(&ts, ck.pk), 0);
  lm_cert_t cert, back;
  assert_int_equal(lm_cert_issue(&cert, node.pk, "api-7", NOW - 100, NOW + 100, &ck), 0);
  uint8_t enc[LM_CERT_MAX];
  size_t len = 0;
  assert_int_equal(lm_cert_encode(enc, sizeof enc, &len, &cert), 0);

  /* Every bit of every byte: the decode or the verification must fail. */
  for (size_t i = 0; i < len; i++) {
    for (int bit = 0; bit < 8; bit++) {
      uint8_t c[LM_CERT_MAX];
      memcpy(c, enc, len);
      c[i] ^= (uint8_t)(1u << bit);
      int rc = lm_cert_decode(&back, c, len);
      if (rc < 0)
        continue;
      assert_int_not_equal(lm_cert_verify(&ts, &back, NOW), 0);
    }
  }

  /* A rogue key claiming the trusted key's id: bad signature. */
  lm_cert_t forged;
  assert_int_equal(lm_cert_issue(&forged, node.pk, "api-7", NOW - 100, NOW + 100, &rogue), 0);
  memcpy(forged.cluster_key_id, ck.pk, LM_KEY_ID_LEN);
  assert_int_equal(lm_cert_verify(&ts, &forged, NOW), LM_TRUST_ECERT_BADSIG);
  /* Its own id: not a trusted key at all. */
  assert_int_equal(lm_cert_issue(&forged, node.pk, "api-7", NOW - 100, NOW + 100, &rogue), 0);
  assert_int_equal(lm_cert_verify(&ts, &forged, NOW), LM_TRUST_ECERT_UNTRUSTED);
  /* Changing the struct after signing (expiry pushed out) is caught. */
  back = cert;
  back.expiry += 1;
  assert_int_equal(lm_cert_verify(&ts, &back, NOW), LM_TRUST_ECERT_BADSIG);
  back = cert;
  back.name[0] = 'b';
  assert_int_equal(lm_cert_verify(&ts, &back, NOW), LM_TRUST_ECERT_BADSIG);
}

static void test_cert_dates(void **state) {
  (void)state;
  lm_keypair_t node, ck;
  seed_kp(&node, 1);
  seed_kp(&ck, 2);
  lm_trust_set_t ts;
  lm_trust_set_init(&ts);
  assert_int_equal(lm_trust_set_add(&ts, ck.pk), 0);
  lm_cert_t cert;
  assert_int_equal(lm_cert_issue(&cert, node.pk, "n", 1000, 2000, &ck), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert, 999), LM_TRUST_ECERT_NOTYET);
  assert_int_equal(lm_cert_verify(&ts, &cert, 1000), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert, 1999), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert, 2000), LM_TRUST_ECERT_EXPIRED);
  assert_int_equal(lm_cert_verify(&ts, &cert, UINT64_MAX), LM_TRUST_ECERT_EXPIRED);
  assert_int_equal(lm_cert_verify(&ts, &cert, 0), LM_TRUST_ECERT_NOTYET);
}

static void test_trust_set_ops(void **state) {
  (void)state;
  lm_trust_set_t ts;
  lm_trust_set_init(&ts);
  lm_keypair_t k[LM_TRUST_SET_MAX + 1];
  for (int i = 0; i <= LM_TRUST_SET_MAX; i++)
    seed_kp(&k[i], (uint8_t)(0x40 + i));
  for (int i = 0; i < LM_TRUST_SET_MAX; i++)
    assert_int_equal(lm_trust_set_add(&ts, k[i].pk), 0);
  assert_int_equal(ts.count, LM_TRUST_SET_MAX);
  assert_int_equal(lm_trust_set_add(&ts, k[0].pk), 0); /* already there */
  assert_int_equal(ts.count, LM_TRUST_SET_MAX);
  assert_int_equal(lm_trust_set_add(&ts, k[LM_TRUST_SET_MAX].pk), LM_TRUST_EFULL);
  assert_false(lm_trust_set_contains(&ts, k[LM_TRUST_SET_MAX].pk));
  assert_int_equal(lm_trust_set_remove(&ts, k[3].pk), 0);
  assert_false(lm_trust_set_contains(&ts, k[3].pk));
  assert_int_equal(lm_trust_set_remove(&ts, k[3].pk), LM_TRUST_ENOTFOUND);
  for (int i = 0; i < LM_TRUST_SET_MAX; i++)
    if (i != 3)
      assert_true(lm_trust_set_contains(&ts, k[i].pk));
  assert_int_equal(lm_trust_set_add(&ts, k[LM_TRUST_SET_MAX].pk), 0);
}

/* The rotation procedure of docs/trust.md, step by step. */
static void test_key_rotation(void **state) {
  (void)state;
  lm_keypair_t node_a, node_b, old_ck, new_ck;
  seed_kp(&node_a, 0xa1);
  seed_kp(&node_b, 0xb1);
  seed_kp(&old_ck, 0x01);
  seed_kp(&new_ck, 0x02);
  lm_cert_t cert_a, cert_b;
  assert_int_equal(lm_cert_issue(&cert_a, node_a.pk, "a", NOW - 10, NOW + 86400, &old_ck), 0);
  assert_int_equal(lm_cert_issue(&cert_b, node_b.pk, "b", NOW - 10, NOW + 86400, &new_ck), 0);

  lm_trust_set_t ts;
  lm_trust_set_init(&ts);
  assert_int_equal(lm_trust_set_add(&ts, old_ck.pk), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert_a, NOW), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert_b, NOW), LM_TRUST_ECERT_UNTRUSTED);

  /* 1. trust both keys everywhere: old and new certs verify together. */
  assert_int_equal(lm_trust_set_add(&ts, new_ck.pk), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert_a, NOW), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert_b, NOW), 0);

  /* 2. reissue every node's cert with the new key. */
  lm_cert_t cert_a2;
  assert_int_equal(lm_cert_issue(&cert_a2, node_a.pk, "a", NOW, NOW + 86400, &new_ck), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert_a2, NOW), 0);

  /* 3. remove the old key: what it signed is no longer accepted. */
  assert_int_equal(lm_trust_set_remove(&ts, old_ck.pk), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert_a, NOW), LM_TRUST_ECERT_UNTRUSTED);
  assert_int_equal(lm_cert_verify(&ts, &cert_a2, NOW), 0);
  assert_int_equal(lm_cert_verify(&ts, &cert_b, NOW), 0);

  /* The same holds for frames that carry the certs. */
  lm_cluster_t cl;
  assert_int_equal(lm_cluster_init(&cl, "rot", NULL, 0), 0);
  lm_sender_t tx;
  assert_int_equal(lm_sender_init(&tx, &cl, &node_a, 1), 0);
  assert_int_equal(lm_sender_set_cert(&tx, &cert_a), 0);
  uint8_t frame[512];
  size_t n = 0;
  assert_int_equal(lm_env_seal_frame(frame, sizeof frame, &n, (const uint8_t *)"hi", 2, &tx, 1), 0);
  lm_receiver_t rx;
  assert_int_equal(lm_receiver_init(&rx, &cl, &ts, NULL, NULL), 0);
  lm_env_msg_t msg;
  assert_int_equal(lm_env_open_frame(&msg, frame, n, &rx, NOW), LM_TRUST_ECERT_UNTRUSTED);
  assert_int_equal(lm_sender_set_cert(&tx, &cert_a2), 0);
  assert_int_equal(lm_env_seal_frame(frame, sizeof frame, &n, (const uint8_t *)"hi", 2, &tx, 1), 0);
  assert_int_equal(lm_env_open_frame(&msg, frame, n, &rx, NOW), 0);
  assert_true(msg.has_cert);
  assert_memory_equal(msg.sender_pk, node_a.pk, 32);
  lm_receiver_close(&rx);
  lm_sender_close(&tx);
  lm_cluster_close(&cl);
}

/* ---- record signing ----------------------------------------------------- */

static void test_rec_sign_verify(void **state) {
  (void)state;
  lm_keypair_t kp, other;
  seed_kp(&kp, 0x21);
  seed_kp(&other, 0x22);
  const uint8_t rec[] = {0x00, 0xc4, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  uint8_t sig[LM_SIG_LEN];
  assert_int_equal(lm_rec_sign(sig, rec, sizeof rec, &kp), 0);
  assert_int_equal(lm_rec_verify(sig, rec, sizeof rec, kp.pk), 0);
  assert_int_equal(lm_rec_verify(sig, rec, sizeof rec, other.pk), LM_TRUST_EBADSIG);
  for (size_t i = 0; i < sizeof rec; i++) {
    uint8_t t[sizeof rec];
    memcpy(t, rec, sizeof rec);
    t[i] ^= 0x80;
    assert_int_equal(lm_rec_verify(sig, t, sizeof t, kp.pk), LM_TRUST_EBADSIG);
  }
  for (size_t i = 0; i < LM_SIG_LEN; i++) {
    uint8_t s[LM_SIG_LEN];
    memcpy(s, sig, sizeof s);
    s[i] ^= 1;
    assert_int_equal(lm_rec_verify(s, rec, sizeof rec, kp.pk), LM_TRUST_EBADSIG);
  }
  assert_int_equal(lm_rec_verify(sig, rec, sizeof rec - 1, kp.pk), LM_TRUST_EBADSIG);

  /* Domain separation: a bare Ed25519 signature over the same bytes (what an
   * envelope or any other use of the key would produce) is refused. */
  uint8_t bare[LM_SIG_LEN];
  crypto_sign_detached(bare, NULL, rec, sizeof rec, kp.sk);
  assert_int_equal(lm_rec_verify(bare, rec, sizeof rec, kp.pk), LM_TRUST_EBADSIG);

  /* Empty and large records (the heap path). */
  assert_int_equal(lm_rec_sign(sig, NULL, 0, &kp), 0);
  assert_int_equal(lm_rec_verify(sig, NULL, 0, kp.pk), 0);
  size_t big_len = 10000;
  uint8_t *big = malloc(big_len);
  assert_non_null(big);
  memset(big, 0xab, big_len);
  assert_int_equal(lm_rec_sign(sig, big, big_len, &kp), 0);
  assert_int_equal(lm_rec_verify(sig, big, big_len, kp.pk), 0);
  big[big_len - 1] ^= 1;
  assert_int_equal(lm_rec_verify(sig, big, big_len, kp.pk), LM_TRUST_EBADSIG);
  free(big);
}

/* ---- envelope ----------------------------------------------------------- */

static void test_env_roundtrip(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, NULL, 0);
  assert_int_equal(lm_env_overhead(&f.tx), 85);
  uint8_t pkt[SWIM_MTU];
  const char *text = "ping from node 1";
  size_t n = seal(&f, pkt, sizeof pkt, text);
  assert_int_equal(n, strlen(text) + LM_ENV_OVERHEAD);
  assert_int_equal(pkt[0], 0x20);
  assert_memory_equal(pkt + 1, f.cluster.tag, 4);
  assert_memory_equal(pkt + 5, f.node.pk, 8);
  assert_int_equal(f.tx.counter, 1001);

  lm_env_msg_t msg;
  assert_int_equal(lm_env_open(&msg, pkt, n, &f.rx), 0);
  assert_int_equal(msg.payload_len, strlen(text));
  assert_memory_equal(msg.payload, text, strlen(text));
  assert_true(msg.payload >= pkt && msg.payload + msg.payload_len <= pkt + n);
  assert_int_equal(msg.counter, 1001);
  assert_int_equal(msg.hint, lm_key_hint(f.node.pk));
  assert_memory_equal(msg.sender_pk, f.node.pk, 32);
  assert_false(msg.encrypted);
  assert_false(msg.has_cert);

  /* An empty payload is a valid message too. */
  size_t m = 0;
  assert_int_equal(lm_env_seal(pkt, sizeof pkt, &m, NULL, 0, &f.tx), 0);
  assert_int_equal(m, LM_ENV_OVERHEAD);
  assert_int_equal(lm_env_open(&msg, pkt, m, &f.rx), 0);
  assert_int_equal(msg.payload_len, 0);
  fx_close(&f);
}

static void test_env_tamper_every_byte(void **state) {
  (void)state;
  for (int encrypted = 0; encrypted < 2; encrypted++) {
    uint8_t secret[32];
    memset(secret, 0x77, sizeof secret);
    fx_t f;
    fx_init(&f, encrypted ? secret : NULL, 0);
    uint8_t pkt[SWIM_MTU];
    size_t n = seal(&f, pkt, sizeof pkt, "alive: web-1 gen 3 ver 9");
    assert_int_equal(open_fresh(&f, pkt, n, 0, 0), 0);
    for (size_t i = 0; i < n; i++) {
      for (int bit = 0; bit < 8; bit++) {
        uint8_t t[SWIM_MTU];
        memcpy(t, pkt, n);
        t[i] ^= (uint8_t)(1u << bit);
        int rc = open_fresh(&f, t, n, 0, 0);
        assert_int_not_equal(rc, 0);
        /* Header damage is named; anything signed but changed is a bad
         * signature. */
        if (i >= 1 + 4 + 8)
          assert_int_equal(rc, LM_TRUST_EBADSIG);
        if (i >= 1 && i < 5)
          assert_int_equal(rc, LM_TRUST_ECLUSTER);
      }
    }
    /* Appending or dropping bytes breaks it too. */
    assert_int_not_equal(open_fresh(&f, pkt, n - 1, 0, 0), 0);
    uint8_t longer[SWIM_MTU];
    memcpy(longer, pkt, n);
    longer[n] = 0;
    assert_int_not_equal(open_fresh(&f, longer, n + 1, 0, 0), 0);
    fx_close(&f);
  }
}

static void test_env_forged_signature(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, NULL, 0);
  /* An outsider who knows the victim's public key (so its hint) but not its
   * secret key signs as itself and claims the victim's hint. */
  lm_keypair_t mallory;
  seed_kp(&mallory, 0x66);
  lm_sender_t evil;
  assert_int_equal(lm_sender_init(&evil, &f.cluster, &mallory, 5000), 0);
  uint8_t pkt[SWIM_MTU];
  size_t n = 0;
  assert_int_equal(lm_env_seal(pkt, sizeof pkt, &n, (const uint8_t *)"dead: web-1", 11, &evil), 0);
  memcpy(pkt + 5, f.node.pk, 8);
  assert_int_equal(open_fresh(&f, pkt, n, 0, 0), LM_TRUST_EBADSIG);
  /* A random signature on a correct message. */
  n = seal(&f, pkt, sizeof pkt, "hello");
  randombytes_buf(pkt + n - LM_SIG_LEN, LM_SIG_LEN);
  assert_int_equal(open_fresh(&f, pkt, n, 0, 0), LM_TRUST_EBADSIG);
  /* An all-zero signature. */
  memset(pkt + n - LM_SIG_LEN, 0, LM_SIG_LEN);
  assert_int_equal(open_fresh(&f, pkt, n, 0, 0), LM_TRUST_EBADSIG);
  lm_sender_close(&evil);
  fx_close(&f);
}

static void test_env_replay(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, NULL, 0);
  enum { N = 200 };
  static uint8_t pkts[N][128];
  size_t lens[N];
  for (int i = 0; i < N; i++) {
    char text[32];
    snprintf(text, sizeof text, "msg %d", i);
    lens[i] = seal(&f, pkts[i], sizeof pkts[i], text);
  }
  lm_env_msg_t msg;
  uint8_t t[128];
#define OPEN(i) (memcpy(t, pkts[i], lens[i]), lm_env_open(&msg, t, lens[i], &f.rx))

  assert_int_equal(OPEN(10), 0);
  assert_int_equal(OPEN(10), LM_TRUST_EREPLAYED);
  /* Reordered within the window: accepted once each. */
  assert_int_equal(OPEN(150), 0);
  assert_int_equal(OPEN(149), 0);
  assert_int_equal(OPEN(100), 0);
  assert_int_equal(OPEN(23), 0); /* 127 behind the highest: the window's edge */
  assert_int_equal(OPEN(22), LM_TRUST_ESTALE);
  assert_int_equal(OPEN(10), LM_TRUST_ESTALE);
  assert_int_equal(OPEN(149), LM_TRUST_EREPLAYED);
  assert_int_equal(OPEN(100), LM_TRUST_EREPLAYED);
  assert_int_equal(OPEN(23), LM_TRUST_EREPLAYED);
  assert_int_equal(OPEN(150), LM_TRUST_EREPLAYED);

  /* A forged message with a far higher counter must not move the window,
   * or it would turn every honest message into "too old". */
  uint8_t forged[128];
  memcpy(forged, pkts[199], lens[199]);
  forged[13] = 0x7f; /* counter high byte */
  assert_int_equal(lm_env_open(&msg, forged, lens[199], &f.rx), LM_TRUST_EBADSIG);
  assert_int_equal(OPEN(151), 0);
  assert_int_equal(OPEN(199), 0);
  assert_int_equal(OPEN(198), 0);

  /* Windows are per sender and per channel. */
  lm_keypair_t other;
  seed_kp(&other, 0x12);
  keyring_add(&f.ring, other.pk);
  lm_sender_t tx2;
  assert_int_equal(lm_sender_init(&tx2, &f.cluster, &other, 1000), 0);
  uint8_t p2[128];
  size_t n2 = 0;
  assert_int_equal(lm_env_seal(p2, sizeof p2, &n2, (const uint8_t *)"x", 1, &tx2), 0);
  assert_int_equal(lm_env_open(&msg, p2, n2, &f.rx), 0); /* same counter as msg 0 */
  assert_int_equal(lm_replay_count(f.rx.replay_dgram), 2);
  assert_int_equal(lm_replay_count(f.rx.replay_stream), 0);

  /* Forgetting a sender starts it afresh. */
  lm_receiver_forget(&f.rx, lm_key_hint(f.node.pk));
  assert_int_equal(lm_replay_count(f.rx.replay_dgram), 1);
  assert_int_equal(OPEN(10), 0);
#undef OPEN
  lm_sender_close(&tx2);
  fx_close(&f);
}

/* A restarted node seeds its counter from the wall clock, so it starts above
 * everything it sent before and receivers take it at once. */
static void test_env_counter_restart(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, NULL, 0);
  lm_sender_close(&f.tx);
  uint64_t t0 = 1700000000000000ull; /* microseconds */
  assert_int_equal(lm_sender_init(&f.tx, &f.cluster, &f.node, t0), 0);
  uint8_t p[128];
  lm_env_msg_t msg;
  for (int i = 0; i < 5; i++) {
    size_t n = seal(&f, p, sizeof p, "before");
    assert_int_equal(lm_env_open(&msg, p, n, &f.rx), 0);
  }
  lm_sender_close(&f.tx);
  assert_int_equal(lm_sender_init(&f.tx, &f.cluster, &f.node, t0 + 2000000), 0);
  size_t n = seal(&f, p, sizeof p, "after");
  assert_int_equal(lm_env_open(&msg, p, n, &f.rx), 0);
  assert_int_equal(msg.counter, t0 + 2000001);

  /* The counter never wraps. */
  lm_sender_close(&f.tx);
  assert_int_equal(lm_sender_init(&f.tx, &f.cluster, &f.node, UINT64_MAX - 1), 0);
  size_t m = 0;
  assert_int_equal(lm_env_seal(p, sizeof p, &m, (const uint8_t *)"a", 1, &f.tx), 0);
  assert_int_equal(lm_env_seal(p, sizeof p, &m, (const uint8_t *)"a", 1, &f.tx), LM_TRUST_EEXHAUSTED);
  fx_close(&f);
}

static void test_env_wrong_cluster_unknown_sender(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, NULL, 0);
  lm_cluster_t other;
  assert_int_equal(lm_cluster_init(&other, "prod-us", NULL, 0), 0);
  assert_memory_not_equal(other.tag, f.cluster.tag, 4);
  lm_sender_t tx;
  assert_int_equal(lm_sender_init(&tx, &other, &f.node, 1), 0);
  uint8_t p[128];
  size_t n = 0;
  assert_int_equal(lm_env_seal(p, sizeof p, &n, (const uint8_t *)"hi", 2, &tx), 0);
  assert_int_equal(open_fresh(&f, p, n, 0, 0), LM_TRUST_ECLUSTER);

  lm_keypair_t stranger;
  seed_kp(&stranger, 0x99);
  lm_sender_close(&tx);
  assert_int_equal(lm_sender_init(&tx, &f.cluster, &stranger, 1), 0);
  assert_int_equal(lm_env_seal(p, sizeof p, &n, (const uint8_t *)"hi", 2, &tx), 0);
  f.ring.calls = 0;
  assert_int_equal(open_fresh(&f, p, n, 0, 0), LM_TRUST_EUNKNOWN_SENDER);
  assert_int_equal(f.ring.calls, 1);
  /* Admitted later: accepted. */
  keyring_add(&f.ring, stranger.pk);
  assert_int_equal(open_fresh(&f, p, n, 0, 0), 0);
  /* No lookup at all: nobody is known. */
  lm_receiver_t rx;
  assert_int_equal(lm_receiver_init(&rx, &f.cluster, &f.trust, NULL, NULL), 0);
  lm_env_msg_t msg;
  assert_int_equal(lm_env_open(&msg, p, n, &rx), LM_TRUST_EUNKNOWN_SENDER);
  lm_receiver_close(&rx);
  lm_sender_close(&tx);
  lm_cluster_close(&other);
  fx_close(&f);
}

static void test_env_sizes(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, NULL, 0);
  static uint8_t payload[SWIM_MTU + 10], pkt[SWIM_MTU + 200];
  memset(payload, 0x5c, sizeof payload);
  size_t n = 0;
  /* The largest payload fills the MTU exactly; swim's always fits. */
  size_t maxp = SWIM_MTU - LM_ENV_OVERHEAD;
  assert_true(maxp >= SWIM_MAX_PAYLOAD);
  assert_int_equal(lm_env_seal(pkt, sizeof pkt, &n, payload, maxp, &f.tx), 0);
  assert_int_equal(n, SWIM_MTU);
  assert_int_equal(lm_env_seal(pkt, sizeof pkt, &n, payload, maxp + 1, &f.tx), LM_TRUST_EOVERSIZE);
  assert_int_equal(lm_env_seal(pkt, sizeof pkt, &n, payload, sizeof payload, &f.tx), LM_TRUST_EOVERSIZE);
  uint64_t before = f.tx.counter;
  assert_int_equal(lm_env_seal(pkt, 100, &n, payload, 16, &f.tx), LM_TRUST_ENOSPACE);
  assert_int_equal(f.tx.counter, before); /* a failed seal uses no counter */

  /* Every truncation of a valid packet, from a buffer of exactly that size. */
  assert_int_equal(lm_env_seal(pkt, sizeof pkt, &n, payload, 40, &f.tx), 0);
  for (size_t cut = 0; cut < LM_ENV_OVERHEAD; cut++) {
    int rc = open_fresh(&f, pkt, cut, 0, 0);
    assert_int_equal(rc, LM_TRUST_ETRUNCATED);
  }
  for (size_t cut = LM_ENV_OVERHEAD; cut < n; cut++)
    assert_int_equal(open_fresh(&f, pkt, cut, 0, 0), LM_TRUST_EBADSIG);

  /* Oversize datagrams are refused before anything is read. */
  static uint8_t huge[SWIM_MTU + 1];
  memset(huge, 0, sizeof huge);
  assert_int_equal(open_fresh(&f, huge, sizeof huge, 0, 0), LM_TRUST_EOVERSIZE);
  fx_close(&f);
}

static void test_env_header_checks(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, NULL, 0);
  uint8_t p[128], t[128];
  size_t n = seal(&f, p, sizeof p, "hdr");
  memcpy(t, p, n);
  t[0] = 0x10; /* version 1: the old wire */
  assert_int_equal(open_fresh(&f, t, n, 0, 0), LM_TRUST_EVERSION);
  t[0] = 0x30; /* version 3 */
  assert_int_equal(open_fresh(&f, t, n, 0, 0), LM_TRUST_EVERSION);
  t[0] = 0x00;
  assert_int_equal(open_fresh(&f, t, n, 0, 0), LM_TRUST_EVERSION);
  t[0] = 0x28; /* claims a pairwise MAC: no pair is known here */
  assert_int_equal(open_fresh(&f, t, n, 0, 0), LM_TRUST_EUNKNOWN_SENDER);
  t[0] = 0x20 | LM_ENV_F_STREAM; /* claims to be a stream frame */
  assert_int_equal(open_fresh(&f, t, n, 0, 0), LM_TRUST_ECHANNEL);
  t[0] = 0x20 | LM_ENV_F_ENC; /* claims encryption, no secret here */
  assert_int_equal(open_fresh(&f, t, n, 0, 0), LM_TRUST_ENOSECRET);
  /* A datagram passed to the frame reader (with a prefix) is refused by
   * channel, even though its signature is good. */
  uint8_t fr[132];
  fr[0] = 0;
  fr[1] = 0;
  fr[2] = 0;
  fr[3] = (uint8_t)n;
  memcpy(fr + 4, p, n);
  assert_int_equal(open_fresh(&f, fr, n + 4, 1, NOW), LM_TRUST_ECHANNEL);
  fx_close(&f);
}

static void test_env_encryption(void **state) {
  (void)state;
  uint8_t secret[32], wrong[32];
  memset(secret, 0x42, sizeof secret);
  memset(wrong, 0x43, sizeof wrong);
  fx_t f;
  fx_init(&f, secret, 0);
  assert_int_equal(lm_env_overhead(&f.tx), 101);
  const char *text = "services: web (up), db (up), cache (down)";
  uint8_t p[256];
  size_t n = seal(&f, p, sizeof p, text);
  assert_int_equal(n, strlen(text) + LM_ENV_OVERHEAD_ENC);
  assert_int_equal(p[0], 0x20 | LM_ENV_F_ENC);
  assert_false(contains(p, n, "services")); /* no plaintext on the wire */

  uint8_t t[256];
  lm_env_msg_t msg;
  memcpy(t, p, n);
  assert_int_equal(lm_env_open(&msg, t, n, &f.rx), 0);
  assert_true(msg.encrypted);
  assert_int_equal(msg.payload_len, strlen(text));
  assert_memory_equal(msg.payload, text, strlen(text));

  /* Same counter twice would mean a reused nonce; the counter moves. */
  size_t n2 = seal(&f, t, sizeof t, text);
  assert_int_equal(n2, n);
  assert_memory_not_equal(t + LM_ENV_HDR_LEN, p + LM_ENV_HDR_LEN, strlen(text));

  /* A member with the wrong secret: the signature is good (it is a member)
   * but decryption fails, and its window does not move. */
  lm_cluster_t wrong_cl;
  assert_int_equal(lm_cluster_init(&wrong_cl, "prod-eu", wrong, 0), 0);
  lm_receiver_t rx;
  assert_int_equal(lm_receiver_init(&rx, &wrong_cl, &f.trust, keyring_lookup, &f.ring), 0);
  memcpy(t, p, n);
  assert_int_equal(lm_env_open(&msg, t, n, &rx), LM_TRUST_EDECRYPT);
  assert_int_equal(lm_replay_count(rx.replay_dgram), 0);
  rx.cluster = &f.cluster; /* the right secret now */
  memcpy(t, p, n);
  assert_int_equal(lm_env_open(&msg, t, n, &rx), 0);
  lm_receiver_close(&rx);

  /* A node without the secret cannot read it. */
  lm_cluster_t plain;
  assert_int_equal(lm_cluster_init(&plain, "prod-eu", NULL, 0), 0);
  assert_int_equal(lm_receiver_init(&rx, &plain, &f.trust, keyring_lookup, &f.ring), 0);
  memcpy(t, p, n);
  assert_int_equal(lm_env_open(&msg, t, n, &rx), LM_TRUST_ENOSECRET);
  lm_receiver_close(&rx);

  /* Plaintext is refused once encryption is required. */
  lm_sender_t ptx;
  assert_int_equal(lm_sender_init(&ptx, &plain, &f.node, 50000), 0);
  size_t pn = 0;
  assert_int_equal(lm_env_seal(t, sizeof t, &pn, (const uint8_t *)"plain", 5, &ptx), 0);
  assert_int_equal(open_fresh(&f, t, pn, 0, 0), LM_TRUST_EPLAINTEXT);

  /* Tampered ciphertext with a re-made signature: only a member could do
   * that, and then the AEAD tag catches it. */
  memcpy(t, p, n);
  t[LM_ENV_HDR_LEN] ^= 1;
  crypto_sign_detached(t + n - LM_SIG_LEN, NULL, t, n - LM_SIG_LEN, f.node.sk);
  assert_int_equal(open_fresh(&f, t, n, 0, 0), LM_TRUST_EDECRYPT);
  lm_sender_close(&ptx);
  lm_cluster_close(&plain);
  lm_cluster_close(&wrong_cl);
  fx_close(&f);
}

/* Pins the documented wire format with libsodium alone, so both ends of a
 * mixed-version cluster (or another implementation) agree on it. */
static void test_env_wire_format(void **state) {
  (void)state;
  uint8_t secret[32];
  memset(secret, 0x42, sizeof secret);
  fx_t f;
  fx_init(&f, secret, 0);

  uint8_t tag[32];
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, sizeof tag);
  crypto_generichash_update(&st, (const uint8_t *)"livemesh-cluster-v1", 20);
  crypto_generichash_update(&st, (const uint8_t *)"prod-eu", 7);
  crypto_generichash_final(&st, tag, sizeof tag);
  assert_memory_equal(f.cluster.tag, tag, 4);

  uint8_t p[128];
  size_t n = seal(&f, p, sizeof p, "wire");
  assert_int_equal(n, 4 + LM_ENV_OVERHEAD_ENC);
  assert_int_equal(p[0], (LM_ENV_VERSION << 4) | LM_ENV_F_ENC);
  assert_memory_equal(p + 1, tag, 4);
  assert_memory_equal(p + 5, f.node.pk, 8);
  uint64_t counter = 0;
  for (int i = 0; i < 8; i++)
    counter = counter << 8 | p[13 + i];
  assert_int_equal(counter, 1001);
  assert_int_equal(crypto_sign_verify_detached(p + n - 64, p, n - 64, f.node.pk), 0);
  uint8_t nonce[24], plain[4];
  memcpy(nonce, f.node.pk, 16);
  memcpy(nonce + 16, p + 13, 8);
  assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                       plain, NULL, p + 21, 4, p + 25, p, 21, nonce, secret),
                   0);
  assert_memory_equal(plain, "wire", 4);

  /* Certificates: the signature covers the domain prefix and the body. */
  lm_cert_t cert;
  assert_int_equal(lm_cert_issue(&cert, f.node.pk, "w", 1, 2, &f.cluster_key), 0);
  uint8_t enc[LM_CERT_MAX], msg[200];
  size_t len = 0;
  assert_int_equal(lm_cert_encode(enc, sizeof enc, &len, &cert), 0);
  assert_int_equal(len, 123);
  assert_int_equal(enc[33], 1);
  assert_int_equal(enc[34], 'w');
  assert_int_equal(enc[42], 1);    /* not_before, big-endian */
  assert_int_equal(enc[50], 2);    /* expiry */
  assert_memory_equal(enc + 51, f.cluster_key.pk, 8);
  memcpy(msg, "livemesh-cert-v1", 17);
  memcpy(msg + 17, enc, len - 64);
  assert_int_equal(crypto_sign_verify_detached(enc + len - 64, msg, 17 + len - 64,
                                               f.cluster_key.pk), 0);

  /* Records: "livemesh-rec-v1\0" || record. */
  uint8_t sig[64];
  assert_int_equal(lm_rec_sign(sig, (const uint8_t *)"rec", 3, &f.node), 0);
  memcpy(msg, "livemesh-rec-v1", 16);
  memcpy(msg + 16, "rec", 3);
  assert_int_equal(crypto_sign_verify_detached(sig, msg, 19, f.node.pk), 0);
  fx_close(&f);
}

/* The rollout order of docs/trust.md: no step drops traffic. */
static void test_env_encryption_rollout(void **state) {
  (void)state;
  uint8_t secret[32];
  memset(secret, 0x42, sizeof secret);
  lm_keypair_t kp;
  seed_kp(&kp, 0x11);
  keyring_t ring = {0};
  keyring_add(&ring, kp.pk);
  lm_cluster_t stage[4];
  assert_int_equal(lm_cluster_init(&stage[0], "c", NULL, 0), 0);
  assert_int_equal(lm_cluster_init(&stage[1], "c", secret,
                                   LM_CLUSTER_SEND_PLAINTEXT | LM_CLUSTER_ACCEPT_PLAINTEXT), 0);
  assert_int_equal(lm_cluster_init(&stage[2], "c", secret, LM_CLUSTER_ACCEPT_PLAINTEXT), 0);
  assert_int_equal(lm_cluster_init(&stage[3], "c", secret, 0), 0);
  /* Neighbouring stages coexist in one cluster during a rolling restart. */
  for (int s = 0; s < 3; s++) {
    for (int dir = 0; dir < 2; dir++) {
      lm_cluster_t *from = &stage[s + dir], *to = &stage[s + 1 - dir];
      lm_sender_t tx;
      lm_receiver_t rx;
      assert_int_equal(lm_sender_init(&tx, from, &kp, 10), 0);
      assert_int_equal(lm_receiver_init(&rx, to, NULL, keyring_lookup, &ring), 0);
      uint8_t p[128];
      size_t n = 0;
      lm_env_msg_t msg;
      assert_int_equal(lm_env_seal(p, sizeof p, &n, (const uint8_t *)"roll", 4, &tx), 0);
      assert_int_equal(lm_env_open(&msg, p, n, &rx), 0);
      assert_memory_equal(msg.payload, "roll", 4);
      lm_receiver_close(&rx);
      lm_sender_close(&tx);
    }
  }
  for (int s = 0; s < 4; s++)
    lm_cluster_close(&stage[s]);
}

static void test_frame_with_cert(void **state) {
  (void)state;
  uint8_t secret[32];
  memset(secret, 0x42, sizeof secret);
  for (int encrypted = 0; encrypted < 2; encrypted++) {
    fx_t f;
    fx_init(&f, encrypted ? secret : NULL, 0);
    lm_cert_t cert;
    assert_int_equal(lm_cert_issue(&cert, f.node.pk, "node-1", NOW - 60, NOW + 3600, &f.cluster_key), 0);
    uint8_t p[1024];
    size_t n = 0;
    /* No cert set yet. */
    assert_int_equal(lm_env_seal_frame(p, sizeof p, &n, (const uint8_t *)"pp", 2, &f.tx, 1), LM_TRUST_EINVAL);
    assert_int_equal(lm_sender_set_cert(&f.tx, &cert), 0);
    const char *state_text = "push-pull: 3 members";
    assert_int_equal(lm_env_seal_frame(p, sizeof p, &n, (const uint8_t *)state_text,
                                       strlen(state_text), &f.tx, 1), 0);
    size_t clen = LM_CERT_MIN - 1 + strlen("node-1");
    assert_int_equal(n, 4 + strlen(state_text) + 2 + clen +
                            (encrypted ? LM_ENV_OVERHEAD_ENC : LM_ENV_OVERHEAD));
    size_t fl = 0;
    assert_int_equal(lm_frame_peek(&fl, p, 3), LM_TRUST_EAGAIN);
    assert_int_equal(lm_frame_peek(&fl, p, 4), 0);
    assert_int_equal(fl, n);

    /* A receiver that has never heard of the node admits it by its cert. */
    lm_receiver_t rx;
    assert_int_equal(lm_receiver_init(&rx, &f.cluster, &f.trust, NULL, NULL), 0);
    uint8_t t[1024];
    lm_env_msg_t msg;
    memcpy(t, p, n);
    assert_int_equal(lm_env_open_frame(&msg, t, n, &rx, NOW), 0);
    assert_true(msg.has_cert);
    assert_string_equal(msg.cert.name, "node-1");
    assert_memory_equal(msg.sender_pk, f.node.pk, 32);
    assert_int_equal(msg.payload_len, strlen(state_text));
    assert_memory_equal(msg.payload, state_text, strlen(state_text));
    assert_int_equal(msg.encrypted, encrypted);
    memcpy(t, p, n);
    assert_int_equal(lm_env_open_frame(&msg, t, n, &rx, NOW), LM_TRUST_EREPLAYED);
    lm_receiver_close(&rx);

    /* Dates and trust of the carried cert. */
    assert_int_equal(open_fresh(&f, p, n, 1, NOW + 3600), LM_TRUST_ECERT_EXPIRED);
    assert_int_equal(open_fresh(&f, p, n, 1, NOW - 61), LM_TRUST_ECERT_NOTYET);
    assert_int_equal(lm_receiver_init(&rx, &f.cluster, NULL, keyring_lookup, &f.ring), 0);
    memcpy(t, p, n);
    assert_int_equal(lm_env_open_frame(&msg, t, n, &rx, NOW), LM_TRUST_ECERT_UNTRUSTED);
    lm_receiver_close(&rx);

    /* Framing errors. */
    assert_int_equal(open_fresh(&f, p, n - 1, 1, NOW), LM_TRUST_ETRUNCATED);
    assert_int_equal(open_fresh(&f, p, 3, 1, NOW), LM_TRUST_ETRUNCATED);
    memcpy(t, p, n);
    t[n] = 0;
    assert_int_equal(open_fresh(&f, t, n + 1, 1, NOW), LM_TRUST_EMALFORMED);
    uint8_t big[4] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(lm_frame_peek(&fl, big, 4), LM_TRUST_EOVERSIZE);
    uint8_t tiny[4] = {0, 0, 0, 10};
    assert_int_equal(lm_frame_peek(&fl, tiny, 4), LM_TRUST_ETRUNCATED);
    /* The cert length field disagreeing with the cert. */
    memcpy(t, p, n);
    t[4 + LM_ENV_HDR_LEN + 1] ^= 1;
    assert_int_equal(open_fresh(&f, t, n, 1, NOW), LM_TRUST_EMALFORMED);
    memcpy(t, p, n);
    t[4 + LM_ENV_HDR_LEN] = 0xff;
    assert_int_equal(open_fresh(&f, t, n, 1, NOW), LM_TRUST_EMALFORMED);

    /* Someone else's valid cert on a frame: mismatch with the hint. */
    lm_keypair_t other;
    seed_kp(&other, 0x55);
    lm_cert_t ocert;
    assert_int_equal(lm_cert_issue(&ocert, other.pk, "other", NOW - 60, NOW + 3600, &f.cluster_key), 0);
    assert_int_equal(lm_sender_set_cert(&f.tx, &ocert), LM_TRUST_ECERT_MISMATCH);
    /* Bypass the check, as a forger would. */
    size_t ol = 0;
    assert_int_equal(lm_cert_encode(f.tx.cert, sizeof f.tx.cert, &ol, &ocert), 0);
    f.tx.cert_len = ol;
    assert_int_equal(lm_env_seal_frame(p, sizeof p, &n, (const uint8_t *)"x", 1, &f.tx, 1), 0);
    assert_int_equal(open_fresh(&f, p, n, 1, NOW), LM_TRUST_ECERT_MISMATCH);

    /* Frames without a cert from a known node, and a tampered frame. */
    assert_int_equal(lm_sender_set_cert(&f.tx, &cert), 0);
    assert_int_equal(lm_env_seal_frame(p, sizeof p, &n, (const uint8_t *)"x", 1, &f.tx, 0), 0);
    assert_int_equal(n, 4 + 1 + (encrypted ? LM_ENV_OVERHEAD_ENC : LM_ENV_OVERHEAD));
    assert_int_equal(open_fresh(&f, p, n, 1, NOW), 0);
    /* A frame opened as a datagram (prefix stripped) fails by channel. */
    assert_int_equal(open_fresh(&f, p + 4, n - 4, 0, 0), LM_TRUST_ECHANNEL);
    p[n - 1] ^= 1;
    assert_int_equal(open_fresh(&f, p, n, 1, NOW), LM_TRUST_EBADSIG);
    fx_close(&f);
  }
}

static void test_frame_large(void **state) {
  (void)state;
  fx_t f;
  fx_init(&f, NULL, 0);
  size_t len = 256 * 1024;
  uint8_t *payload = malloc(len), *out = malloc(len + 512);
  assert_non_null(payload);
  assert_non_null(out);
  for (size_t i = 0; i < len; i++)
    payload[i] = (uint8_t)(i * 31);
  size_t n = 0;
  assert_int_equal(lm_env_seal_frame(out, len + 512, &n, payload, len, &f.tx, 0), 0);
  lm_env_msg_t msg;
  assert_int_equal(lm_env_open_frame(&msg, out, n, &f.rx, NOW), 0);
  assert_int_equal(msg.payload_len, len);
  assert_memory_equal(msg.payload, payload, len);
  assert_int_equal(lm_env_seal_frame(out, len + 512, &n, payload, (size_t)SWIM_STREAM_MAX + 1, &f.tx, 0),
                   LM_TRUST_EOVERSIZE);
  free(payload);
  free(out);
  fx_close(&f);
}

/* ---- replay table ------------------------------------------------------- */

static void test_replay_table(void **state) {
  (void)state;
  lm_replay_t *r = NULL;
  assert_int_equal(lm_replay_new(&r, 0), 0);
  /* Many senders: the table grows; each keeps its own window. */
  enum { SENDERS = 5000 };
  for (uint64_t h = 0; h < SENDERS; h++) {
    uint64_t hint = h * 0x0101010101010101ull; /* h = 0 is a valid hint too */
    assert_int_equal(lm_replay_check(r, hint, 1000 + h), 0);
    assert_int_equal(lm_replay_commit(r, hint, 1000 + h), 0);
  }
  assert_int_equal(lm_replay_count(r), SENDERS);
  for (uint64_t h = 0; h < SENDERS; h++) {
    uint64_t hint = h * 0x0101010101010101ull;
    assert_int_equal(lm_replay_check(r, hint, 1000 + h), LM_TRUST_EREPLAYED);
    assert_int_equal(lm_replay_check(r, hint, 1001 + h), 0);
  }
  /* Forget half; the rest survive the backward shifts intact. */
  for (uint64_t h = 0; h < SENDERS; h += 2)
    lm_replay_forget(r, h * 0x0101010101010101ull);
  assert_int_equal(lm_replay_count(r), SENDERS / 2);
  for (uint64_t h = 0; h < SENDERS; h++) {
    uint64_t hint = h * 0x0101010101010101ull;
    assert_int_equal(lm_replay_check(r, hint, 1000 + h), h % 2 ? LM_TRUST_EREPLAYED : 0);
  }
  lm_replay_forget(r, 0x1234); /* not there: no-op */
  assert_int_equal(lm_replay_count(r), SENDERS / 2);

  /* Window arithmetic across the 64-bit word boundary and big jumps. */
  uint64_t h = 0xfeedull << 48;
  assert_int_equal(lm_replay_check(r, h, 0), LM_TRUST_ESTALE);
  assert_int_equal(lm_replay_commit(r, h, 500), 0);
  assert_int_equal(lm_replay_commit(r, h, 430), 0); /* d = 70: upper word */
  assert_int_equal(lm_replay_commit(r, h, 440), 0); /* d = 60: lower word */
  assert_int_equal(lm_replay_check(r, h, 430), LM_TRUST_EREPLAYED);
  assert_int_equal(lm_replay_check(r, h, 431), 0);
  assert_int_equal(lm_replay_commit(r, h, 560), 0); /* shift by 60 */
  assert_int_equal(lm_replay_check(r, h, 500), LM_TRUST_EREPLAYED); /* d 60 */
  assert_int_equal(lm_replay_check(r, h, 440), LM_TRUST_EREPLAYED); /* d 120 */
  assert_int_equal(lm_replay_check(r, h, 441), 0);                  /* d 119 */
  assert_int_equal(lm_replay_check(r, h, 433), 0);                  /* d 127 */
  assert_int_equal(lm_replay_check(r, h, 432), LM_TRUST_ESTALE);    /* d 128 */
  assert_int_equal(lm_replay_check(r, h, 430), LM_TRUST_ESTALE);
  assert_int_equal(lm_replay_commit(r, h, 432), 0); /* stale commit: no-op */
  assert_int_equal(lm_replay_check(r, h, 432), LM_TRUST_ESTALE);
  assert_int_equal(lm_replay_commit(r, h, 560 + 64), 0); /* exactly one word */
  assert_int_equal(lm_replay_check(r, h, 560), LM_TRUST_EREPLAYED);
  assert_int_equal(lm_replay_check(r, h, 500), LM_TRUST_EREPLAYED); /* d 124 */
  assert_int_equal(lm_replay_commit(r, h, UINT64_MAX), 0); /* far jump */
  assert_int_equal(lm_replay_check(r, h, UINT64_MAX), LM_TRUST_EREPLAYED);
  assert_int_equal(lm_replay_check(r, h, UINT64_MAX - 1), 0);
  assert_int_equal(lm_replay_check(r, h, 624), LM_TRUST_ESTALE);

  /* An empty slot is one whose top is 0: counter 0 is refused and leaves
   * nothing behind; counter 1, the smallest, takes a slot like any other,
   * and a forgotten sender starts afresh. */
  size_t before = lm_replay_count(r);
  uint64_t z = 0x77ull << 40;
  assert_int_equal(lm_replay_commit(r, z, 0), LM_TRUST_EINVAL);
  assert_int_equal(lm_replay_count(r), before);
  assert_int_equal(lm_replay_commit(r, z, 1), 0);
  assert_int_equal(lm_replay_count(r), before + 1);
  assert_int_equal(lm_replay_check(r, z, 1), LM_TRUST_EREPLAYED);
  assert_int_equal(lm_replay_check(r, z, 2), 0);
  lm_replay_forget(r, z);
  assert_int_equal(lm_replay_count(r), before);
  assert_int_equal(lm_replay_check(r, z, 1), 0);
  lm_replay_free(r);
}


/* Compact datagrams under the pairwise key: both ends derive the same
 * keys; every byte is covered; replays, a third member's key and another
 * cluster are refused; the counter is rebuilt from 32 bits and a clock. */
typedef struct {
  const lm_pair_t *p;
} one_pair_t;
static const lm_pair_t *one_pair(void *ud, uint32_t hint32, unsigned i) {
  one_pair_t *o = ud;
  uint32_t h = (uint32_t)o->p->pk[0] << 24 | (uint32_t)o->p->pk[1] << 16 |
               (uint32_t)o->p->pk[2] << 8 | o->p->pk[3];
  return i == 0 && h == hint32 ? o->p : NULL;
}

static void test_env_mac(void **state) {
  (void)state;
  lm_keypair_t a, b, c;
  seed_kp(&a, 0x21);
  seed_kp(&b, 0x22);
  seed_kp(&c, 0x23);
  lm_pair_t ab, ba, cb;
  assert_int_equal(lm_pair_derive(&ab, &a, b.pk), 0);
  assert_int_equal(lm_pair_derive(&ba, &b, a.pk), 0);
  assert_int_equal(lm_pair_derive(&cb, &c, b.pk), 0);
  assert_memory_equal(ab.tx, ba.rx, 32);
  assert_memory_equal(ab.rx, ba.tx, 32);
  assert_memory_not_equal(ab.tx, ab.rx, 32);
  lm_cluster_t cl, other;
  assert_int_equal(lm_cluster_init(&cl, "prod-eu", NULL, 0), 0);
  assert_int_equal(lm_cluster_init(&other, "prod-us", NULL, 0), 0);
  lm_sender_t tx;
  uint64_t now_us = 1700000000ull * 1000000ull;
  assert_int_equal(lm_sender_init(&tx, &cl, &a, 1000), 0);
  lm_sender_clock(&tx, now_us);
  uint8_t pkt[SWIM_MTU], t[SWIM_MTU];
  size_t n;
  assert_int_equal(lm_env_seal_mac(pkt, sizeof pkt, &n, (const uint8_t *)"ping", 4,
                                   &tx, &ab), 0);
  assert_int_equal(n, 4 + LM_ENV_MAC_OVERHEAD);
  assert_int_equal(pkt[0], 0x20 | LM_ENV_F_MAC);
  one_pair_t op = {&ba};
  lm_receiver_t rx;
  assert_int_equal(lm_receiver_init(&rx, &cl, NULL, NULL, NULL), 0);
  rx.pair_lookup = one_pair;
  rx.pair_ud = &op;
  rx.now_us = now_us + 5000000; /* clocks 5 s apart */
  lm_env_msg_t m;
  memcpy(t, pkt, n);
  assert_int_equal(lm_env_open(&m, t, n, &rx), 0);
  assert_int_equal(m.payload_len, 4);
  assert_memory_equal(m.payload, "ping", 4);
  assert_memory_equal(m.sender_pk, a.pk, 32);
  assert_int_equal(m.counter, now_us + 1);
  memcpy(t, pkt, n);
  assert_int_equal(lm_env_open(&m, t, n, &rx), LM_TRUST_EREPLAYED);
  /* every byte is covered */
  for (size_t i = 0; i < n; i++) {
    memcpy(t, pkt, n);
    t[i] ^= 0x40;
    assert_int_not_equal(lm_env_open(&m, t, n, &rx), 0);
  }
  /* a third member cannot MAC as a (its key is not a's) */
  lm_sender_t txc;
  assert_int_equal(lm_sender_init(&txc, &cl, &a, now_us + 10), 0);
  assert_int_equal(lm_env_seal_mac(t, sizeof t, &n, (const uint8_t *)"ping", 4,
                                   &txc, &cb), 0);
  assert_int_equal(lm_env_open(&m, t, n, &rx), LM_TRUST_EBADSIG);
  /* another cluster */
  lm_sender_t txo;
  assert_int_equal(lm_sender_init(&txo, &other, &a, now_us + 20), 0);
  assert_int_equal(lm_env_seal_mac(t, sizeof t, &n, (const uint8_t *)"ping", 4,
                                   &txo, &ab), 0);
  assert_int_equal(lm_env_open(&m, t, n, &rx), LM_TRUST_ECLUSTER);
  /* no pair for the sender: unknown */
  rx.pair_lookup = NULL;
  assert_int_equal(lm_env_seal_mac(t, sizeof t, &n, (const uint8_t *)"ping", 4,
                                   &tx, &ab), 0);
  assert_int_equal(lm_env_open(&m, t, n, &rx), LM_TRUST_EUNKNOWN_SENDER);
  lm_receiver_close(&rx);
  lm_sender_close(&tx);
  lm_sender_close(&txc);
  lm_sender_close(&txo);
  lm_cluster_close(&cl);
  lm_cluster_close(&other);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_table),
      cmocka_unit_test(test_key_text),
      cmocka_unit_test(test_keypair_from_seed_is_deterministic),
      cmocka_unit_test(test_keyfile_roundtrip),
      cmocka_unit_test(test_keyfile_corrupt),
      cmocka_unit_test(test_cert_roundtrip),
      cmocka_unit_test(test_cert_decode_malformed),
      cmocka_unit_test(test_cert_tamper_and_forgery),
      cmocka_unit_test(test_cert_dates),
      cmocka_unit_test(test_trust_set_ops),
      cmocka_unit_test(test_key_rotation),
      cmocka_unit_test(test_rec_sign_verify),
      cmocka_unit_test(test_env_roundtrip),
      cmocka_unit_test(test_env_tamper_every_byte),
      cmocka_unit_test(test_env_forged_signature),
      cmocka_unit_test(test_env_replay),
      cmocka_unit_test(test_env_counter_restart),
      cmocka_unit_test(test_env_wrong_cluster_unknown_sender),
      cmocka_unit_test(test_env_sizes),
      cmocka_unit_test(test_env_header_checks),
      cmocka_unit_test(test_env_encryption),
      cmocka_unit_test(test_env_encryption_rollout),
      cmocka_unit_test(test_env_wire_format),
      cmocka_unit_test(test_frame_with_cert),
      cmocka_unit_test(test_frame_large),
      cmocka_unit_test(test_replay_table),
      cmocka_unit_test(test_env_mac),
  };
  if (sodium_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
