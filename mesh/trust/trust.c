/*
 * trust.c: keys, certificates, trust set, envelope and replay windows of the
 * livemesh runtime (formats in trust.h and docs/trust.md).
 *
 * Pure: the only outside world it touches is libsodium and, for key files,
 * the file system. Must never depend on libuv, on sockets, on a clock, or on
 * global mutable state: every byte of state lives in an object the caller
 * owns, so many nodes can share a process.
 */
#define _POSIX_C_SOURCE 200809L

#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The whole envelope must fit the room the swim core leaves for it. */
_Static_assert(LM_ENV_OVERHEAD_ENC <= SWIM_ENVELOPE_MAX,
               "envelope overhead exceeds SWIM_ENVELOPE_MAX");
_Static_assert(LM_SIG_LEN == SWIM_SIG_LEN && LM_PUBLICKEY_LEN == SWIM_ID_LEN,
               "trust and swim disagree on key or signature sizes");
_Static_assert(LM_SIG_LEN == crypto_sign_BYTES &&
                   LM_PUBLICKEY_LEN == crypto_sign_PUBLICKEYBYTES &&
                   LM_SECRETKEY_LEN == crypto_sign_SECRETKEYBYTES &&
                   LM_SEED_LEN == crypto_sign_SEEDBYTES,
               "Ed25519 sizes");
_Static_assert(LM_SECRET_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES &&
                   LM_ENV_AEAD_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "XChaCha20-Poly1305 sizes");
_Static_assert(LM_FRAME_MAX <= UINT32_MAX, "frame length must fit the prefix");

/* ---- errors ------------------------------------------------------------ */

typedef struct {
  int code;
  const char *name;
  const char *msg;
} lm__err_t;

#define LM__ERR_ROW(n, v, s, m) {LM_TRUST_##n, s, m},
static const lm__err_t lm__errs[] = {LM_TRUST_ERRNO_MAP(LM__ERR_ROW)};
#undef LM__ERR_ROW
_Static_assert(sizeof lm__errs / sizeof lm__errs[0] == LM_TRUST_ERR_COUNT,
               "LM_TRUST_ERR_COUNT must match the table");

int lm_trust_err_index(int err) {
  for (size_t i = 0; i < LM_TRUST_ERR_COUNT; i++)
    if (lm__errs[i].code == err)
      return (int)i;
  return -1;
}

const char *lm_trust_strerror(int err) {
  if (err == 0)
    return "success";
  int i = lm_trust_err_index(err);
  return i < 0 ? "unknown error" : lm__errs[i].msg;
}

const char *lm_trust_err_name(int err) {
  if (err == 0)
    return "ok";
  int i = lm_trust_err_index(err);
  return i < 0 ? "unknown" : lm__errs[i].name;
}

/* ---- byte order ----------------------------------------------------------- */

static void put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint16_t get_be16(const uint8_t *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* ---- keys --------------------------------------------------------------- */

#define LM__B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

int lm_keypair_generate(lm_keypair_t *kp) {
  if (!kp)
    return LM_TRUST_EINVAL;
  if (sodium_init() < 0)
    return LM_TRUST_ENOMEM;
  crypto_sign_keypair(kp->pk, kp->sk);
  return 0;
}

int lm_keypair_from_seed(lm_keypair_t *kp, const uint8_t seed[LM_SEED_LEN]) {
  if (!kp || !seed)
    return LM_TRUST_EINVAL;
  if (sodium_init() < 0)
    return LM_TRUST_ENOMEM;
  crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
  return 0;
}

void lm_keypair_wipe(lm_keypair_t *kp) {
  if (kp)
    sodium_memzero(kp, sizeof *kp);
}

uint64_t lm_key_hint(const uint8_t pk[LM_PUBLICKEY_LEN]) {
  return get_be64(pk);
}

int lm_key_to_text(char *out, size_t out_cap, const uint8_t key[32]) {
  if (!out || !key || out_cap < LM_KEY_TEXT_LEN + 1)
    return out && key ? LM_TRUST_ENOSPACE : LM_TRUST_EINVAL;
  sodium_bin2base64(out, out_cap, key, 32, LM__B64);
  return 0;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Decodes exactly `want` bytes from exactly `len` characters; any other
 * length, alphabet or non-canonical trailing bits is a format error. */
static int b64_exact(uint8_t *out, size_t want, const char *s, size_t len) {
  size_t got = 0;
  const char *end = NULL;
  if (len != sodium_base64_encoded_len(want, LM__B64) - 1)
    return -1;
  if (sodium_base642bin(out, want, s, len, NULL, &got, &end, LM__B64) != 0 ||
      got != want || end != s + len)
    return -1;
  return 0;
}

int lm_key_from_text(uint8_t key[32], const char *text) {
  if (!key || !text)
    return LM_TRUST_EINVAL;
  size_t len = strlen(text);
  while (len > 0 && is_space(text[len - 1]))
    len--;
  while (len > 0 && is_space(*text)) {
    text++;
    len--;
  }
  uint8_t tmp[32];
  if (b64_exact(tmp, 32, text, len) != 0) {
    sodium_memzero(tmp, sizeof tmp);
    return LM_TRUST_EMALFORMED;
  }
  memcpy(key, tmp, 32);
  sodium_memzero(tmp, sizeof tmp);
  return 0;
}

/* ---- key files ------------------------------------------------------------ */

#define LM__FILE_MAX 1024 /* every key or cert file is far below this */

/* Write-then-rename so a crash or a concurrent reader never sees a partial
 * file; mkstemp creates the file 0600, so a secret is never readable by
 * others even for a moment. */
int lm_file_write_atomic(const char *path, const void *data, size_t len,
                         unsigned mode) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
  if (!tmp)
    return -ENOMEM;
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return -e;
  }
  int rc = 0;
  if (fchmod(fd, (mode_t)mode) != 0)
    rc = -errno;
  const char *p = data;
  for (size_t off = 0; rc == 0 && off < len;) {
    ssize_t n = write(fd, p + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      rc = n < 0 ? -errno : -EIO;
    else
      off += (size_t)n;
  }
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -errno;
  if (rc != 0)
    unlink(tmp);
  free(tmp);
  if (rc == 0) {
    /* Best effort: make the rename itself durable. */
    char *dir = strdup(path);
    if (dir) {
      char *slash = strrchr(dir, '/');
      const char *d = ".";
      if (slash) {
        slash[slash == dir ? 1 : 0] = '\0';
        d = dir;
      }
      int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
      }
      free(dir);
    }
  }
  return rc;
}

static int write_file_atomic(const char *path, const char *data, size_t len,
                             mode_t mode) {
  int rc = lm_file_write_atomic(path, data, len, mode);
  return rc == 0 ? 0 : rc == -ENOMEM ? LM_TRUST_ENOMEM : LM_TRUST_EIO;
}

/* Reads a whole small file; a file larger than `cap` is a format error
 * (nothing we write is that big), not something to truncate silently. */
static int read_file_small(char *buf, size_t cap, size_t *len,
                           const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return LM_TRUST_EIO;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return LM_TRUST_EIO;
  }
  if (st.st_size < 0 || (size_t)st.st_size >= cap) {
    close(fd);
    return LM_TRUST_EKEYFILE;
  }
  size_t off = 0;
  for (;;) {
    if (off == cap) { /* grew while we read it */
      close(fd);
      return LM_TRUST_EKEYFILE;
    }
    ssize_t n = read(fd, buf + off, cap - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close(fd);
      return LM_TRUST_EIO;
    }
    if (n == 0)
      break;
    off += (size_t)n;
  }
  close(fd);
  *len = off;
  return 0;
}

typedef struct {
  uint8_t *bin;
  size_t min, max; /* bytes accepted */
  size_t len;      /* bytes decoded */
} lm__field_t;

/* "<label> <b64>[ <b64>...]" then optional trailing whitespace. */
static int format_line(char *out, size_t cap, const char *label,
                       const lm__field_t *f, size_t nf) {
  size_t off = strlen(label);
  if (off + 1 > cap)
    return LM_TRUST_ENOSPACE;
  memcpy(out, label, off);
  for (size_t i = 0; i < nf; i++) {
    size_t need = sodium_base64_encoded_len(f[i].len, LM__B64);
    if (off + 1 + need + 1 > cap)
      return LM_TRUST_ENOSPACE;
    out[off++] = ' ';
    sodium_bin2base64(out + off, need, f[i].bin, f[i].len, LM__B64);
    off += need - 1;
  }
  out[off++] = '\n';
  out[off] = '\0';
  return (int)off;
}

static int parse_line(const char *buf, size_t len, const char *label,
                      lm__field_t *f, size_t nf) {
  size_t ll = strlen(label);
  while (len > 0 && is_space(buf[len - 1]))
    len--;
  if (len < ll || memcmp(buf, label, ll) != 0)
    return LM_TRUST_EKEYFILE;
  size_t off = ll;
  for (size_t i = 0; i < nf; i++) {
    if (off >= len || buf[off] != ' ')
      return LM_TRUST_EKEYFILE;
    off++;
    size_t start = off;
    while (off < len && buf[off] != ' ')
      off++;
    size_t tl = off - start;
    size_t got = 0;
    const char *end = NULL;
    if (tl == 0 || tl > sodium_base64_encoded_len(f[i].max, LM__B64) - 1 ||
        sodium_base642bin(f[i].bin, f[i].max, buf + start, tl, NULL, &got,
                          &end, LM__B64) != 0 ||
        end != buf + off || got < f[i].min)
      return LM_TRUST_EKEYFILE;
    f[i].len = got;
  }
  return off == len ? 0 : LM_TRUST_EKEYFILE;
}

static int save_fields(const char *path, mode_t mode, const char *label,
                       const lm__field_t *f, size_t nf) {
  char line[LM__FILE_MAX];
  int n = format_line(line, sizeof line, label, f, nf);
  int rc = n < 0 ? n : write_file_atomic(path, line, (size_t)n, mode);
  sodium_memzero(line, sizeof line);
  return rc;
}

static int load_fields(const char *path, const char *label, lm__field_t *f,
                       size_t nf) {
  char buf[LM__FILE_MAX];
  size_t len = 0;
  int rc = read_file_small(buf, sizeof buf, &len, path);
  if (rc == 0)
    rc = parse_line(buf, len, label, f, nf);
  sodium_memzero(buf, sizeof buf);
  return rc;
}

#define LM__LABEL_SK "livemesh-secret-key-v1"
#define LM__LABEL_PK "livemesh-public-key-v1"
#define LM__LABEL_SECRET "livemesh-cluster-secret-v1"
#define LM__LABEL_CERT "livemesh-cert-v1"
#define LM__SECRET_CHECK_LEN 8

int lm_keypair_save(const char *path, const lm_keypair_t *kp) {
  if (!path || !kp)
    return LM_TRUST_EINVAL;
  uint8_t seed[LM_SEED_LEN];
  crypto_sign_ed25519_sk_to_seed(seed, kp->sk);
  lm__field_t f[2] = {{seed, 32, 32, 32}, {(uint8_t *)kp->pk, 32, 32, 32}};
  int rc = save_fields(path, 0600, LM__LABEL_SK, f, 2);
  sodium_memzero(seed, sizeof seed);
  return rc;
}

int lm_keypair_load(lm_keypair_t *kp, const char *path) {
  if (!kp || !path)
    return LM_TRUST_EINVAL;
  uint8_t seed[LM_SEED_LEN], pk[LM_PUBLICKEY_LEN];
  lm__field_t f[2] = {{seed, 32, 32, 0}, {pk, 32, 32, 0}};
  lm_keypair_t tmp;
  int rc = load_fields(path, LM__LABEL_SK, f, 2);
  if (rc == 0)
    rc = lm_keypair_from_seed(&tmp, seed);
  /* The stored public key is the checksum: a flipped bit in the seed would
   * otherwise load as a different, valid-looking identity. */
  if (rc == 0 && sodium_memcmp(tmp.pk, pk, sizeof pk) != 0)
    rc = LM_TRUST_EKEYFILE;
  if (rc == 0)
    *kp = tmp;
  sodium_memzero(&tmp, sizeof tmp);
  sodium_memzero(seed, sizeof seed);
  return rc;
}

int lm_pubkey_save(const char *path, const uint8_t pk[LM_PUBLICKEY_LEN]) {
  if (!path || !pk)
    return LM_TRUST_EINVAL;
  lm__field_t f = {(uint8_t *)pk, 32, 32, 32};
  return save_fields(path, 0644, LM__LABEL_PK, &f, 1);
}

int lm_pubkey_load(uint8_t pk[LM_PUBLICKEY_LEN], const char *path) {
  if (!pk || !path)
    return LM_TRUST_EINVAL;
  uint8_t tmp[LM_PUBLICKEY_LEN];
  lm__field_t f = {tmp, 32, 32, 0};
  int rc = load_fields(path, LM__LABEL_PK, &f, 1);
  if (rc == 0)
    memcpy(pk, tmp, sizeof tmp);
  return rc;
}

static void secret_check(uint8_t check[LM__SECRET_CHECK_LEN],
                         const uint8_t secret[LM_SECRET_LEN]) {
  static const uint8_t ctx[] = "livemesh-secret-check-v1";
  crypto_generichash(check, LM__SECRET_CHECK_LEN, secret, LM_SECRET_LEN, ctx,
                     sizeof ctx - 1);
}

int lm_secret_save(const char *path, const uint8_t secret[LM_SECRET_LEN]) {
  if (!path || !secret)
    return LM_TRUST_EINVAL;
  uint8_t check[LM__SECRET_CHECK_LEN];
  secret_check(check, secret);
  lm__field_t f[2] = {{(uint8_t *)secret, 32, 32, 32},
                      {check, sizeof check, sizeof check, sizeof check}};
  return save_fields(path, 0600, LM__LABEL_SECRET, f, 2);
}

int lm_secret_load(uint8_t secret[LM_SECRET_LEN], const char *path) {
  if (!secret || !path)
    return LM_TRUST_EINVAL;
  uint8_t tmp[LM_SECRET_LEN], check[LM__SECRET_CHECK_LEN],
      want[LM__SECRET_CHECK_LEN];
  lm__field_t f[2] = {{tmp, 32, 32, 0},
                      {check, sizeof check, sizeof check, 0}};
  int rc = load_fields(path, LM__LABEL_SECRET, f, 2);
  if (rc == 0) {
    secret_check(want, tmp);
    if (sodium_memcmp(want, check, sizeof want) != 0)
      rc = LM_TRUST_EKEYFILE;
  }
  if (rc == 0)
    memcpy(secret, tmp, sizeof tmp);
  sodium_memzero(tmp, sizeof tmp);
  return rc;
}

/* ---- certificates ------------------------------------------------------- */

static const uint8_t lm__cert_ctx[] = "livemesh-cert-v1"; /* NUL included */
#define LM__CERT_BODY_MAX (LM_CERT_MAX - LM_SIG_LEN)

/* 1..64 bytes and no NUL inside: returns the length, or 0 if invalid. */
static size_t cert_name_len(const char *name) {
  size_t n = 0;
  while (n <= LM_CERT_NAME_MAX && name[n] != '\0')
    n++;
  return n >= 1 && n <= LM_CERT_NAME_MAX ? n : 0;
}

/* The signed part; the caller has checked the name. */
static size_t cert_body(uint8_t *out, const lm_cert_t *c, size_t nlen) {
  size_t off = 0;
  out[off++] = c->version;
  memcpy(out + off, c->node_pk, LM_PUBLICKEY_LEN);
  off += LM_PUBLICKEY_LEN;
  out[off++] = (uint8_t)nlen;
  memcpy(out + off, c->name, nlen);
  off += nlen;
  put_be64(out + off, c->not_before);
  off += 8;
  put_be64(out + off, c->expiry);
  off += 8;
  memcpy(out + off, c->cluster_key_id, LM_KEY_ID_LEN);
  off += LM_KEY_ID_LEN;
  return off;
}

/* Domain prefix then body, ready for Ed25519. */
static size_t cert_signed_msg(uint8_t out[sizeof lm__cert_ctx +
                                          LM__CERT_BODY_MAX],
                              const lm_cert_t *c, size_t nlen) {
  memcpy(out, lm__cert_ctx, sizeof lm__cert_ctx);
  return sizeof lm__cert_ctx + cert_body(out + sizeof lm__cert_ctx, c, nlen);
}

int lm_cert_issue(lm_cert_t *cert, const uint8_t node_pk[LM_PUBLICKEY_LEN],
                  const char *name, uint64_t not_before, uint64_t expiry,
                  const lm_keypair_t *cluster) {
  if (!cert || !node_pk || !name || !cluster || expiry <= not_before)
    return LM_TRUST_EINVAL;
  size_t nlen = cert_name_len(name);
  if (nlen == 0)
    return LM_TRUST_EINVAL;
  lm_cert_t c;
  memset(&c, 0, sizeof c);
  c.version = LM_CERT_VERSION;
  memcpy(c.node_pk, node_pk, LM_PUBLICKEY_LEN);
  memcpy(c.name, name, nlen);
  c.not_before = not_before;
  c.expiry = expiry;
  memcpy(c.cluster_key_id, cluster->pk, LM_KEY_ID_LEN);
  uint8_t msg[sizeof lm__cert_ctx + LM__CERT_BODY_MAX];
  size_t mlen = cert_signed_msg(msg, &c, nlen);
  crypto_sign_detached(c.sig, NULL, msg, mlen, cluster->sk);
  *cert = c;
  return 0;
}

int lm_cert_encode(uint8_t *out, size_t out_cap, size_t *out_len,
                   const lm_cert_t *cert) {
  if (!out || !out_len || !cert || cert->version != LM_CERT_VERSION)
    return LM_TRUST_EINVAL;
  size_t nlen = cert_name_len(cert->name);
  if (nlen == 0)
    return LM_TRUST_EINVAL;
  size_t total = LM_CERT_MIN - 1 + nlen;
  if (out_cap < total)
    return LM_TRUST_ENOSPACE;
  size_t off = cert_body(out, cert, nlen);
  memcpy(out + off, cert->sig, LM_SIG_LEN);
  *out_len = off + LM_SIG_LEN;
  return 0;
}

int lm_cert_decode(lm_cert_t *cert, const uint8_t *buf, size_t len) {
  if (!cert || (!buf && len > 0))
    return LM_TRUST_EINVAL;
  if (len < 1)
    return LM_TRUST_ETRUNCATED;
  if (buf[0] != LM_CERT_VERSION)
    return LM_TRUST_EVERSION;
  if (len < 1 + LM_PUBLICKEY_LEN + 1)
    return LM_TRUST_ETRUNCATED;
  size_t nlen = buf[1 + LM_PUBLICKEY_LEN];
  if (nlen < 1 || nlen > LM_CERT_NAME_MAX)
    return LM_TRUST_EMALFORMED;
  size_t total = LM_CERT_MIN - 1 + nlen;
  if (len < total)
    return LM_TRUST_ETRUNCATED;
  const uint8_t *name = buf + 1 + LM_PUBLICKEY_LEN + 1;
  if (memchr(name, 0, nlen))
    return LM_TRUST_EMALFORMED; /* would not survive as a C string */
  lm_cert_t c;
  memset(&c, 0, sizeof c);
  c.version = buf[0];
  memcpy(c.node_pk, buf + 1, LM_PUBLICKEY_LEN);
  memcpy(c.name, name, nlen);
  const uint8_t *p = name + nlen;
  c.not_before = get_be64(p);
  c.expiry = get_be64(p + 8);
  memcpy(c.cluster_key_id, p + 16, LM_KEY_ID_LEN);
  memcpy(c.sig, p + 16 + LM_KEY_ID_LEN, LM_SIG_LEN);
  *cert = c;
  return (int)total;
}

int lm_cert_verify(const lm_trust_set_t *ts, const lm_cert_t *cert,
                   uint64_t now_unix) {
  if (!ts || !cert)
    return LM_TRUST_EINVAL;
  if (cert->version != LM_CERT_VERSION)
    return LM_TRUST_EVERSION;
  size_t nlen = cert_name_len(cert->name);
  if (nlen == 0)
    return LM_TRUST_EINVAL;
  uint8_t msg[sizeof lm__cert_ctx + LM__CERT_BODY_MAX];
  size_t mlen = cert_signed_msg(msg, cert, nlen);
  int rc = LM_TRUST_ECERT_UNTRUSTED;
  /* Key ids are 8-byte prefixes, so two trusted keys could share one; a
   * certificate is good if any of them signed it. */
  for (size_t i = 0; i < ts->count && rc != 0; i++) {
    if (memcmp(ts->keys[i], cert->cluster_key_id, LM_KEY_ID_LEN) != 0)
      continue;
    rc = crypto_sign_verify_detached(cert->sig, msg, mlen, ts->keys[i]) == 0
             ? 0
             : LM_TRUST_ECERT_BADSIG;
  }
  if (rc != 0)
    return rc;
  if (now_unix < cert->not_before)
    return LM_TRUST_ECERT_NOTYET;
  if (now_unix >= cert->expiry)
    return LM_TRUST_ECERT_EXPIRED;
  return 0;
}

int lm_cert_save(const char *path, const lm_cert_t *cert) {
  if (!path || !cert)
    return LM_TRUST_EINVAL;
  uint8_t enc[LM_CERT_MAX];
  size_t len = 0;
  int rc = lm_cert_encode(enc, sizeof enc, &len, cert);
  if (rc != 0)
    return rc;
  lm__field_t f = {enc, len, len, len};
  return save_fields(path, 0644, LM__LABEL_CERT, &f, 1);
}

int lm_cert_load(lm_cert_t *cert, const char *path) {
  if (!cert || !path)
    return LM_TRUST_EINVAL;
  uint8_t enc[LM_CERT_MAX];
  lm__field_t f = {enc, LM_CERT_MIN, LM_CERT_MAX, 0};
  int rc = load_fields(path, LM__LABEL_CERT, &f, 1);
  if (rc != 0)
    return rc;
  rc = lm_cert_decode(cert, enc, f.len);
  if (rc < 0 || (size_t)rc != f.len)
    return LM_TRUST_EKEYFILE;
  return 0;
}

/* ---- trust set ---------------------------------------------------------- */

void lm_trust_set_init(lm_trust_set_t *ts) {
  if (ts)
    memset(ts, 0, sizeof *ts);
}

static int trust_set_find(const lm_trust_set_t *ts,
                          const uint8_t pk[LM_PUBLICKEY_LEN]) {
  for (size_t i = 0; i < ts->count; i++)
    if (memcmp(ts->keys[i], pk, LM_PUBLICKEY_LEN) == 0)
      return (int)i;
  return -1;
}

int lm_trust_set_add(lm_trust_set_t *ts, const uint8_t pk[LM_PUBLICKEY_LEN]) {
  if (!ts || !pk || ts->count > LM_TRUST_SET_MAX)
    return LM_TRUST_EINVAL;
  if (trust_set_find(ts, pk) >= 0)
    return 0;
  if (ts->count == LM_TRUST_SET_MAX)
    return LM_TRUST_EFULL;
  memcpy(ts->keys[ts->count++], pk, LM_PUBLICKEY_LEN);
  return 0;
}

int lm_trust_set_remove(lm_trust_set_t *ts,
                        const uint8_t pk[LM_PUBLICKEY_LEN]) {
  if (!ts || !pk || ts->count > LM_TRUST_SET_MAX)
    return LM_TRUST_EINVAL;
  int i = trust_set_find(ts, pk);
  if (i < 0)
    return LM_TRUST_ENOTFOUND;
  ts->count--;
  if ((size_t)i != ts->count)
    memcpy(ts->keys[i], ts->keys[ts->count], LM_PUBLICKEY_LEN);
  memset(ts->keys[ts->count], 0, LM_PUBLICKEY_LEN);
  return 0;
}

int lm_trust_set_contains(const lm_trust_set_t *ts,
                          const uint8_t pk[LM_PUBLICKEY_LEN]) {
  return ts && pk && ts->count <= LM_TRUST_SET_MAX && trust_set_find(ts, pk) >= 0;
}

/* ---- record signing ----------------------------------------------------- */

static const uint8_t lm__rec_ctx[] = "livemesh-rec-v1"; /* NUL included */
#define LM__REC_STACK 2048 /* every swim record fits; larger ones go to heap */

/* Ed25519 needs the whole message at once, so the prefix is prepended in a
 * copy rather than hashed first (prehashing would change the scheme). */
static uint8_t *rec_msg(uint8_t *stack, const uint8_t *msg, size_t len,
                        size_t *mlen) {
  if (len > SIZE_MAX - sizeof lm__rec_ctx)
    return NULL;
  *mlen = sizeof lm__rec_ctx + len;
  uint8_t *m = *mlen <= LM__REC_STACK ? stack : malloc(*mlen);
  if (!m)
    return NULL;
  memcpy(m, lm__rec_ctx, sizeof lm__rec_ctx);
  if (len > 0)
    memcpy(m + sizeof lm__rec_ctx, msg, len);
  return m;
}

int lm_rec_sign(uint8_t sig[LM_SIG_LEN], const uint8_t *msg, size_t len,
                const lm_keypair_t *kp) {
  if (!sig || !kp || (!msg && len > 0))
    return LM_TRUST_EINVAL;
  uint8_t stack[LM__REC_STACK];
  size_t mlen = 0;
  uint8_t *m = rec_msg(stack, msg, len, &mlen);
  if (!m)
    return LM_TRUST_ENOMEM;
  crypto_sign_detached(sig, NULL, m, mlen, kp->sk);
  if (m != stack)
    free(m);
  return 0;
}

int lm_rec_verify(const uint8_t sig[LM_SIG_LEN], const uint8_t *msg,
                  size_t len, const uint8_t pk[LM_PUBLICKEY_LEN]) {
  if (!sig || !pk || (!msg && len > 0))
    return LM_TRUST_EINVAL;
  uint8_t stack[LM__REC_STACK];
  size_t mlen = 0;
  uint8_t *m = rec_msg(stack, msg, len, &mlen);
  if (!m)
    return LM_TRUST_ENOMEM;
  int rc = crypto_sign_verify_detached(sig, m, mlen, pk) == 0
               ? 0
               : LM_TRUST_EBADSIG;
  if (m != stack)
    free(m);
  return rc;
}

/* Service lists may be large: Ed25519ph (a hash of the message is signed)
 * over "livemesh-svc-v1\0" || list, computed in one pass without a copy. */
static const char svc_domain[] = "livemesh-svc-v1";

int lm_svc_sign(uint8_t sig[LM_SIG_LEN], const uint8_t *list, size_t len,
                const lm_keypair_t *kp) {
  if (!sig || !kp || (!list && len > 0))
    return LM_TRUST_EINVAL;
  crypto_sign_state st;
  crypto_sign_init(&st);
  crypto_sign_update(&st, (const unsigned char *)svc_domain,
                     sizeof svc_domain);
  crypto_sign_update(&st, list, len);
  crypto_sign_final_create(&st, sig, NULL, kp->sk);
  sodium_memzero(&st, sizeof st);
  return 0;
}

int lm_svc_verify(const uint8_t sig[LM_SIG_LEN], const uint8_t *list,
                  size_t len, const uint8_t pk[LM_PUBLICKEY_LEN]) {
  if (!sig || !pk || (!list && len > 0))
    return LM_TRUST_EINVAL;
  crypto_sign_state st;
  crypto_sign_init(&st);
  crypto_sign_update(&st, (const unsigned char *)svc_domain,
                     sizeof svc_domain);
  crypto_sign_update(&st, list, len);
  return crypto_sign_final_verify(&st, sig, pk) == 0 ? 0 : LM_TRUST_EBADSIG;
}

/* ---- replay windows ----------------------------------------------------- */

/* bits[0] bit d: counter top-d seen (d < 64); bits[1] bit d: top-64-d.
 * Counters start at 1, so top 0 marks an empty slot: 32 bytes a sender,
 * and every node holds one for nearly every member. */
typedef struct {
  uint64_t hint;
  uint64_t top;
  uint64_t bits[2];
} lm__replay_slot_t;

struct lm_replay {
  lm__replay_slot_t *slots;
  size_t cap; /* a power of two */
  size_t count;
};

/* Hints are key prefixes, already uniform for honest keys; the mix only
 * keeps a few ground keys from piling into one probe run. */
static size_t replay_home(const lm_replay_t *r, uint64_t hint) {
  hint ^= hint >> 31;
  hint *= 0x9e3779b97f4a7c15ull;
  hint ^= hint >> 29;
  return (size_t)hint & (r->cap - 1);
}

static lm__replay_slot_t *replay_find(const lm_replay_t *r, uint64_t hint) {
  for (size_t i = replay_home(r, hint);; i = (i + 1) & (r->cap - 1)) {
    lm__replay_slot_t *s = &r->slots[i];
    if (!s->top)
      return NULL;
    if (s->hint == hint)
      return s;
  }
}

int lm_replay_new(lm_replay_t **out, size_t initial_capacity) {
  if (!out)
    return LM_TRUST_EINVAL;
  *out = NULL;
  size_t cap = 16;
  while (cap < initial_capacity * 2 && cap < ((size_t)1 << 30))
    cap *= 2;
  lm_replay_t *r = calloc(1, sizeof *r);
  if (!r)
    return LM_TRUST_ENOMEM;
  r->slots = calloc(cap, sizeof *r->slots);
  if (!r->slots) {
    free(r);
    return LM_TRUST_ENOMEM;
  }
  r->cap = cap;
  *out = r;
  return 0;
}

void lm_replay_free(lm_replay_t *r) {
  if (!r)
    return;
  free(r->slots);
  free(r);
}

size_t lm_replay_count(const lm_replay_t *r) { return r ? r->count : 0; }

static int replay_grow(lm_replay_t *r) {
  if (r->cap > SIZE_MAX / 2 / sizeof *r->slots)
    return LM_TRUST_ENOMEM;
  lm_replay_t n = {calloc(r->cap * 2, sizeof *r->slots), r->cap * 2, 0};
  if (!n.slots)
    return LM_TRUST_ENOMEM;
  for (size_t i = 0; i < r->cap; i++) {
    if (!r->slots[i].top)
      continue;
    size_t j = replay_home(&n, r->slots[i].hint);
    while (n.slots[j].top)
      j = (j + 1) & (n.cap - 1);
    n.slots[j] = r->slots[i];
    n.count++;
  }
  free(r->slots);
  *r = n;
  return 0;
}

int lm_replay_check(const lm_replay_t *r, uint64_t hint, uint64_t counter) {
  if (!r)
    return LM_TRUST_EINVAL;
  if (counter == 0)
    return LM_TRUST_ESTALE; /* senders start at 1 */
  const lm__replay_slot_t *s = replay_find(r, hint);
  if (!s || counter > s->top)
    return 0;
  uint64_t d = s->top - counter;
  if (d >= LM_REPLAY_WINDOW)
    return LM_TRUST_ESTALE;
  return (s->bits[d / 64] >> (d % 64)) & 1 ? LM_TRUST_EREPLAYED : 0;
}

int lm_replay_commit(lm_replay_t *r, uint64_t hint, uint64_t counter) {
  if (!r || counter == 0)
    return LM_TRUST_EINVAL;
  lm__replay_slot_t *s = replay_find(r, hint);
  if (!s) {
    /* Keep the load under 3/4 so probe runs stay short. */
    if ((r->count + 1) * 4 > r->cap * 3) {
      int rc = replay_grow(r);
      if (rc != 0)
        return rc;
    }
    size_t i = replay_home(r, hint);
    while (r->slots[i].top)
      i = (i + 1) & (r->cap - 1);
    s = &r->slots[i];
    memset(s, 0, sizeof *s);
    s->hint = hint; /* taken: top becomes counter (> 0) below */
    r->count++;
  }
  if (counter > s->top) {
    uint64_t sh = counter - s->top;
    if (sh >= 128) {
      s->bits[0] = s->bits[1] = 0;
    } else if (sh >= 64) {
      s->bits[1] = s->bits[0] << (sh - 64);
      s->bits[0] = 0;
    } else {
      s->bits[1] = s->bits[1] << sh | s->bits[0] >> (64 - sh);
      s->bits[0] <<= sh;
    }
    s->bits[0] |= 1;
    s->top = counter;
  } else {
    uint64_t d = s->top - counter;
    if (d < LM_REPLAY_WINDOW)
      s->bits[d / 64] |= (uint64_t)1 << (d % 64);
  }
  return 0;
}

void lm_replay_forget(lm_replay_t *r, uint64_t hint) {
  if (!r)
    return;
  lm__replay_slot_t *s = replay_find(r, hint);
  if (!s)
    return;
  /* Backward-shift deletion: linear probing needs no tombstones if every
   * later entry of the run that could live in the hole moves into it. */
  size_t i = (size_t)(s - r->slots);
  for (size_t j = (i + 1) & (r->cap - 1);; j = (j + 1) & (r->cap - 1)) {
    if (!r->slots[j].top)
      break;
    size_t h = replay_home(r, r->slots[j].hint);
    /* Move j to i unless its home lies cyclically in (i, j]. */
    int stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
    if (!stays) {
      r->slots[i] = r->slots[j];
      i = j;
    }
  }
  memset(&r->slots[i], 0, sizeof r->slots[i]);
  r->count--;
}

/* ---- cluster, sender, receiver ------------------------------------------ */

static const uint8_t lm__cluster_ctx[] = "livemesh-cluster-v1"; /* NUL included */

int lm_cluster_init(lm_cluster_t *c, const char *name,
                    const uint8_t secret[LM_SECRET_LEN], unsigned flags) {
  if (!c || !name || name[0] == '\0' ||
      (flags & ~(unsigned)(LM_CLUSTER_SEND_PLAINTEXT |
                           LM_CLUSTER_ACCEPT_PLAINTEXT)))
    return LM_TRUST_EINVAL;
  if (sodium_init() < 0)
    return LM_TRUST_ENOMEM;
  memset(c, 0, sizeof *c);
  crypto_generichash_state st;
  uint8_t h[32];
  crypto_generichash_init(&st, NULL, 0, sizeof h);
  crypto_generichash_update(&st, lm__cluster_ctx, sizeof lm__cluster_ctx);
  crypto_generichash_update(&st, (const uint8_t *)name, strlen(name));
  crypto_generichash_final(&st, h, sizeof h);
  memcpy(c->tag, h, LM_ENV_TAG_LEN);
  if (secret) {
    memcpy(c->secret, secret, LM_SECRET_LEN);
    c->has_secret = 1;
    c->send_plaintext = (flags & LM_CLUSTER_SEND_PLAINTEXT) != 0;
    c->accept_plaintext = (flags & LM_CLUSTER_ACCEPT_PLAINTEXT) != 0;
  } else {
    c->send_plaintext = 1;
    c->accept_plaintext = 1;
  }
  return 0;
}

void lm_cluster_close(lm_cluster_t *c) {
  if (c)
    sodium_memzero(c, sizeof *c);
}

int lm_sender_init(lm_sender_t *s, const lm_cluster_t *c,
                   const lm_keypair_t *kp, uint64_t counter_base) {
  if (!s || !c || !kp)
    return LM_TRUST_EINVAL;
  memset(s, 0, sizeof *s);
  s->cluster = c;
  s->kp = *kp;
  s->counter = counter_base;
  return 0;
}

int lm_sender_set_cert(lm_sender_t *s, const lm_cert_t *cert) {
  if (!s || !cert)
    return LM_TRUST_EINVAL;
  if (memcmp(cert->node_pk, s->kp.pk, LM_PUBLICKEY_LEN) != 0)
    return LM_TRUST_ECERT_MISMATCH;
  size_t len = 0;
  int rc = lm_cert_encode(s->cert, sizeof s->cert, &len, cert);
  s->cert_len = rc == 0 ? len : 0;
  return rc;
}

void lm_sender_close(lm_sender_t *s) {
  if (s)
    sodium_memzero(s, sizeof *s);
}

static int sender_encrypts(const lm_sender_t *s) {
  return s->cluster->has_secret && !s->cluster->send_plaintext;
}

#define LM__NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

/* 16 bytes of the key (not just the 8-byte hint) so that two senders whose
 * hints collide still never share a nonce; the counter never repeats for
 * one sender. */
static void env_nonce(uint8_t n[LM__NONCE_LEN],
                      const uint8_t pk[LM_PUBLICKEY_LEN], uint64_t counter) {
  memcpy(n, pk, 16);
  put_be64(n + 16, counter);
}

size_t lm_env_overhead(const lm_sender_t *s) {
  return s && s->cluster && sender_encrypts(s) ? LM_ENV_OVERHEAD_ENC
                                               : LM_ENV_OVERHEAD;
}

void lm_sender_clock(lm_sender_t *s, uint64_t now_us) {
  if (s && now_us > s->counter && now_us < UINT64_MAX / 2)
    s->counter = now_us;
}

int lm_pair_derive(lm_pair_t *p, const lm_keypair_t *me,
                   const uint8_t peer_pk[LM_PUBLICKEY_LEN]) {
  uint8_t my_x_sk[32], my_x_pk[32], peer_x[32];
  if (!p || !me || !peer_pk)
    return LM_TRUST_EINVAL;
  memset(p, 0, sizeof *p);
  if (crypto_sign_ed25519_pk_to_curve25519(peer_x, peer_pk) != 0 ||
      crypto_sign_ed25519_sk_to_curve25519(my_x_sk, me->sk) != 0 ||
      crypto_scalarmult_base(my_x_pk, my_x_sk) != 0) {
    sodium_memzero(my_x_sk, sizeof my_x_sk);
    return LM_TRUST_EBADSIG;
  }
  int rc = memcmp(me->pk, peer_pk, LM_PUBLICKEY_LEN) < 0
               ? crypto_kx_client_session_keys(p->rx, p->tx, my_x_pk, my_x_sk,
                                               peer_x)
               : crypto_kx_server_session_keys(p->rx, p->tx, my_x_pk, my_x_sk,
                                               peer_x);
  sodium_memzero(my_x_sk, sizeof my_x_sk);
  if (rc != 0)
    return LM_TRUST_EBADSIG;
  memcpy(p->pk, peer_pk, LM_PUBLICKEY_LEN);
  return 0;
}

int lm_pair_self_init(lm_pair_self_t *s, const lm_keypair_t *me) {
  if (!s || !me)
    return LM_TRUST_EINVAL;
  memcpy(s->pk, me->pk, LM_PUBLICKEY_LEN);
  if (crypto_sign_ed25519_sk_to_curve25519(s->x_sk, me->sk) != 0 ||
      crypto_scalarmult_base(s->x_pk, s->x_sk) != 0)
    return LM_TRUST_EBADSIG;
  return 0;
}

int lm_pair_peer_x(uint8_t x_pk[32], const uint8_t peer_pk[LM_PUBLICKEY_LEN]) {
  return crypto_sign_ed25519_pk_to_curve25519(x_pk, peer_pk) == 0
             ? 0
             : LM_TRUST_EBADSIG;
}

int lm_pair_derive_x(lm_pair_t *p, const lm_pair_self_t *me,
                     const uint8_t peer_pk[LM_PUBLICKEY_LEN],
                     const uint8_t peer_x[32]) {
  if (!p || !me || !peer_pk || !peer_x)
    return LM_TRUST_EINVAL;
  memset(p, 0, sizeof *p);
  int rc = memcmp(me->pk, peer_pk, LM_PUBLICKEY_LEN) < 0
               ? crypto_kx_client_session_keys(p->rx, p->tx, me->x_pk,
                                               me->x_sk, peer_x)
               : crypto_kx_server_session_keys(p->rx, p->tx, me->x_pk,
                                               me->x_sk, peer_x);
  if (rc != 0)
    return LM_TRUST_EBADSIG;
  memcpy(p->pk, peer_pk, LM_PUBLICKEY_LEN);
  return 0;
}

/* BLAKE2b-128 keyed with the direction's key over the full counter (only
 * its low half travels), the header and the body. */
static void env_mac(uint8_t mac[LM_ENV_MAC_LEN], const uint8_t key[32],
                    uint64_t counter, const uint8_t *e, size_t len) {
  crypto_generichash_state st;
  uint8_t c8[8];
  put_be64(c8, counter);
  crypto_generichash_init(&st, key, 32, LM_ENV_MAC_LEN);
  crypto_generichash_update(&st, c8, sizeof c8);
  crypto_generichash_update(&st, e, len);
  crypto_generichash_final(&st, mac, LM_ENV_MAC_LEN);
}

/* The cluster's encryption policy: an encrypted envelope needs the
 * secret, a plaintext one the cluster's consent. */
static int env_policy(const lm_cluster_t *c, int enc) {
  if (enc && !c->has_secret)
    return LM_TRUST_ENOSECRET;
  if (!enc && !c->accept_plaintext)
    return LM_TRUST_EPLAINTEXT;
  return 0;
}

/* The payload after an envelope's header of `off` bytes at `e`: encrypted
 * (with the header as associated data) or copied. The new offset. */
static size_t env_put_body(uint8_t *e, size_t off, const uint8_t *payload,
                           size_t len, const lm_sender_t *s, uint64_t counter,
                           int enc) {
  if (enc) {
    uint8_t nonce[LM__NONCE_LEN];
    env_nonce(nonce, s->kp.pk, counter);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        e + off, e + off + len, NULL, payload, len, e, off, NULL, nonce,
        s->cluster->secret);
    return off + len + LM_ENV_AEAD_LEN;
  }
  if (len > 0)
    memcpy(e + off, payload, len);
  return off + len;
}

/* An authenticated envelope's last steps: decrypt the body [off, body_end)
 * in place if it is encrypted, move the sender's replay window (only now,
 * so nothing forged or undecryptable can), and describe the payload. */
static int env_take_body(lm_env_msg_t *msg, uint8_t *e, size_t off,
                         size_t body_end, const lm_cluster_t *c,
                         lm_replay_t *win, uint64_t hint, uint64_t counter,
                         int enc) {
  size_t plen = body_end - off;
  if (enc) {
    uint8_t nonce[LM__NONCE_LEN];
    env_nonce(nonce, msg->sender_pk, counter);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            e + off, NULL, e + off, plen, e + body_end, e, off, nonce,
            c->secret) != 0)
      return LM_TRUST_EDECRYPT;
  }
  int rc = lm_replay_commit(win, hint, counter);
  if (rc != 0)
    return rc;
  msg->payload = e + off;
  msg->payload_len = plen;
  msg->hint = hint;
  msg->counter = counter;
  msg->encrypted = enc;
  return 0;
}

int lm_env_seal_mac(uint8_t *out, size_t out_cap, size_t *out_len,
                    const uint8_t *payload, size_t len, lm_sender_t *s,
                    const lm_pair_t *pair) {
  if (!out || !out_len || !s || !s->cluster || !pair || (!payload && len > 0))
    return LM_TRUST_EINVAL;
  int enc = sender_encrypts(s);
  size_t env_len = LM_ENV_MAC_HDR_LEN + len + (enc ? LM_ENV_AEAD_LEN : 0) +
                   LM_ENV_MAC_LEN;
  if (env_len > SWIM_MTU)
    return LM_TRUST_EOVERSIZE;
  if (out_cap < env_len)
    return LM_TRUST_ENOSPACE;
  if (s->counter == UINT64_MAX)
    return LM_TRUST_EEXHAUSTED;
  uint64_t counter = s->counter + 1;
  out[0] = (uint8_t)(LM_ENV_VERSION << 4 | (enc ? LM_ENV_F_ENC : 0) |
                     LM_ENV_F_MAC);
  memcpy(out + 1, s->cluster->tag, LM_ENV_MAC_TAG_LEN);
  memcpy(out + 3, s->kp.pk, LM_ENV_MAC_HINT_LEN);
  put_be32(out + 7, (uint32_t)counter);
  size_t off =
      env_put_body(out, LM_ENV_MAC_HDR_LEN, payload, len, s, counter, enc);
  env_mac(out + off, pair->tx, counter, out, off);
  off += LM_ENV_MAC_LEN;
  s->counter = counter;
  *out_len = off;
  return 0;
}

/* The full counter nearest to `ref` whose low 32 bits are `lo`. */
static uint64_t ctr_expand(uint32_t lo, uint64_t ref) {
  uint64_t c = (ref & ~(uint64_t)0xffffffffu) | lo;
  if (c + 0x80000000ull < ref && c < UINT64_MAX - 0xffffffffull)
    c += 0x100000000ull;
  else if (c > ref + 0x80000000ull && c >= 0x100000000ull)
    c -= 0x100000000ull;
  return c;
}

static int env_open_mac(lm_env_msg_t *msg, uint8_t *e, size_t len,
                        lm_receiver_t *rx) {
  const lm_cluster_t *c = rx->cluster;
  unsigned flags = e[0] & 0x0f;
  if (flags & (LM_ENV_F_STREAM | LM_ENV_F_CERT))
    return LM_TRUST_EMALFORMED;
  if (memcmp(e + 1, c->tag, LM_ENV_MAC_TAG_LEN) != 0)
    return LM_TRUST_ECLUSTER;
  int enc = (flags & LM_ENV_F_ENC) != 0;
  int rc = env_policy(c, enc);
  if (rc != 0)
    return rc;
  size_t tail = LM_ENV_MAC_LEN + (enc ? LM_ENV_AEAD_LEN : 0);
  if (len < LM_ENV_MAC_HDR_LEN + tail)
    return LM_TRUST_ETRUNCATED;
  size_t body_end = len - tail, mac_at = len - LM_ENV_MAC_LEN;
  uint32_t hint32 = get_be32(e + 3), lo = get_be32(e + 7);
  memset(msg, 0, sizeof *msg);
  const lm_pair_t *p = NULL, *cand;
  uint64_t counter = 0;
  unsigned tried = 0;
  for (unsigned i = 0; rx->pair_lookup &&
                       (cand = rx->pair_lookup(rx->pair_ud, hint32, i)) != NULL &&
                       i < 8;
       i++) {
    tried++;
    /* rebuilt from our clock; failing that, from the sender's last counter */
    const lm__replay_slot_t *sl =
        replay_find(rx->replay_dgram, lm_key_hint(cand->pk));
    uint64_t refs[2] = {rx->now_us ? rx->now_us : (sl ? sl->top : 0),
                        sl ? sl->top : 0};
    for (int k = 0; k < 2 && !p; k++) {
      if (k == 1 && (!sl || refs[1] == refs[0]))
        break;
      uint64_t ctr = ctr_expand(lo, refs[k]);
      uint8_t mac[LM_ENV_MAC_LEN];
      env_mac(mac, cand->rx, ctr, e, mac_at);
      if (sodium_memcmp(mac, e + mac_at, LM_ENV_MAC_LEN) == 0) {
        p = cand;
        counter = ctr;
      }
    }
    if (p)
      break;
  }
  if (!tried)
    return LM_TRUST_EUNKNOWN_SENDER;
  if (!p)
    return LM_TRUST_EBADSIG;
  memcpy(msg->sender_pk, p->pk, LM_PUBLICKEY_LEN);
  uint64_t hint = lm_key_hint(p->pk);
  rc = lm_replay_check(rx->replay_dgram, hint, counter);
  if (rc != 0)
    return rc;
  return env_take_body(msg, e, LM_ENV_MAC_HDR_LEN, body_end, c,
                       rx->replay_dgram, hint, counter, enc);
}

int lm_receiver_init(lm_receiver_t *rx, const lm_cluster_t *c,
                     const lm_trust_set_t *trust, lm_key_lookup_cb lookup,
                     void *lookup_ud) {
  if (!rx || !c)
    return LM_TRUST_EINVAL;
  memset(rx, 0, sizeof *rx);
  int rc = lm_replay_new(&rx->replay_dgram, 0);
  if (rc == 0)
    rc = lm_replay_new(&rx->replay_stream, 0);
  if (rc != 0) {
    lm_replay_free(rx->replay_dgram);
    memset(rx, 0, sizeof *rx);
    return rc;
  }
  rx->cluster = c;
  rx->trust = trust;
  rx->lookup = lookup;
  rx->lookup_ud = lookup_ud;
  return 0;
}

void lm_receiver_close(lm_receiver_t *rx) {
  if (!rx)
    return;
  lm_replay_free(rx->replay_dgram);
  lm_replay_free(rx->replay_stream);
  memset(rx, 0, sizeof *rx);
}

void lm_receiver_forget(lm_receiver_t *rx, uint64_t hint) {
  if (!rx)
    return;
  lm_replay_forget(rx->replay_dgram, hint);
  lm_replay_forget(rx->replay_stream, hint);
}

/* ---- envelope ----------------------------------------------------------- */

static int env_seal(uint8_t *out, size_t out_cap, size_t *out_len,
                    const uint8_t *payload, size_t len, lm_sender_t *s,
                    int stream, int with_cert) {
  if (!out || !out_len || !s || !s->cluster || (!payload && len > 0))
    return LM_TRUST_EINVAL;
  if (with_cert && s->cert_len == 0)
    return LM_TRUST_EINVAL;
  int enc = sender_encrypts(s);
  size_t certpart = with_cert ? 2 + s->cert_len : 0;
  size_t fixed = LM_ENV_HDR_LEN + certpart + (enc ? LM_ENV_AEAD_LEN : 0) +
                 LM_SIG_LEN;
  if (stream ? len > SWIM_STREAM_MAX : len > SWIM_MTU)
    return LM_TRUST_EOVERSIZE;
  size_t env_len = fixed + len;
  if (!stream && env_len > SWIM_MTU)
    return LM_TRUST_EOVERSIZE;
  size_t pre = stream ? LM_FRAME_PREFIX_LEN : 0;
  if (out_cap < pre + env_len)
    return LM_TRUST_ENOSPACE;
  if (s->counter == UINT64_MAX)
    return LM_TRUST_EEXHAUSTED;
  uint64_t counter = s->counter + 1;

  if (stream)
    put_be32(out, (uint32_t)env_len);
  uint8_t *e = out + pre;
  e[0] = (uint8_t)(LM_ENV_VERSION << 4 | (enc ? LM_ENV_F_ENC : 0) |
                   (stream ? LM_ENV_F_STREAM : 0) |
                   (with_cert ? LM_ENV_F_CERT : 0));
  memcpy(e + 1, s->cluster->tag, LM_ENV_TAG_LEN);
  memcpy(e + 5, s->kp.pk, LM_KEY_HINT_LEN);
  put_be64(e + 13, counter);
  size_t off = LM_ENV_HDR_LEN;
  if (with_cert) {
    put_be16(e + off, (uint16_t)s->cert_len);
    memcpy(e + off + 2, s->cert, s->cert_len);
    off += certpart;
  }
  off = env_put_body(e, off, payload, len, s, counter, enc);
  crypto_sign_detached(e + off, NULL, e, off, s->kp.sk);
  off += LM_SIG_LEN;
  s->counter = counter;
  *out_len = pre + off;
  return 0;
}

int lm_env_seal(uint8_t *out, size_t out_cap, size_t *out_len,
                const uint8_t *payload, size_t len, lm_sender_t *s) {
  return env_seal(out, out_cap, out_len, payload, len, s, 0, 0);
}

int lm_env_seal_frame(uint8_t *out, size_t out_cap, size_t *out_len,
                      const uint8_t *payload, size_t len, lm_sender_t *s,
                      int with_cert) {
  return env_seal(out, out_cap, out_len, payload, len, s, 1, with_cert != 0);
}

/* `e` is the envelope alone (no frame prefix). */
static int env_open(lm_env_msg_t *msg, uint8_t *e, size_t len,
                    lm_receiver_t *rx, int stream, uint64_t now_unix) {
  const lm_cluster_t *c = rx->cluster;
  if (len > (stream ? LM_FRAME_MAX - LM_FRAME_PREFIX_LEN : SWIM_MTU))
    return LM_TRUST_EOVERSIZE;
  if (len >= 1 && (e[0] & LM_ENV_F_MAC) && !stream) {
    if (len < LM_ENV_MAC_OVERHEAD)
      return LM_TRUST_ETRUNCATED;
    if (e[0] >> 4 != LM_ENV_VERSION)
      return LM_TRUST_EVERSION;
    return env_open_mac(msg, e, len, rx);
  }
  if (len < LM_ENV_OVERHEAD)
    return LM_TRUST_ETRUNCATED;
  if (e[0] >> 4 != LM_ENV_VERSION)
    return LM_TRUST_EVERSION;
  unsigned flags = e[0] & 0x0f;
  if (flags & ~(unsigned)(LM_ENV_F_ENC | LM_ENV_F_STREAM | LM_ENV_F_CERT))
    return LM_TRUST_EMALFORMED;
  if (!(flags & LM_ENV_F_STREAM) != !stream)
    return LM_TRUST_ECHANNEL;
  if ((flags & LM_ENV_F_CERT) && !stream)
    return LM_TRUST_EMALFORMED; /* a cert would not fit the MTU budget */
  if (memcmp(e + 1, c->tag, LM_ENV_TAG_LEN) != 0)
    return LM_TRUST_ECLUSTER;
  int enc = (flags & LM_ENV_F_ENC) != 0;
  int rc = env_policy(c, enc);
  if (rc != 0)
    return rc;

  /* Everything between the header and the trailer must be accounted for
   * before any of it is read. */
  size_t tail = LM_SIG_LEN + (enc ? LM_ENV_AEAD_LEN : 0);
  if (len < LM_ENV_HDR_LEN + tail)
    return LM_TRUST_ETRUNCATED;
  size_t body_end = len - tail; /* end of payload or ciphertext */
  size_t off = LM_ENV_HDR_LEN;
  uint64_t hint = get_be64(e + 5);
  memset(msg, 0, sizeof *msg);

  if (flags & LM_ENV_F_CERT) {
    if (body_end - off < 2)
      return LM_TRUST_ETRUNCATED;
    size_t clen = get_be16(e + off);
    if (clen < LM_CERT_MIN || clen > LM_CERT_MAX)
      return LM_TRUST_EMALFORMED;
    if (body_end - off - 2 < clen)
      return LM_TRUST_ETRUNCATED;
    rc = lm_cert_decode(&msg->cert, e + off + 2, clen);
    if (rc == LM_TRUST_ETRUNCATED || (rc > 0 && (size_t)rc != clen))
      return LM_TRUST_EMALFORMED; /* disagrees with its own length field */
    if (rc < 0)
      return rc;
    off += 2 + clen;
    if (!rx->trust)
      return LM_TRUST_ECERT_UNTRUSTED;
    rc = lm_cert_verify(rx->trust, &msg->cert, now_unix);
    if (rc != 0)
      return rc;
    if (memcmp(msg->cert.node_pk, e + 5, LM_KEY_HINT_LEN) != 0)
      return LM_TRUST_ECERT_MISMATCH;
    memcpy(msg->sender_pk, msg->cert.node_pk, LM_PUBLICKEY_LEN);
    msg->has_cert = 1;
  } else if (!rx->lookup || rx->lookup(rx->lookup_ud, hint, msg->sender_pk) != 0) {
    return LM_TRUST_EUNKNOWN_SENDER;
  }

  size_t sig_at = len - LM_SIG_LEN;
  if (crypto_sign_verify_detached(e + sig_at, e, sig_at, msg->sender_pk) != 0)
    return LM_TRUST_EBADSIG;

  uint64_t counter = get_be64(e + 13);
  lm_replay_t *win = stream ? rx->replay_stream : rx->replay_dgram;
  rc = lm_replay_check(win, hint, counter);
  if (rc != 0)
    return rc;

  return env_take_body(msg, e, off, body_end, c, win, hint, counter, enc);
}

int lm_env_open(lm_env_msg_t *msg, uint8_t *buf, size_t len,
                lm_receiver_t *rx) {
  if (!msg || !buf || !rx || !rx->cluster || !rx->replay_dgram)
    return LM_TRUST_EINVAL;
  return env_open(msg, buf, len, rx, 0, 0);
}

int lm_env_open_frame(lm_env_msg_t *msg, uint8_t *buf, size_t len,
                      lm_receiver_t *rx, uint64_t now_unix) {
  if (!msg || !buf || !rx || !rx->cluster || !rx->replay_stream)
    return LM_TRUST_EINVAL;
  if (len < LM_FRAME_PREFIX_LEN)
    return LM_TRUST_ETRUNCATED;
  size_t declared = get_be32(buf);
  if (declared > LM_FRAME_MAX - LM_FRAME_PREFIX_LEN)
    return LM_TRUST_EOVERSIZE;
  if (declared > len - LM_FRAME_PREFIX_LEN)
    return LM_TRUST_ETRUNCATED;
  if (declared < len - LM_FRAME_PREFIX_LEN)
    return LM_TRUST_EMALFORMED; /* bytes of the next frame glued on */
  return env_open(msg, buf + LM_FRAME_PREFIX_LEN, declared, rx, 1, now_unix);
}

int lm_frame_peek(size_t *frame_len, const uint8_t *buf, size_t len) {
  if (!frame_len || (!buf && len > 0))
    return LM_TRUST_EINVAL;
  if (len < LM_FRAME_PREFIX_LEN)
    return LM_TRUST_EAGAIN;
  size_t declared = get_be32(buf);
  if (declared > LM_FRAME_MAX - LM_FRAME_PREFIX_LEN)
    return LM_TRUST_EOVERSIZE;
  if (declared < LM_ENV_OVERHEAD)
    return LM_TRUST_ETRUNCATED;
  *frame_len = LM_FRAME_PREFIX_LEN + declared;
  return 0;
}
