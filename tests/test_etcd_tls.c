/*
 * test_etcd_tls.c: bridge/etcd against a real etcd with TLS (a CA, a
 * server certificate for IP 127.0.0.1 and a client certificate made with
 * the openssl CLI; etcd requires client certificates) and authentication
 * (root user added and auth enabled with etcdctl; simple tokens living 1 s
 * so that an idle token expires): put and range with CA, client
 * certificate, user and password; a wrong password (EAUTH); an expired
 * token (re-authenticated once, transparently); a CA that did not sign the
 * server (ETLS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "etcd.h"
#include "etcd_harness.h"
#include "etcd_test_util.h"

static etcdh_t E;
static uv_loop_t L;
static char P[8][300]; /* ca, server cert, server key, client cert, client key, other ca */

static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc)
    fprintf(stderr, "failed (%d): %s\n", rc, cmd);
  return rc;
}

static int make_certs(const char *d) {
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  if (sh("cd '%s' && openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 "
         "-subj /CN=lm-test-ca 2>/dev/null",
         d, ec) ||
      sh("cd '%s' && openssl req -x509 %s -keyout other.key -out other.crt "
         "-days 2 -subj /CN=lm-other-ca 2>/dev/null",
         d, ec) ||
      sh("cd '%s' && openssl req %s -keyout server.key -out server.csr "
         "-subj /CN=etcd 2>/dev/null && printf "
         "'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
         "clientAuth\\n' > server.ext && openssl x509 -req -in server.csr "
         "-CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 "
         "-extfile server.ext 2>/dev/null",
         d, ec) ||
      sh("cd '%s' && openssl req %s -keyout client.key -out client.csr "
         "-subj /CN=lm-client 2>/dev/null && printf "
         "'extendedKeyUsage=clientAuth\\n' > client.ext && openssl x509 -req "
         "-in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out "
         "client.crt -days 2 -extfile client.ext 2>/dev/null",
         d, ec))
    return -1;
  const char *names[6] = {"ca.crt",     "server.crt", "server.key",
                          "client.crt", "client.key", "other.crt"};
  for (int i = 0; i < 6; i++)
    snprintf(P[i], sizeof P[i], "%s/%s", d, names[i]);
  return 0;
}

static int group_setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  memset(&E, 0, sizeof E);
  if (uv_loop_init(&L))
    return -1;
  snprintf(E.dir, sizeof E.dir, "/tmp/lm-etcd-tls-XXXXXX");
  if (!mkdtemp(E.dir) || make_certs(E.dir))
    return -1;
  E.tls = 1;
  E.t.ca = P[0];
  E.t.cert = P[1];
  E.t.key = P[2];
  E.t.client_cert = P[3];
  E.t.client_key = P[4];
  E.extra[0] = "--auth-token=simple";
  E.extra[1] = "--auth-token-ttl=1";
  if (etcdh_start(&E)) {
    fprintf(stderr, "cannot start etcd (log in %s)\n", E.dir);
    return -1;
  }
  const char *add[] = {"user", "add", "root", "--new-user-password=rootpw",
                       "--interactive=false", NULL};
  const char *en[] = {"auth", "enable", NULL};
  if (etcdh_ctl(&E, add) || etcdh_ctl(&E, en)) {
    fprintf(stderr, "etcdctl failed (log in %s)\n", E.dir);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  etcdh_destroy(&E);
  uv_run(&L, UV_RUN_NOWAIT);
  return uv_loop_close(&L) ? -1 : 0;
}

static lm_etcd_t *client(const char *ca, const char *password) {
  const char *eps[1] = {E.url};
  lm_etcd_options_t o;
  memset(&o, 0, sizeof o);
  o.endpoints = eps;
  o.nendpoints = 1;
  o.ca_file = ca;
  o.cert_file = P[3];
  o.key_file = P[4];
  o.user = "root";
  o.password = password;
  o.request_timeout_ms = 5000;
  o.log = test_log;
  lm_etcd_t *c = NULL;
  char err[256];
  int e = lm_etcd_new(&c, &L, &o, err, sizeof err);
  if (e)
    fprintf(stderr, "lm_etcd_new: %s\n", err);
  assert_int_equal(e, 0);
  return c;
}

static void client_close(lm_etcd_t *c) {
  int done = 0;
  lm_etcd_close(c, close_done, &done);
  assert_true(etcdh_run_until(&L, &done, 5000));
}

static got_t get(lm_etcd_t *c, const char *k) {
  got_t g = {0};
  assert_int_equal(lm_etcd_range(c, K(k), NULL, 0, 0, 0, range_cb, &g), 0);
  assert_true(etcdh_run_until(&L, &g.called, 15000));
  return g;
}

static void test_tls_auth_put_range(void **state) {
  (void)state;
  lm_etcd_t *c = client(P[0], "rootpw");
  lm_etcd_op_t op = {LM_ETCD_OP_PUT, K("tls/k"), NULL, 0, K("secret"), 0};
  got_t g = {0};
  assert_int_equal(lm_etcd_txn(c, NULL, 0, &op, 1, NULL, 0, txn_cb, &g), 0);
  assert_true(etcdh_run_until(&L, &g.called, 15000));
  if (g.err)
    fprintf(stderr, "txn: %s %s\n", lm_etcd_err_name(g.err), g.message);
  assert_int_equal(g.err, 0);
  assert_int_equal(lm_etcd_connected(c), 1);
  got_t r = get(c, "tls/k");
  assert_int_equal(r.err, 0);
  assert_int_equal(r.nkvs, 1);
  assert_string_equal(r.values[0], "secret");

  /* the simple token lives 1 s without use: the next call finds it
   * invalid, the client authenticates again and sends the call again */
  etcdh_sleep_ms(2500);
  lm_etcd_stats_t st0;
  lm_etcd_stats(c, &st0);
  r = get(c, "tls/k");
  if (r.err)
    fprintf(stderr, "after expiry: %s %s\n", lm_etcd_err_name(r.err),
            r.message);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.nkvs, 1);
  lm_etcd_stats_t st;
  lm_etcd_stats(c, &st);
  assert_int_equal(st.reauths, st0.reauths + 1);
  client_close(c);
}

static void test_wrong_password(void **state) {
  (void)state;
  lm_etcd_t *c = client(P[0], "wrong");
  got_t r = get(c, "tls/k");
  assert_int_equal(r.err, LM_ETCD_EAUTH);
  assert_int_equal(lm_etcd_connected(c), 0);
  client_close(c);
}

static void test_wrong_ca(void **state) {
  (void)state;
  lm_etcd_t *c = client(P[5], "rootpw");
  got_t r = get(c, "tls/k");
  assert_int_equal(r.err, LM_ETCD_ETLS);
  assert_non_null(strstr(r.message, "certificate"));
  client_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tls_auth_put_range),
      cmocka_unit_test(test_wrong_password),
      cmocka_unit_test(test_wrong_ca),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
