/* Every hsmkit C function and its error paths, on the store given as argv[1]
 * (memory:, a keystore path with HSMKIT_TEST_PASSPHRASE, or a pkcs11: URI).
 * Run by tests/c/run.sh under valgrind. Exit 0 when every check passed. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hsmkit.h"

static int checks = 0;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        checks++;                                                                        \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            print_last_error();                                                          \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* A call that must return exactly `want`. */
#define EXPECT(want, call)                                                               \
    do {                                                                                 \
        hsmkit_result r_ = (call);                                                       \
        checks++;                                                                        \
        if (r_ != (want)) {                                                              \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__,  \
                    #call, hsmkit_result_name(r_), hsmkit_result_name(want));           \
            print_last_error();                                                          \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define OK(call) EXPECT(HSMKIT_OK, call)

static void print_last_error(void) {
    char msg[512];
    size_t n = 0;
    if (hsmkit_last_error((uint8_t *)msg, sizeof msg, &n) == HSMKIT_OK)
        fprintf(stderr, "  last error: %s\n", msg);
}

static int is_pkcs11 = 0;
static const char *dir = NULL;

/* The last error message, into a static buffer (two-call). */
static const char *last_error(void) {
    static char msg[1024];
    size_t need = 0, n = 0;
    OK(hsmkit_last_error(NULL, 0, &need));
    CHECK(need >= 1 && need <= sizeof msg);
    OK(hsmkit_last_error((uint8_t *)msg, sizeof msg, &n));
    CHECK(n == need && msg[n - 1] == '\0');
    return msg;
}

static void test_basics(void) {
    CHECK(strcmp(hsmkit_version(), "0.1.0") == 0);
    CHECK(strcmp(hsmkit_result_name(HSMKIT_OK), "HSMKIT_OK") == 0);
    CHECK(strcmp(hsmkit_result_name(HSMKIT_ERR_DECRYPTION_FAILED), "HSMKIT_ERR_DECRYPTION_FAILED") == 0);
    CHECK(strcmp(hsmkit_result_name(HSMKIT_ERR_OTHER), "HSMKIT_ERR_OTHER") == 0);
    /* Any number is allowed and gives a static string: a number that is no result code
       is "unknown" (it was undefined behaviour while the parameter was a Rust enum). */
    for (uint32_t c = 0; c <= 15; c++) CHECK(strncmp(hsmkit_result_name(c), "HSMKIT_", 7) == 0);
    CHECK(strcmp(hsmkit_result_name(16), "unknown") == 0);
    CHECK(strcmp(hsmkit_result_name(17), "unknown") == 0);
    CHECK(strcmp(hsmkit_result_name(255), "unknown") == 0);
    CHECK(strcmp(hsmkit_result_name(0x80000000u), "unknown") == 0);
    CHECK(strcmp(hsmkit_result_name(0xFFFFFFFFu), "unknown") == 0);
    CHECK(strcmp(hsmkit_result_name((uint32_t)-1), "unknown") == 0);
    CHECK(hsmkit_result_name(16) == hsmkit_result_name(0xFFFFFFFFu)); /* static */
    /* stable numbers */
    CHECK(HSMKIT_ERR_NULL_ARGUMENT == 1 && HSMKIT_ERR_BUFFER_TOO_SMALL == 2 && HSMKIT_ERR_NOT_FOUND == 4 &&
          HSMKIT_ERR_DECRYPTION_FAILED == 8 && HSMKIT_ERR_PANIC == 14);
    size_t n = 99;
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_last_error(NULL, 0, NULL));
    OK(hsmkit_last_error(NULL, 0, &n));
    CHECK(n >= 1);
    /* _free(NULL) is a no-op for every type */
    hsmkit_open_options_free(NULL);
    hsmkit_store_free(NULL);
    hsmkit_key_free(NULL);
    hsmkit_sealer_free(NULL);
    hsmkit_secret_free(NULL);
    hsmkit_cert_free(NULL);
    hsmkit_csr_free(NULL);
}

static hsmkit_store *open_store(const char *uri) {
    hsmkit_open_options *opts = NULL;
    hsmkit_store *store = NULL;
    const char *pass = getenv("HSMKIT_TEST_PASSPHRASE");
    if (pass && !*pass) pass = NULL;

    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_open_options_new(NULL));
    OK(hsmkit_open_options_new(&opts));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_open_options_set_passphrase(NULL, "x"));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_open_options_set_passphrase(opts, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_open_options_set_pin(opts, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_open_options_set_key_file(opts, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_open_options_set_audit_log(opts, NULL));

    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_open(NULL, NULL, &store));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_open("memory:", NULL, NULL));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_open("pkcs:token=x", NULL, &store));
    CHECK(strstr(last_error(), "scheme") != NULL);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_open("\xff\xfe", NULL, &store));
    CHECK(store == NULL);

    if (pass) {
        /* a keystore: no secret, then a wrong one, are authentication errors */
        EXPECT(HSMKIT_ERR_AUTHENTICATION, hsmkit_store_open(uri, NULL, &store));
        OK(hsmkit_open_options_set_passphrase(opts, pass));
        char audit[4096];
        snprintf(audit, sizeof audit, "%s/audit.jsonl", dir);
        OK(hsmkit_open_options_set_audit_log(opts, audit));
    }
    if (strncmp(uri, "pkcs11:", 7) == 0) {
        is_pkcs11 = 1;
        OK(hsmkit_open_options_set_pin(opts, "0000"));
        EXPECT(HSMKIT_ERR_AUTHENTICATION, hsmkit_store_open(uri, opts, &store));
        OK(hsmkit_open_options_set_pin(opts, "1234"));
    }
    OK(hsmkit_store_open(uri, opts, &store));
    CHECK(store != NULL);
    hsmkit_open_options_free(opts);

    if (pass) {
        /* reopen with a wrong passphrase */
        hsmkit_open_options *bad = NULL;
        hsmkit_store *s2 = NULL;
        OK(hsmkit_open_options_new(&bad));
        OK(hsmkit_open_options_set_passphrase(bad, "wrong"));
        EXPECT(HSMKIT_ERR_AUTHENTICATION, hsmkit_store_open(uri, bad, &s2));
        CHECK(s2 == NULL);
        hsmkit_open_options_free(bad);
    }

    if (pass) {
        /* a second keystore, unlocked by a key file (64 hex digits) */
        char kf[4096], uri2[4096];
        snprintf(kf, sizeof kf, "%s/store.key", dir);
        snprintf(uri2, sizeof uri2, "file://%s/store-kf", dir);
        FILE *f = fopen(kf, "w");
        CHECK(f && fputs("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", f) >= 0);
        fclose(f);
        for (int round = 0; round < 2; round++) {
            hsmkit_open_options *o = NULL;
            hsmkit_store *s2 = NULL;
            hsmkit_key *k = NULL;
            OK(hsmkit_open_options_new(&o));
            OK(hsmkit_open_options_set_key_file(o, kf));
            OK(hsmkit_store_open(uri2, o, &s2));
            if (round == 0)
                OK(hsmkit_store_create_key(s2, "kf", "AES-128", NULL, 0, &k));
            else
                OK(hsmkit_store_get_key(s2, "kf", 0, &k)); /* reopened: the key is there */
            hsmkit_key_free(k);
            hsmkit_store_free(s2);
            hsmkit_open_options_free(o);
        }
    }

    char kind[16];
    size_t n = 0;
    OK(hsmkit_store_backend_kind(store, NULL, 0, &n));
    CHECK(n == (is_pkcs11 ? 7u : 5u));
    OK(hsmkit_store_backend_kind(store, (uint8_t *)kind, sizeof kind, &n));
    CHECK(strcmp(kind, is_pkcs11 ? "pkcs11" : "soft") == 0);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_backend_kind(NULL, (uint8_t *)kind, sizeof kind, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_backend_kind(store, (uint8_t *)kind, sizeof kind, NULL));
    return store;
}

/* capabilities: two-call JSON; the engine and metadata fit the store */
static void test_capabilities(hsmkit_store *s, const char *uri) {
    size_t need = 0, w = 0;
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_capabilities(NULL, NULL, 0, &need));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_capabilities(s, NULL, 0, NULL));
    CHECK(strstr(last_error(), "written") != NULL);
    OK(hsmkit_store_capabilities(s, NULL, 0, &need));
    CHECK(need > 100);
    /* one byte short: the documented code, the length needed, the buffer untouched */
    char *small = malloc(need - 1);
    CHECK(small != NULL);
    memset(small, 'Z', need - 1);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_capabilities(s, (uint8_t *)small, need - 1, &w));
    CHECK(w == need);
    for (size_t i = 0; i < need - 1; i++) CHECK(small[i] == 'Z');
    CHECK(strstr(last_error(), "bytes") != NULL);
    free(small);
    char *json = malloc(need);
    CHECK(json != NULL);
    OK(hsmkit_store_capabilities(s, (uint8_t *)json, need, &w));
    CHECK(w == need && json[need - 1] == '\0' && strlen(json) == need - 1);
    CHECK(json[0] == '{' && json[need - 2] == '}');
    CHECK(strstr(json, "\"engine\":") != NULL);
    if (is_pkcs11) {
        CHECK(strstr(json, "\"engine\":\"pkcs11\"") && strstr(json, "\"metadata\":\"token\""));
        CHECK(strstr(json, "\"export\":false") != NULL);
    } else {
        CHECK(strstr(json, "\"engine\":\"aws-lc\"") && strstr(json, "\"export\":true"));
        int memory = strncmp(uri, "memory:", 7) == 0;
        CHECK(strstr(json, memory ? "\"metadata\":\"memory\"" : "\"metadata\":\"keystore\"") != NULL);
        CHECK(strstr(json, "\"decrypt\":[\"RSA-OAEP\",\"RSA-OAEP-256\"]") != NULL);
        CHECK(strstr(json, "\"notes\":[]") != NULL);
    }
    CHECK(strstr(json, "\"sign\":[") && strstr(json, "\"ES256\"") && strstr(json, "\"generate\":["));
    free(json);
}

static hsmkit_key *create(hsmkit_store *s, const char *name, const char *spec, const char *ops) {
    hsmkit_key *k = NULL;
    OK(hsmkit_store_create_key(s, name, spec, ops, 0, &k));
    CHECK(k != NULL);
    return k;
}

static void test_keys(hsmkit_store *s) {
    hsmkit_key *k = NULL;
    /* A store with an audit log holds its audit key ("hsmkit-audit\n") already. */
    size_t base = 0;
    OK(hsmkit_store_list_keys(s, NULL, 0, &base));
    CHECK(base == 1 || base == 1 + strlen("hsmkit-audit\n"));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_create_key(NULL, "k", "P-256", NULL, 0, &k));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_create_key(s, NULL, "P-256", NULL, 0, &k));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_create_key(s, "k", NULL, NULL, 0, &k));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_create_key(s, "k", "P-256", NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_key(s, "k", "P-999", NULL, 0, &k));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_key(s, "k", "RSA-1024", NULL, 0, &k));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_key(s, "k", "P-256", "fly", 0, &k));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_key(s, "k", "P-256", NULL, 0x80, &k));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_key(s, "k", "P-256", NULL, 0x80000000u, &k));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_key(s, "k", "P-256", NULL, 0xFFFFFFFFu, &k));
    CHECK(strstr(last_error(), "flags") != NULL);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_key(s, "bad name!", "P-256", NULL, 0, &k));
    CHECK(strcmp(hsmkit_last_error_reason(), "name") == 0);
    CHECK(k == NULL);
    /* nothing was created by the failures */
    size_t n = 0;
    OK(hsmkit_store_list_keys(s, NULL, 0, &n));
    CHECK(n == base);

    const char *specs[] = {"P-256", "EC-P-384", "P-521", "RSA-2048", "AES-128", "AES-192", "AES-256"};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        char name[32];
        snprintf(name, sizeof name, "spec%zu", i);
        hsmkit_key *key = create(s, name, specs[i], NULL);
        uint32_t v = 0;
        OK(hsmkit_key_version(key, &v));
        CHECK(v == 1);
        hsmkit_key_free(key);
    }
    EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_create_key(s, "spec0", "P-256", NULL, 0, &k));

    /* list: two-call, too small leaves the buffer alone */
    OK(hsmkit_store_list_keys(s, NULL, 0, &n));
    CHECK(n == 7 * 6 + base);
    char small[8];
    memset(small, 'Z', sizeof small);
    size_t w = 0;
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_list_keys(s, (uint8_t *)small, sizeof small, &w));
    CHECK(w == n);
    for (size_t i = 0; i < sizeof small; i++) CHECK(small[i] == 'Z');
    char *names = malloc(n);
    OK(hsmkit_store_list_keys(s, (uint8_t *)names, n, &w));
    CHECK(w == n && strstr(names, "spec0\nspec1\n") != NULL && names[n - 1] == '\0');
    free(names);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_keys(s, NULL, 0, NULL));

    /* get: current, a version, missing */
    OK(hsmkit_store_get_key(s, "spec0", 0, &k));
    char name[16];
    OK(hsmkit_key_name(k, NULL, 0, &n));
    CHECK(n == 6);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_key_name(k, (uint8_t *)name, 3, &n));
    OK(hsmkit_key_name(k, (uint8_t *)name, sizeof name, &n));
    CHECK(strcmp(name, "spec0") == 0);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_name(NULL, (uint8_t *)name, sizeof name, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_version(k, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_version(NULL, &(uint32_t){0}));
    char info[2048];
    OK(hsmkit_key_info(k, (uint8_t *)info, sizeof info, &n));
    CHECK(strstr(info, "\"kid\":\"spec0/1\"") && strstr(info, "\"spec\":\"EC-P-256\""));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_info(NULL, (uint8_t *)info, sizeof info, &n));
    hsmkit_key_free(k);
    k = NULL;
    OK(hsmkit_store_get_key(s, "spec0", 1, &k));
    hsmkit_key_free(k);
    k = NULL;
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_key(s, "spec0", 9, &k));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_key(s, "nope", 0, &k));
    CHECK(strstr(last_error(), "nope") != NULL);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_get_key(s, "spec0", 0, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_get_key(NULL, "spec0", 0, &k));
    CHECK(k == NULL);

    /* describe */
    char desc[4096];
    OK(hsmkit_store_describe_key(s, "spec3", (uint8_t *)desc, sizeof desc, &n));
    CHECK(strstr(desc, "\"current_version\":1") && strstr(desc, "RSA-2048"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_key(s, "nope", (uint8_t *)desc, sizeof desc, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_describe_key(s, NULL, (uint8_t *)desc, sizeof desc, &n));
}

/* sign, check the sizing bound, verify, and a flipped bit fails */
static void sign_verify(hsmkit_key *k, const char *alg, uint32_t flags, const uint8_t *data, size_t len) {
    uint8_t sig[1024];
    size_t bound = 0, n = 0;
    OK(hsmkit_key_sign(k, alg, flags, data, len, NULL, 0, &bound));
    OK(hsmkit_key_sign(k, alg, flags, data, len, sig, sizeof sig, &n));
    CHECK(n > 0 && n <= bound);
    if (flags & HSMKIT_SIGN_DER) CHECK(sig[0] == 0x30);
    OK(hsmkit_key_verify(k, alg, flags, data, len, sig, n));
    sig[n / 2] ^= 1;
    EXPECT(HSMKIT_ERR_VERIFICATION_FAILED, hsmkit_key_verify(k, alg, flags, data, len, sig, n));
}

static void test_sign(hsmkit_store *s) {
    const uint8_t msg[] = "message";
    /* SHA-256("message") */
    const uint8_t digest[32] = {0xab, 0x53, 0x0a, 0x13, 0xe4, 0x59, 0x14, 0x98, 0x2b, 0x79, 0xf9,
                                0xb7, 0xe3, 0xfb, 0xa9, 0x94, 0xcf, 0xd1, 0xf3, 0xfb, 0x22, 0xf7,
                                0x1c, 0xea, 0x1a, 0xfb, 0xf0, 0x2b, 0x46, 0x0c, 0x6d, 0x1d};
    hsmkit_key *ec = create(s, "ec", "P-256", NULL);
    sign_verify(ec, "ES256", 0, msg, 7);
    sign_verify(ec, "ES256", HSMKIT_SIGN_DER, msg, 7);
    sign_verify(ec, "ES256", HSMKIT_SIGN_PREHASHED, digest, 32);
    sign_verify(ec, "ES256", 0, NULL, 0); /* empty message */
    uint8_t sig[600];
    size_t n = 0;
    /* a signature of the message verifies against its digest */
    OK(hsmkit_key_sign(ec, "ES256", 0, msg, 7, sig, sizeof sig, &n));
    CHECK(n == 64);
    OK(hsmkit_key_verify(ec, "ES256", HSMKIT_SIGN_PREHASHED, digest, 32, sig, n));
    EXPECT(HSMKIT_ERR_VERIFICATION_FAILED, hsmkit_key_verify(ec, "ES256", 0, msg, 6, sig, n));
    EXPECT(HSMKIT_ERR_VERIFICATION_FAILED, hsmkit_key_verify(ec, "ES256", 0, msg, 7, sig, 10));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(ec, "RS256", 0, msg, 7, sig, sizeof sig, &n));
    CHECK(strcmp(hsmkit_last_error_reason(), "key-mismatch") == 0);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(ec, "HS256", 0, msg, 7, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(ec, "ES256", 0x10, msg, 7, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(ec, "ES256", 0xFFFFFFFFu, msg, 7, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(ec, "ES256", 0xFFFFFFFFu, msg, 7, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_verify(ec, "ES256", 0x80000000u, msg, 7, sig, 64));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_verify(ec, "ES256", 0xFFFFFFFFu, msg, 7, sig, 64));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(ec, "ES256", HSMKIT_SIGN_PREHASHED, msg, 7, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_sign(ec, "ES256", 0, NULL, 7, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_sign(ec, NULL, 0, msg, 7, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_sign(NULL, "ES256", 0, msg, 7, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_sign(ec, "ES256", 0, msg, 7, sig, sizeof sig, NULL));
    memset(sig, 'Z', sizeof sig);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_key_sign(ec, "ES256", 0, msg, 7, sig, 63, &n));
    CHECK(n == 64 && sig[0] == 'Z' && sig[62] == 'Z');
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_verify(ec, "ES256", 0, msg, 7, NULL, 64));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_verify(NULL, "ES256", 0, msg, 7, sig, 64));
    hsmkit_key_free(ec);

    hsmkit_key *rsa = create(s, "rsa", "RSA-2048", NULL);
    const char *algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
    for (size_t i = 0; i < 6; i++) sign_verify(rsa, algs[i], 0, msg, 7);
    sign_verify(rsa, "PS256", HSMKIT_SIGN_PREHASHED, digest, 32);
    OK(hsmkit_key_sign(rsa, "RS256", 0, msg, 7, NULL, 0, &n));
    CHECK(n == 256);
    hsmkit_key_free(rsa);

    /* RSA signatures have one encoding: DER asks for the same bytes. */
    uint8_t der[512];
    size_t dn = 0;
    rsa = NULL;
    OK(hsmkit_store_get_key(s, "rsa", 0, &rsa));
    OK(hsmkit_key_sign(rsa, "RS256", 0, msg, 7, sig, sizeof sig, &n));
    OK(hsmkit_key_sign(rsa, "RS256", HSMKIT_SIGN_DER, msg, 7, der, sizeof der, &dn));
    CHECK(n == dn && memcmp(sig, der, n) == 0);
    hsmkit_key_free(rsa);

    /* Ed25519: pure EdDSA over the message; 64 bytes; deterministic; no digest. */
    hsmkit_key *ed = create(s, "ed", "Ed25519", NULL);
    sign_verify(ed, "EdDSA", 0, msg, 7);
    sign_verify(ed, "EdDSA", 0, NULL, 0);
    OK(hsmkit_key_sign(ed, "EdDSA", 0, msg, 7, NULL, 0, &n));
    CHECK(n == 64);
    OK(hsmkit_key_sign(ed, "EdDSA", 0, msg, 7, sig, sizeof sig, &n));
    OK(hsmkit_key_sign(ed, "EdDSA", 0, msg, 7, der, sizeof der, &dn));
    CHECK(n == 64 && dn == 64 && memcmp(sig, der, 64) == 0);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(ed, "EdDSA", HSMKIT_SIGN_PREHASHED, digest, 32, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(ed, "ES256", 0, msg, 7, sig, sizeof sig, &n));
    hsmkit_key_free(ed);

    /* secp256k1 (the key vaults' P-256K): ES256K, raw and DER. */
    hsmkit_key *k1 = create(s, "k1", "P-256K", NULL);
    sign_verify(k1, "ES256K", 0, msg, 7);
    sign_verify(k1, "ES256K", HSMKIT_SIGN_DER, msg, 7);
    sign_verify(k1, "ES256K", HSMKIT_SIGN_PREHASHED, digest, 32);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(k1, "ES256", 0, msg, 7, sig, sizeof sig, &n));
    hsmkit_key_free(k1);

    /* HMAC: HS256/384/512 with a 512-bit key; the tag is the hash's length. */
    hsmkit_key *mac = create(s, "mac", "HMAC-512", NULL);
    const char *macs[] = {"HS256", "HS384", "HS512"};
    const size_t tag_len[] = {32, 48, 64};
    for (size_t i = 0; i < 3; i++) {
        sign_verify(mac, macs[i], 0, msg, 7);
        OK(hsmkit_key_sign(mac, macs[i], 0, msg, 7, NULL, 0, &n));
        CHECK(n == tag_len[i]);
    }
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_sign(mac, "HS256", HSMKIT_SIGN_PREHASHED, digest, 32, sig, sizeof sig, &n));
    hsmkit_key_free(mac);
    /* HMAC keys never leave the backend. */
    hsmkit_key *bad = NULL;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_key(s, "mac-exp", "HMAC-256", NULL, HSMKIT_KEY_EXPORTABLE, &bad));
    CHECK(bad == NULL);

    hsmkit_key *aes = create(s, "aes-sign", "AES-256", NULL);
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_key_sign(aes, "ES256", 0, msg, 7, NULL, 0, &n));
    hsmkit_key_free(aes);
}

static void test_encrypt(hsmkit_store *s) {
    hsmkit_key *k = create(s, "oaep", "RSA-2048", "encrypt,decrypt");
    const uint8_t secret[] = "secret";
    const uint8_t label[] = "label";
    uint8_t ct[512], pt[512];
    size_t n = 0, m = 0, bound = 0;
    const char *algs[] = {"RSA-OAEP", "RSA-OAEP-256"};
    for (int i = 0; i < 2; i++) {
        OK(hsmkit_key_encrypt(k, algs[i], NULL, 0, secret, 6, NULL, 0, &bound));
        CHECK(bound == 256);
        OK(hsmkit_key_encrypt(k, algs[i], NULL, 0, secret, 6, ct, sizeof ct, &n));
        CHECK(n == 256);
        if (is_pkcs11 && i == 1) {
            /* SoftHSM2 2.6 has no OAEP with SHA-256: a typed Unsupported */
            EXPECT(HSMKIT_ERR_UNSUPPORTED, hsmkit_key_decrypt(k, algs[i], NULL, 0, ct, n, pt, sizeof pt, &m));
            continue;
        }
        OK(hsmkit_key_decrypt(k, algs[i], NULL, 0, ct, n, NULL, 0, &bound));
        CHECK(bound >= 6);
        OK(hsmkit_key_decrypt(k, algs[i], NULL, 0, ct, n, pt, sizeof pt, &m));
        CHECK(m == 6 && memcmp(pt, secret, 6) == 0);
        ct[5] ^= 1;
        EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_key_decrypt(k, algs[i], NULL, 0, ct, n, pt, sizeof pt, &m));
        EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_key_decrypt(k, algs[i], NULL, 0, ct, 17, pt, sizeof pt, &m));
        EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_key_decrypt(k, algs[i], NULL, 0, NULL, 0, pt, sizeof pt, &m));
        /* the message says nothing more */
        CHECK(strcmp(last_error(), "decryption failed") == 0);
    }
    OK(hsmkit_key_encrypt(k, "RSA-OAEP", label, 5, secret, 6, ct, sizeof ct, &n));
    if (is_pkcs11) {
        EXPECT(HSMKIT_ERR_UNSUPPORTED, hsmkit_key_decrypt(k, "RSA-OAEP", label, 5, ct, n, pt, sizeof pt, &m));
    } else {
        OK(hsmkit_key_decrypt(k, "RSA-OAEP", label, 5, ct, n, pt, sizeof pt, &m));
        CHECK(m == 6);
        EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_key_decrypt(k, "RSA-OAEP", NULL, 0, ct, n, pt, sizeof pt, &m));
        /* too small a buffer: nothing written, no secret leaked into it */
        memset(pt, 'Z', sizeof pt);
        EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_key_decrypt(k, "RSA-OAEP", label, 5, ct, n, pt, 3, &m));
        CHECK(m == 6 && pt[0] == 'Z' && pt[1] == 'Z' && pt[2] == 'Z');
    }
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_encrypt(k, "RSA-OAEP", NULL, 5, secret, 6, ct, sizeof ct, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_encrypt(k, "A256KW", NULL, 0, secret, 6, ct, sizeof ct, &n));
    uint8_t big[300] = {0};
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_encrypt(k, "RSA-OAEP", NULL, 0, big, sizeof big, ct, sizeof ct, &n));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_key_sign(k, "RS256", 0, secret, 6, ct, sizeof ct, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_decrypt(NULL, "RSA-OAEP", NULL, 0, ct, n, pt, sizeof pt, &m));
    hsmkit_key_free(k);
}

static void test_wrap(hsmkit_store *s) {
    const char *specs[] = {"AES-128", "AES-192", "AES-256"};
    const char *kw[] = {"A128KW", "A192KW", "A256KW"};
    const char *kwp[] = {"A128KWP", "A192KWP", "A256KWP"};
    uint8_t dek[32], w[600], out[600];
    for (int i = 0; i < 32; i++) dek[i] = (uint8_t)i;
    size_t n = 0, m = 0, bound = 0;
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "kek%d", i);
        hsmkit_key *k = create(s, name, specs[i], NULL);
        OK(hsmkit_key_wrap(k, kw[i], dek, 32, NULL, 0, &bound));
        OK(hsmkit_key_wrap(k, kw[i], dek, 32, w, sizeof w, &n));
        CHECK(n == 40 && bound == 40);
        OK(hsmkit_key_unwrap(k, kw[i], w, n, NULL, 0, &bound));
        CHECK(bound >= 32);
        OK(hsmkit_key_unwrap(k, kw[i], w, n, out, sizeof out, &m));
        CHECK(m == 32 && memcmp(out, dek, 32) == 0);
        w[0] ^= 1;
        EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_key_unwrap(k, kw[i], w, n, out, sizeof out, &m));
        EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_key_unwrap(k, kw[i], w, 7, out, sizeof out, &m));
        if (is_pkcs11) {
            EXPECT(HSMKIT_ERR_UNSUPPORTED, hsmkit_key_wrap(k, kwp[i], dek, 17, w, sizeof w, &n));
        } else {
            OK(hsmkit_key_wrap(k, kwp[i], dek, 17, NULL, 0, &bound));
            OK(hsmkit_key_wrap(k, kwp[i], dek, 17, w, sizeof w, &n));
            CHECK(n == 32 && bound == 32);
            OK(hsmkit_key_unwrap(k, kwp[i], w, n, out, sizeof out, &m));
            CHECK(m == 17 && memcmp(out, dek, 17) == 0);
        }
        EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_wrap(k, "A999KW", dek, 32, w, sizeof w, &n));
        EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_unwrap(k, kw[i], NULL, 40, out, sizeof out, &m));
        EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_wrap(NULL, kw[i], dek, 32, w, sizeof w, &n));
        hsmkit_key_free(k);
    }
    hsmkit_key *r = create(s, "rsa-kek", "RSA-2048", "wrapKey,unwrapKey");
    OK(hsmkit_key_wrap(r, "RSA-OAEP", dek, 32, NULL, 0, &bound));
    OK(hsmkit_key_wrap(r, "RSA-OAEP", dek, 32, w, sizeof w, &n));
    CHECK(n == 256 && bound == 256);
    OK(hsmkit_key_unwrap(r, "RSA-OAEP", w, n, out, sizeof out, &m));
    CHECK(m == 32 && memcmp(out, dek, 32) == 0);
    hsmkit_key_free(r);
}

static void test_public_and_import(hsmkit_store *s) {
    hsmkit_key *k = create(s, "pub-src", "P-384", NULL);
    uint8_t der[512];
    char pem[1024], jwk[1024];
    size_t n = 0, d = 0;
    OK(hsmkit_key_public_key(k, HSMKIT_PUBLIC_DER, der, sizeof der, &d));
    CHECK(der[0] == 0x30 && d == 120);
    OK(hsmkit_key_public_key(k, HSMKIT_PUBLIC_PEM, NULL, 0, &n));
    OK(hsmkit_key_public_key(k, HSMKIT_PUBLIC_PEM, (uint8_t *)pem, sizeof pem, &n));
    CHECK(strncmp(pem, "-----BEGIN PUBLIC KEY-----", 26) == 0 && pem[n - 1] == '\0');
    OK(hsmkit_key_public_key(k, HSMKIT_PUBLIC_JWK, (uint8_t *)jwk, sizeof jwk, &n));
    CHECK(strstr(jwk, "\"crv\":\"P-384\"") && strstr(jwk, "\"kid\":\"pub-src/1\""));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_public_key(k, 7, (uint8_t *)jwk, sizeof jwk, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_public_key(k, 3, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_public_key(k, 0xFFFFFFFFu, (uint8_t *)jwk, sizeof jwk, &n));
    CHECK(strstr(last_error(), "format") != NULL);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_key_public_key(k, HSMKIT_PUBLIC_DER, der, 10, &n));
    CHECK(n == d);

    /* the public key imports (PEM, then DER) and verifies the source key's signatures */
    uint8_t sig[200];
    size_t sn = 0;
    OK(hsmkit_key_sign(k, "ES384", 0, (const uint8_t *)"m", 1, sig, sizeof sig, &sn));
    hsmkit_key *p = NULL;
    OK(hsmkit_store_import_key(s, "pub-pem", (const uint8_t *)pem, strlen(pem), "verify", 0, &p));
    OK(hsmkit_key_verify(p, "ES384", 0, (const uint8_t *)"m", 1, sig, sn));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_key_sign(p, "ES384", 0, (const uint8_t *)"m", 1, sig, sizeof sig, &sn));
    hsmkit_key_free(p);
    p = NULL;
    OK(hsmkit_store_import_key(s, "pub-der", der, d, NULL, 0, &p));
    OK(hsmkit_key_verify(p, "ES384", 0, (const uint8_t *)"m", 1, sig, sn));
    hsmkit_key_free(p);
    p = NULL;
    const char *aes_jwk = "{\"kty\":\"oct\",\"k\":\"AAECAwQFBgcICQoLDA0ODw\"}";
    OK(hsmkit_store_import_key(s, "aes-jwk", (const uint8_t *)aes_jwk, strlen(aes_jwk), NULL, 0, &p));
    EXPECT(HSMKIT_ERR_UNSUPPORTED, hsmkit_key_public_key(p, HSMKIT_PUBLIC_DER, der, sizeof der, &n));
    hsmkit_key_free(p);
    p = NULL;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_import_key(s, "junk", (const uint8_t *)"junk", 4, NULL, 0, &p));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_import_key(s, "junk", (const uint8_t *)"{", 1, NULL, 0, &p));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_import_key(s, "junk", der, d, NULL, 0xFFFFFFFFu, &p));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_import_key(s, "junk", NULL, 4, NULL, 0, &p));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_import_key(s, "junk", der, d, NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_import_key(s, "pub-der", der, d, NULL, 0, &p));
    CHECK(p == NULL);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_public_key(NULL, HSMKIT_PUBLIC_DER, der, sizeof der, &n));
    hsmkit_key_free(k);
}

static void test_lifecycle(hsmkit_store *s) {
    hsmkit_key *k = create(s, "life", "P-256", NULL), *k2 = NULL;
    uint8_t sig[64];
    size_t n = 0;
    const uint8_t m[] = "m";
    OK(hsmkit_store_rotate_key(s, "life", &k2));
    uint32_t v = 0;
    OK(hsmkit_key_version(k2, &v));
    CHECK(v == 2);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_rotate_key(s, "nope", &k2));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_rotate_key(s, "life", NULL));

    hsmkit_key_update u = {.enabled = 0, .not_before = HSMKIT_TIME_UNCHANGED, .expires = HSMKIT_TIME_UNCHANGED, .ops = NULL};
    OK(hsmkit_store_update_key(s, "life", 0, &u));
    hsmkit_key *cur = NULL;
    OK(hsmkit_store_get_key(s, "life", 0, &cur));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_key_sign(cur, "ES256", 0, m, 1, sig, sizeof sig, &n));
    CHECK(strstr(last_error(), "disabled") != NULL);
    hsmkit_key_free(cur);
    /* version 1 is untouched and still signs */
    OK(hsmkit_key_sign(k, "ES256", 0, m, 1, sig, sizeof sig, &n));

    u.enabled = 1;
    u.expires = (int64_t)time(NULL) - 10; /* expired */
    OK(hsmkit_store_update_key(s, "life", 2, &u));
    OK(hsmkit_store_get_key(s, "life", 0, &cur));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_key_sign(cur, "ES256", 0, m, 1, sig, sizeof sig, &n));
    CHECK(strstr(last_error(), "expired") != NULL);
    hsmkit_key_free(cur);
    u.enabled = -1;
    u.expires = HSMKIT_TIME_NONE;
    u.ops = "sign";
    OK(hsmkit_store_update_key(s, "life", 0, &u));
    OK(hsmkit_store_get_key(s, "life", 0, &cur));
    OK(hsmkit_key_sign(cur, "ES256", 0, m, 1, sig, sizeof sig, &n));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_key_verify(cur, "ES256", 0, m, 1, sig, n));
    hsmkit_key_free(cur);
    u.enabled = 5;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_key(s, "life", 0, &u));
    u.enabled = 2;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_key(s, "life", 0, &u));
    u.enabled = INT32_MIN;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_key(s, "life", 0, &u));
    u.enabled = -1;
    u.expires = INT64_MIN;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_key(s, "life", 0, &u));
    u.expires = HSMKIT_TIME_NONE;
    u.enabled = -1;
    u.ops = NULL;
    u.not_before = -7;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_key(s, "life", 0, &u));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_update_key(s, "life", 0, NULL));

    /* rotation policy: due when the current version expires within 30 days */
    u.not_before = HSMKIT_TIME_UNCHANGED;
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_update_key(s, "nope", 0, &u));
    u.expires = (int64_t)time(NULL) + 3 * 86400;
    OK(hsmkit_store_update_key(s, "life", 0, &u));
    OK(hsmkit_store_set_rotation_policy(s, "life", 0, 30 * 86400, 0));
    size_t rotated = 99;
    OK(hsmkit_store_rotate_due(s, &rotated));
    CHECK(rotated == 1);
    OK(hsmkit_store_rotate_due(s, &rotated));
    CHECK(rotated == 0);
    OK(hsmkit_store_set_rotation_policy(s, "life", 0, 0, 0));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_set_rotation_policy(s, "nope", 1, 0, 0));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_rotate_due(s, NULL));

    /* soft delete, describe while deleted, recover, delete and purge */
    OK(hsmkit_store_delete_key(s, "life"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_key(s, "life", 0, &cur));
    /* a handle opened before a soft delete still works: the key still exists */
    OK(hsmkit_key_sign(k, "ES256", 0, m, 1, sig, sizeof sig, &n));
    char desc[8192];
    OK(hsmkit_store_describe_key(s, "life", (uint8_t *)desc, sizeof desc, &n));
    CHECK(strstr(desc, "\"scheduled_purge\"") && strstr(desc, "\"current_version\":3"));
    EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_create_key(s, "life", "P-256", NULL, 0, &cur));
    OK(hsmkit_store_recover_deleted_key(s, "life", &cur));
    OK(hsmkit_key_version(cur, &v));
    CHECK(v == 3);
    hsmkit_key_free(cur);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_recover_deleted_key(s, "life", &cur));
    OK(hsmkit_store_delete_key(s, "life"));
    OK(hsmkit_store_purge_deleted_key(s, "life"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_purge_deleted_key(s, "life"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_delete_key(s, "life"));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_delete_key(NULL, "life"));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_purge_deleted_key(s, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_recover_deleted_key(s, "life", NULL));
    hsmkit_key_free(k);
    hsmkit_key_free(k2);

    /* exportable keys: the flag is accepted or refused with a type */
    hsmkit_key *x = NULL;
    hsmkit_result r = hsmkit_store_create_key(s, "exp", "AES-256", NULL, HSMKIT_KEY_EXPORTABLE | HSMKIT_KEY_DISABLED, &x);
    if (is_pkcs11) {
        EXPECT(HSMKIT_ERR_UNSUPPORTED, r);
    } else {
        OK(r);
        EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_key_wrap(x, "A256KW", sig, 32, sig, sizeof sig, &n));
        hsmkit_key_free(x);
    }
}

/* Streaming callbacks over memory. */
typedef struct {
    const uint8_t *in;
    size_t in_len, pos;
    uint8_t *out;
    size_t out_len, out_cap;
    int fail_write_after; /* -1: never */
} stream;

static int read_cb(void *ud, uint8_t *buf, size_t len, size_t *n) {
    stream *st = ud;
    size_t left = st->in_len - st->pos;
    size_t k = left < len ? left : len;
    if (k > 1000) k = 1000; /* short reads */
    memcpy(buf, st->in + st->pos, k);
    st->pos += k;
    *n = k;
    return 0;
}

static int write_cb(void *ud, const uint8_t *buf, size_t len) {
    stream *st = ud;
    if (st->fail_write_after >= 0 && st->out_len >= (size_t)st->fail_write_after) return 1;
    if (st->out_len + len > st->out_cap) return 1;
    memcpy(st->out + st->out_len, buf, len);
    st->out_len += len;
    return 0;
}

static void test_envelope(hsmkit_store *s) {
    hsmkit_key *k = create(s, "env-kek", "AES-256", NULL);
    hsmkit_key_free(k);
    k = create(s, "env-rsa", "RSA-2048", "wrapKey,unwrapKey");
    hsmkit_key_free(k);
    const char *keks[] = {"env-kek", "env-rsa"};
    hsmkit_context_entry ctx[] = {{"tenant", "acme"}, {"purpose", "test"}};
    hsmkit_context_entry wrong[] = {{"tenant", "other"}, {"purpose", "test"}};
    hsmkit_context_entry dup[] = {{"a", "1"}, {"a", "2"}};
    hsmkit_sealer *sealer = NULL;

    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_sealer_new(s, NULL, 0, NULL, 0, 0, &sealer));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_sealer_new(s, (const char *[]){"nope"}, 1, NULL, 0, 0, &sealer));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_sealer_new(s, keks, 1, dup, 2, 0, &sealer));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_new(s, keks, 1, NULL, 2, 0, &sealer));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_sealer_new(s, keks, 1, NULL, 0, 7, &sealer));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_sealer_new(s, keks, 1, NULL, 0, 0xFFFFFFFFu, &sealer));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_sealer_new(s, keks, 17, NULL, 0, 0, &sealer));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_new(s, keks, 1, NULL, 0, 0, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_new(NULL, keks, 1, NULL, 0, 0, &sealer));
    CHECK(sealer == NULL);
    OK(hsmkit_sealer_new(s, keks, 2, ctx, 2, 4096, &sealer));

    size_t len = 100000, need = 0, n = 0, m = 0;
    uint8_t *data = malloc(len), *env, *back = malloc(len);
    for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i * 31 + (i >> 8));
    OK(hsmkit_sealer_seal(sealer, data, len, NULL, 0, &need));
    env = malloc(need);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_sealer_seal(sealer, data, len, env, need - 1, &n));
    CHECK(n == need);
    OK(hsmkit_sealer_seal(sealer, data, len, env, need, &n));
    CHECK(n == need && memcmp(env, "HKEV", 4) == 0);

    OK(hsmkit_store_unseal(s, ctx, 2, env, n, NULL, 0, &m));
    CHECK(m >= len);
    OK(hsmkit_store_unseal(s, ctx, 2, env, n, back, len, &m));
    CHECK(m == len && memcmp(back, data, len) == 0);
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal(s, wrong, 2, env, n, back, len, &m));
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal(s, NULL, 0, env, n, back, len, &m));
    env[n - 100] ^= 1;
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal(s, ctx, 2, env, n, back, len, &m));
    env[n - 100] ^= 1;
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal(s, ctx, 2, env, n - 1, back, len, &m));
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal(s, ctx, 2, (const uint8_t *)"junk", 4, back, len, &m));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_unseal(s, ctx, 2, NULL, 5, back, len, &m));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_seal(NULL, data, len, env, need, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_seal(sealer, NULL, len, env, need, &n));

    /* suite 2 by default; a copy of the sealer writes suite 1 for older readers */
    CHECK(env[5] == 2);
    hsmkit_sealer *sealer1 = NULL;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_sealer_with_suite(sealer, 3, &sealer1));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_with_suite(NULL, 1, &sealer1));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_with_suite(sealer, 1, NULL));
    CHECK(sealer1 == NULL);
    OK(hsmkit_sealer_with_suite(sealer, 1, &sealer1));
    OK(hsmkit_sealer_seal(sealer1, data, len, env, need, &n));
    CHECK(n == need && env[5] == 1);
    OK(hsmkit_store_unseal(s, ctx, 2, env, n, back, len, &m));
    CHECK(m == len && memcmp(back, data, len) == 0);
    hsmkit_sealer_free(sealer1);
    OK(hsmkit_sealer_seal(sealer, data, len, env, need, &n));

    /* streams: sealed by callbacks, opened by callbacks and one-shot alike */
    uint8_t *sout = malloc(need + 1000);
    stream st = {data, len, 0, sout, 0, need + 1000, -1};
    uint64_t total = 0;
    OK(hsmkit_sealer_seal_stream(sealer, read_cb, write_cb, &st, &total));
    CHECK(total == len && st.out_len == need);
    OK(hsmkit_store_unseal(s, ctx, 2, sout, st.out_len, back, len, &m));
    CHECK(m == len && memcmp(back, data, len) == 0);
    stream op = {sout, st.out_len, 0, back, 0, len, -1};
    memset(back, 0, len);
    OK(hsmkit_store_unseal_stream(s, ctx, 2, read_cb, write_cb, &op, &total));
    CHECK(total == len && op.out_len == len && memcmp(back, data, len) == 0);
    stream failing = {data, len, 0, sout, 0, need + 1000, 5000};
    EXPECT(HSMKIT_ERR_CALLBACK, hsmkit_sealer_seal_stream(sealer, read_cb, write_cb, &failing, NULL));
    stream bad = {env, n, 0, back, 0, len, -1};
    env[n - 100] ^= 1;
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal_stream(s, ctx, 2, read_cb, write_cb, &bad, NULL));
    env[n - 100] ^= 1;
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_seal_stream(sealer, NULL, write_cb, &st, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_unseal_stream(s, ctx, 2, read_cb, NULL, &st, NULL));

    /* files: the output appears only when complete and verified */
    char src[4096], sealed[4096], out[4096];
    snprintf(src, sizeof src, "%s/plain.bin", dir);
    snprintf(sealed, sizeof sealed, "%s/plain.hkev", dir);
    snprintf(out, sizeof out, "%s/plain.out", dir);
    FILE *f = fopen(src, "wb");
    CHECK(f && fwrite(data, 1, len, f) == len);
    fclose(f);
    OK(hsmkit_sealer_seal_file(sealer, src, sealed, &total));
    CHECK(total == len);
    OK(hsmkit_store_unseal_file(s, ctx, 2, sealed, out, &total));
    CHECK(total == len);
    f = fopen(out, "rb");
    CHECK(f && fread(back, 1, len, f) == len && memcmp(back, data, len) == 0);
    fclose(f);
    unlink(out);
    /* Flip a bit (writing a fixed byte left the file unchanged when the ciphertext held
       that byte there already: one run in 256 "opened" the tampered file). */
    f = fopen(sealed, "r+b");
    int c = f && fseek(f, 5000, SEEK_SET) == 0 ? fgetc(f) : EOF;
    CHECK(c != EOF && fseek(f, 5000, SEEK_SET) == 0 && fputc(c ^ 1, f) != EOF);
    fclose(f);
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal_file(s, ctx, 2, sealed, out, NULL));
    struct stat sb;
    CHECK(stat(out, &sb) != 0); /* no partial output */
    EXPECT(HSMKIT_ERR_IO, hsmkit_sealer_seal_file(sealer, "/nonexistent/in", sealed, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_sealer_seal_file(sealer, NULL, sealed, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_unseal_file(s, ctx, 2, sealed, NULL, NULL));

    hsmkit_sealer_free(sealer);
    free(data);
    free(env);
    free(back);
    free(sout);
}

/* The size of a file, or -1 if it does not exist. */
static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Rewrap: the encryption context is required exactly, as for unseal; the mode is checked. */
static void test_rewrap(hsmkit_store *s) {
    hsmkit_key *k = create(s, "rw-kek", "AES-256", NULL);
    hsmkit_key_free(k);
    k = create(s, "rw-other", "AES-256", NULL);
    hsmkit_key_free(k);
    const char *old_kek[] = {"rw-kek"}, *other[] = {"rw-other"};
    hsmkit_context_entry ctx[] = {{"tenant", "acme"}, {"purpose", "rewrap"}};
    hsmkit_context_entry wrong[] = {{"tenant", "other"}, {"purpose", "rewrap"}};
    hsmkit_sealer *sealer = NULL;
    OK(hsmkit_sealer_new(s, old_kek, 1, ctx, 2, 0, &sealer));
    const uint8_t data[] = "rewrapped, never decrypted";
    size_t dlen = sizeof data, need = 0, n = 0, m = 0, w = 0;
    OK(hsmkit_sealer_seal(sealer, data, dlen, NULL, 0, &need));
    uint8_t *env = malloc(need);
    CHECK(env != NULL);
    OK(hsmkit_sealer_seal(sealer, data, dlen, env, need, &n));
    CHECK(n == need);

    /* rw-kek version 2 becomes current: the new recipient */
    OK(hsmkit_store_rotate_key(s, "rw-kek", &k));
    hsmkit_key_free(k);

    size_t bound = 0;
    OK(hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, env, n, NULL, 0, &bound));
    CHECK(bound > n);
    size_t cap = bound + 16;
    uint8_t *re = malloc(cap), *added = malloc(cap), back[64];

    /* a wrong or missing context: the decryption-failed code, nothing written */
    memset(re, 'Z', cap);
    w = 12345;
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED,
           hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, wrong, 2, env, n, re, cap, &w));
    CHECK(strcmp(last_error(), "decryption failed") == 0);
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED,
           hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, NULL, 0, env, n, re, cap, &w));
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED,
           hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_ADD, ctx, 1, env, n, re, cap, &w));
    CHECK(w == 12345);
    for (size_t i = 0; i < cap; i++) CHECK(re[i] == 'Z');

    /* out-of-range modes, and the other arguments */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_rewrap(s, old_kek, 1, 2, ctx, 2, env, n, re, cap, &w));
    CHECK(strstr(last_error(), "mode") != NULL);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_rewrap(s, old_kek, 1, 0xFFFFFFFFu, ctx, 2, env, n, re, cap, &w));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_rewrap(s, old_kek, 1, 0x80000000u, ctx, 2, env, n, NULL, 0, &w));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_rewrap(s, NULL, 0, HSMKIT_REWRAP_REPLACE, ctx, 2, env, n, re, cap, &w));
    EXPECT(HSMKIT_ERR_NOT_FOUND,
           hsmkit_store_rewrap(s, (const char *[]){"nope"}, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, env, n, re, cap, &w));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_rewrap(NULL, old_kek, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, env, n, re, cap, &w));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, NULL, 2, env, n, re, cap, &w));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, NULL, n, re, cap, &w));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, env, n, re, cap, NULL));
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED,
           hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, (const uint8_t *)"junk", 4, re, cap, &w));
    for (size_t i = 0; i < cap; i++) CHECK(re[i] == 'Z');

    /* too small a buffer: the length needed, the buffer untouched */
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, env, n, re, 10, &w));
    CHECK(w > 10 && w <= bound);
    for (size_t i = 0; i < cap; i++) CHECK(re[i] == 'Z');

    /* the right context: Replace (to rw-kek/2), Add (rw-other beside rw-kek/1) */
    size_t rn = 0, an = 0;
    OK(hsmkit_store_rewrap(s, old_kek, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, env, n, re, cap, &rn));
    CHECK(rn <= bound && memcmp(re, "HKEV", 4) == 0);
    /* the body is copied: the envelopes end alike */
    CHECK(memcmp(re + rn - 32, env + n - 32, 32) == 0);
    OK(hsmkit_store_rewrap(s, other, 1, HSMKIT_REWRAP_ADD, ctx, 2, env, n, NULL, 0, &bound));
    OK(hsmkit_store_rewrap(s, other, 1, HSMKIT_REWRAP_ADD, ctx, 2, env, n, added, cap, &an));
    CHECK(an <= bound && an > n);

    /* rw-kek version 1 retired: the original no longer opens, the rewrapped ones do */
    hsmkit_key_update off = {.enabled = 0, .not_before = HSMKIT_TIME_UNCHANGED, .expires = HSMKIT_TIME_UNCHANGED, .ops = NULL};
    OK(hsmkit_store_update_key(s, "rw-kek", 1, &off));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_store_unseal(s, ctx, 2, env, n, back, sizeof back, &m));
    OK(hsmkit_store_unseal(s, ctx, 2, re, rn, back, sizeof back, &m));
    CHECK(m == dlen && memcmp(back, data, dlen) == 0);
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal(s, wrong, 2, re, rn, back, sizeof back, &m));
    memset(back, 0, sizeof back);
    OK(hsmkit_store_unseal(s, ctx, 2, added, an, back, sizeof back, &m));
    CHECK(m == dlen && memcmp(back, data, dlen) == 0);
    /* nothing left to unwrap the original with */
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED,
           hsmkit_store_rewrap(s, other, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, env, n, re, cap, &w));

    /* files: dst appears only when the context is right */
    char src[4096], dst[4096], out[4096];
    snprintf(src, sizeof src, "%s/rw.hkev", dir);
    snprintf(dst, sizeof dst, "%s/rw-new.hkev", dir);
    snprintf(out, sizeof out, "%s/rw.out", dir);
    FILE *f = fopen(src, "wb");
    CHECK(f && fwrite(re, 1, rn, f) == rn);
    fclose(f);
    uint64_t body = 0;
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED,
           hsmkit_store_rewrap_file(s, other, 1, HSMKIT_REWRAP_REPLACE, wrong, 2, src, dst, &body));
    CHECK(file_size(dst) == -1 && body == 0);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_rewrap_file(s, other, 1, 7, ctx, 2, src, dst, &body));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_rewrap_file(s, other, 1, 0xFFFFFFFFu, ctx, 2, src, dst, NULL));
    CHECK(file_size(dst) == -1);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_rewrap_file(s, other, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, src, NULL, NULL));
    EXPECT(HSMKIT_ERR_IO, hsmkit_store_rewrap_file(s, other, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, "/nonexistent/in", dst, NULL));
    OK(hsmkit_store_rewrap_file(s, other, 1, HSMKIT_REWRAP_REPLACE, ctx, 2, src, dst, &body));
    CHECK(body > dlen && file_size(dst) > 0);
    /* rw-kek is not a recipient any more: disabling its current version changes nothing */
    off.enabled = 0;
    OK(hsmkit_store_update_key(s, "rw-kek", 2, &off));
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_unseal_file(s, wrong, 2, dst, out, NULL));
    CHECK(file_size(out) == -1);
    OK(hsmkit_store_unseal_file(s, ctx, 2, dst, out, &body));
    CHECK(body == dlen && file_size(out) == (long)dlen);
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_store_unseal_file(s, ctx, 2, src, out, NULL)); /* rw-kek/2 only */

    hsmkit_sealer_free(sealer);
    free(env);
    free(re);
    free(added);
}

/* A secret's current or given version; fails the test unless it reads. */
static hsmkit_secret *get_secret(hsmkit_store *s, const char *name, uint32_t version) {
    hsmkit_secret *sec = NULL;
    OK(hsmkit_store_get_secret(s, name, version, &sec));
    CHECK(sec != NULL);
    return sec;
}

/* Whether a secret's value is exactly `len` bytes at `want` (two-call). */
static int secret_is(hsmkit_secret *sec, const void *want, size_t len) {
    size_t need = 99, n = 0;
    OK(hsmkit_secret_value(sec, NULL, 0, &need));
    if (need != len) return 0;
    uint8_t *buf = malloc(len + 1);
    CHECK(buf != NULL);
    OK(hsmkit_secret_value(sec, buf, len + 1, &n));
    int same = n == len && memcmp(buf, want, len) == 0;
    memset(buf, 0, len + 1); /* the caller's copy is the caller's to wipe */
    free(buf);
    return same;
}

/* A time for hsmkit_store_set_secret / hsmkit_secret_update, from now. */
static int64_t from_now(int64_t secs) { return (int64_t)time(NULL) + secs; }

static void test_secrets(hsmkit_store *s) {
    const int64_t NONE = HSMKIT_TIME_NONE;
    hsmkit_secret *sec = NULL;
    uint32_t v = 0;
    size_t n = 0, w = 0;
    char text[4096];

    /* no secret yet; the list is empty text */
    OK(hsmkit_store_list_secrets(s, NULL, 0, &n));
    CHECK(n == 1);

    /* versions: text, then binary with zeros and high bytes, then an empty value */
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (uint8_t)(i % 5 == 0 ? 0 : i * 37 + 128);
    v = 99;
    OK(hsmkit_store_set_secret(s, "db", (const uint8_t *)"first", 5, NULL, NONE, NONE, 0, &v));
    CHECK(v == 1);
    OK(hsmkit_store_set_secret(s, "db", bin, sizeof bin, "application/octet-stream", NONE, NONE, 0, &v));
    CHECK(v == 2);
    /* NULL with length 0 is an empty value; the version out-pointer may be NULL */
    OK(hsmkit_store_set_secret(s, "db", NULL, 0, "", NONE, NONE, 0, NULL));

    sec = get_secret(s, "db", 0);
    OK(hsmkit_secret_version(sec, &v));
    CHECK(v == 3);
    CHECK(secret_is(sec, "", 0));
    OK(hsmkit_secret_content_type(sec, (uint8_t *)text, sizeof text, &n));
    CHECK(n == 1 && text[0] == '\0'); /* "" is no content type */
    hsmkit_secret_free(sec);

    sec = get_secret(s, "db", 2);
    OK(hsmkit_secret_version(sec, &v));
    CHECK(v == 2);
    CHECK(secret_is(sec, bin, sizeof bin));
    /* too small: the documented code, the length needed, the buffer untouched */
    uint8_t small[16];
    memset(small, 'Z', sizeof small);
    w = 0;
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_secret_value(sec, small, sizeof small, &w));
    CHECK(w == sizeof bin);
    for (size_t i = 0; i < sizeof small; i++) CHECK(small[i] == 'Z');
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_secret_value(sec, small, 0, &w));
    CHECK(w == sizeof bin);
    OK(hsmkit_secret_content_type(sec, NULL, 0, &n));
    CHECK(n == strlen("application/octet-stream") + 1);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_secret_content_type(sec, (uint8_t *)small, sizeof small, &w));
    CHECK(w == n);
    for (size_t i = 0; i < sizeof small; i++) CHECK(small[i] == 'Z');
    OK(hsmkit_secret_content_type(sec, (uint8_t *)text, n, &w));
    CHECK(w == n && strcmp(text, "application/octet-stream") == 0);
    OK(hsmkit_secret_name(sec, NULL, 0, &n));
    CHECK(n == 3);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_secret_name(sec, (uint8_t *)text, 2, &n));
    OK(hsmkit_secret_name(sec, (uint8_t *)text, sizeof text, &n));
    CHECK(n == 3 && strcmp(text, "db") == 0);
    OK(hsmkit_secret_info(sec, NULL, 0, &n));
    OK(hsmkit_secret_info(sec, (uint8_t *)text, sizeof text, &w));
    CHECK(w == n && text[w - 1] == '\0' && text[0] == '{');
    CHECK(strstr(text, "\"name\":\"db\"") && strstr(text, "\"version\":2") && strstr(text, "\"enabled\":true"));
    CHECK(strstr(text, "\"content_type\":\"application/octet-stream\"") && strstr(text, "\"expires\":null"));
    CHECK(strstr(text, "\"created\":\"") != NULL);
    /* NULL arguments */
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_value(NULL, small, sizeof small, &w));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_value(sec, small, sizeof small, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_version(sec, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_version(NULL, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_content_type(NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_content_type(sec, NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_name(NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_info(NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_secret_info(sec, NULL, 0, NULL));
    hsmkit_secret_free(sec);

    sec = get_secret(s, "db", 1);
    CHECK(secret_is(sec, "first", 5));
    OK(hsmkit_secret_info(sec, (uint8_t *)text, sizeof text, &n));
    CHECK(strstr(text, "\"content_type\":null") && strstr(text, "first") == NULL); /* never the value */
    hsmkit_secret_free(sec);

    /* not found: a version, a name; and a name that is no name */
    sec = NULL;
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_secret(s, "db", 4, &sec));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_secret(s, "nope", 0, &sec));
    CHECK(strstr(last_error(), "nope") != NULL);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_secret(s, "nope", 1, &sec));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_get_secret(s, "bad name!", 0, &sec));
    CHECK(strcmp(hsmkit_last_error_reason(), "name") == 0);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret(s, "bad name!", bin, 1, NULL, NONE, NONE, 0, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_get_secret(s, "\xff\xfe", 0, &sec));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_get_secret(NULL, "db", 0, &sec));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_get_secret(s, NULL, 0, &sec));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_get_secret(s, "db", 0, NULL));
    CHECK(sec == NULL);

    /* 25 KiB is the limit: one byte more is refused, and adds no version */
    size_t max = 25 * 1024;
    uint8_t *big = malloc(max + 1);
    CHECK(big != NULL);
    for (size_t i = 0; i <= max; i++) big[i] = (uint8_t)(i * 7);
    OK(hsmkit_store_set_secret(s, "big", big, max, NULL, NONE, NONE, 0, &v));
    CHECK(v == 1);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret(s, "big", big, max + 1, NULL, NONE, NONE, 0, &v));
    CHECK(strcmp(hsmkit_last_error_reason(), "length") == 0);
    CHECK(strstr(last_error(), "25") != NULL);
    CHECK(v == 1);
    sec = get_secret(s, "big", 0);
    OK(hsmkit_secret_version(sec, &v));
    CHECK(v == 1 && secret_is(sec, big, max));
    hsmkit_secret_free(sec);
    free(big);

    /* other refused arguments: nothing is set */
    char long_type[300];
    memset(long_type, 't', 256);
    long_type[256] = '\0';
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret(s, "x", bin, 1, long_type, NONE, NONE, 0, &v));
    long_type[255] = '\0'; /* 255 characters: accepted */
    OK(hsmkit_store_set_secret(s, "typed", bin, 1, long_type, NONE, NONE, 0, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret(s, "x", bin, 1, NULL, NONE, NONE, 2, &v));
    CHECK(strstr(last_error(), "flags") != NULL);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret(s, "x", bin, 1, NULL, NONE, NONE, 0xFFFFFFFFu, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT,
           hsmkit_store_set_secret(s, "x", bin, 1, NULL, HSMKIT_TIME_UNCHANGED, NONE, 0, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT,
           hsmkit_store_set_secret(s, "x", bin, 1, NULL, NONE, HSMKIT_TIME_UNCHANGED, 0, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret(s, "x", bin, 1, NULL, -7, NONE, 0, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret(s, "x", bin, 1, NULL, NONE, INT64_MIN, 0, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT,
           hsmkit_store_set_secret(s, "x", bin, 1, NULL, from_now(100), from_now(50), 0, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret(s, "x", bin, 1, "\xff", NONE, NONE, 0, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_set_secret(NULL, "x", bin, 1, NULL, NONE, NONE, 0, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_set_secret(s, NULL, bin, 1, NULL, NONE, NONE, 0, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_set_secret(s, "x", NULL, 1, NULL, NONE, NONE, 0, &v));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_secret(s, "x", 0, &sec));

    /* disabled when set: the permission-denied code until enabled */
    OK(hsmkit_store_set_secret(s, "off", (const uint8_t *)"o1", 2, NULL, NONE, NONE, HSMKIT_SECRET_DISABLED, &v));
    sec = NULL;
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_store_get_secret(s, "off", 0, &sec));
    CHECK(strstr(last_error(), "disabled") != NULL);
    CHECK(sec == NULL);
    hsmkit_secret_update u = {.enabled = 1, .not_before = HSMKIT_TIME_UNCHANGED, .expires = HSMKIT_TIME_UNCHANGED,
                              .content_type = NULL};
    OK(hsmkit_store_update_secret(s, "off", 0, &u)); /* 0: the current version, even disabled */
    sec = get_secret(s, "off", 0);
    CHECK(secret_is(sec, "o1", 2));
    hsmkit_secret_free(sec);
    /* disable one version of two: that one is refused, the other still reads */
    OK(hsmkit_store_set_secret(s, "off", (const uint8_t *)"o2", 2, NULL, NONE, NONE, 0, &v));
    CHECK(v == 2);
    u.enabled = 0;
    OK(hsmkit_store_update_secret(s, "off", 1, &u));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_store_get_secret(s, "off", 1, &sec));
    sec = get_secret(s, "off", 0);
    CHECK(secret_is(sec, "o2", 2));
    hsmkit_secret_free(sec);

    /* validity: not yet valid, expired; then cleared by an update */
    OK(hsmkit_store_set_secret(s, "later", (const uint8_t *)"l", 1, "text/plain", from_now(3600), NONE, 0, &v));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_store_get_secret(s, "later", 0, &sec));
    OK(hsmkit_store_set_secret(s, "gone", (const uint8_t *)"g", 1, NULL, NONE, from_now(-10), 0, &v));
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_store_get_secret(s, "gone", 0, &sec));
    CHECK(strstr(last_error(), "expired") != NULL);
    u = (hsmkit_secret_update){.enabled = -1, .not_before = NONE, .expires = HSMKIT_TIME_UNCHANGED,
                               .content_type = ""};
    OK(hsmkit_store_update_secret(s, "later", 1, &u));
    sec = get_secret(s, "later", 0);
    OK(hsmkit_secret_content_type(sec, (uint8_t *)text, sizeof text, &n));
    CHECK(n == 1); /* "" removed it */
    hsmkit_secret_free(sec);
    u = (hsmkit_secret_update){.enabled = -1, .not_before = HSMKIT_TIME_UNCHANGED, .expires = from_now(86400),
                               .content_type = "application/json"};
    OK(hsmkit_store_update_secret(s, "gone", 0, &u));
    sec = get_secret(s, "gone", 0);
    OK(hsmkit_secret_info(sec, (uint8_t *)text, sizeof text, &n));
    CHECK(strstr(text, "\"content_type\":\"application/json\"") && strstr(text, "\"expires\":\"20"));
    CHECK(secret_is(sec, "g", 1));
    hsmkit_secret_free(sec);

    /* refused updates */
    u = (hsmkit_secret_update){.enabled = 2, .not_before = HSMKIT_TIME_UNCHANGED, .expires = HSMKIT_TIME_UNCHANGED,
                               .content_type = NULL};
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_secret(s, "gone", 0, &u));
    CHECK(strstr(last_error(), "enabled") != NULL);
    u.enabled = INT32_MIN;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_secret(s, "gone", 0, &u));
    u.enabled = -1;
    u.expires = INT64_MIN;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_secret(s, "gone", 0, &u));
    u.expires = -3;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_secret(s, "gone", 0, &u));
    u.expires = from_now(10);
    u.not_before = from_now(20); /* expires before not-before */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_secret(s, "gone", 0, &u));
    u.expires = u.not_before = HSMKIT_TIME_UNCHANGED;
    u.content_type = long_type;
    long_type[255] = 't'; /* 256 characters again */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_update_secret(s, "gone", 0, &u));
    u.content_type = NULL;
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_update_secret(s, "gone", 9, &u));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_update_secret(s, "nope", 0, &u));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_update_secret(s, "nope", 1, &u));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_update_secret(s, "gone", 0, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_update_secret(s, NULL, 0, &u));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_update_secret(NULL, "gone", 0, &u));
    sec = get_secret(s, "gone", 0); /* the refused updates changed nothing */
    OK(hsmkit_secret_info(sec, (uint8_t *)text, sizeof text, &n));
    CHECK(strstr(text, "\"content_type\":\"application/json\"") && strstr(text, "\"not_before\":null"));
    hsmkit_secret_free(sec);

    /* the versions: JSON metadata, two-call, never a value */
    OK(hsmkit_store_list_secret_versions(s, "db", NULL, 0, &n));
    CHECK(n > 100 && n < sizeof text);
    memset(text, 'Z', sizeof text);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_list_secret_versions(s, "db", (uint8_t *)text, n - 1, &w));
    CHECK(w == n);
    for (size_t i = 0; i < sizeof text; i++) CHECK(text[i] == 'Z');
    OK(hsmkit_store_list_secret_versions(s, "db", (uint8_t *)text, sizeof text, &w));
    CHECK(w == n && text[w - 1] == '\0' && text[0] == '[' && text[w - 2] == ']');
    CHECK(strstr(text, "\"version\":1") && strstr(text, "\"version\":2") && strstr(text, "\"version\":3"));
    CHECK(strstr(text, "\"version\":4") == NULL && strstr(text, "first") == NULL);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_list_secret_versions(s, "nope", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_secret_versions(s, NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_secret_versions(s, "db", NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_secret_versions(NULL, "db", NULL, 0, &n));

    /* the names, sorted, one per line; secrets are not keys */
    const char *all = "big\ndb\ngone\nlater\noff\ntyped\n";
    OK(hsmkit_store_list_secrets(s, NULL, 0, &n));
    CHECK(n == strlen(all) + 1);
    memset(text, 'Z', sizeof text);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_list_secrets(s, (uint8_t *)text, 4, &w));
    CHECK(w == n && text[0] == 'Z');
    OK(hsmkit_store_list_secrets(s, (uint8_t *)text, sizeof text, &w));
    CHECK(w == n && strcmp(text, all) == 0);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_secrets(s, NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_secrets(NULL, NULL, 0, &n));
    hsmkit_key *k = NULL;
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_key(s, "db", 0, &k));

    /* soft delete, recover, delete and purge */
    OK(hsmkit_store_delete_secret(s, "db"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_secret(s, "db", 0, &sec));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_secret(s, "db", 1, &sec));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_list_secret_versions(s, "db", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_update_secret(s, "db", 1, &u));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_delete_secret(s, "db"));
    EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_set_secret(s, "db", bin, 1, NULL, NONE, NONE, 0, &v));
    OK(hsmkit_store_list_secrets(s, (uint8_t *)text, sizeof text, &w));
    CHECK(strcmp(text, "big\ngone\nlater\noff\ntyped\n") == 0);
    v = 0;
    OK(hsmkit_store_recover_deleted_secret(s, "db", &v));
    CHECK(v == 3);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_recover_deleted_secret(s, "db", &v));
    sec = get_secret(s, "db", 1);
    CHECK(secret_is(sec, "first", 5));
    hsmkit_secret_free(sec);
    sec = get_secret(s, "db", 2);
    CHECK(secret_is(sec, bin, sizeof bin));
    hsmkit_secret_free(sec);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_purge_deleted_secret(s, "db")); /* not deleted */
    OK(hsmkit_store_delete_secret(s, "db"));
    OK(hsmkit_store_purge_deleted_secret(s, "db"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_purge_deleted_secret(s, "db"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_recover_deleted_secret(s, "db", NULL));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_secret(s, "db", 1, &sec));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_delete_secret(s, "nope"));
    /* purged: the name is free again, from version 1 */
    OK(hsmkit_store_set_secret(s, "db", (const uint8_t *)"new", 3, NULL, NONE, NONE, 0, &v));
    CHECK(v == 1);
    OK(hsmkit_store_delete_secret(s, "db"));
    OK(hsmkit_store_recover_deleted_secret(s, "db", NULL)); /* the version may be unwanted */
    sec = get_secret(s, "db", 0);
    CHECK(secret_is(sec, "new", 3));
    hsmkit_secret_free(sec);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_delete_secret(NULL, "db"));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_delete_secret(s, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_recover_deleted_secret(s, NULL, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_recover_deleted_secret(NULL, "db", &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_purge_deleted_secret(s, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_purge_deleted_secret(NULL, "db"));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_delete_secret(s, "bad name!"));
}

/* A secret's description, deleted list and due list: two-call JSON; the rotation policy,
   set and removed as for keys (seconds, 0 not set, all 0 none). */
static void test_secret_reports(hsmkit_store *s) {
    const int64_t NONE = HSMKIT_TIME_NONE;
    char text[8192];
    size_t n = 0, w = 0;
    uint32_t v = 0;

    /* describe: "db" is version 1 again after test_secrets purged and re-set it */
    OK(hsmkit_store_describe_secret(s, "db", NULL, 0, &n));
    CHECK(n > 50 && n < sizeof text);
    memset(text, 'Z', sizeof text);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_describe_secret(s, "db", (uint8_t *)text, n - 1, &w));
    CHECK(w == n);
    for (size_t i = 0; i < sizeof text; i++) CHECK(text[i] == 'Z');
    OK(hsmkit_store_describe_secret(s, "db", (uint8_t *)text, sizeof text, &w));
    CHECK(w == n && text[w - 1] == '\0' && strlen(text) == w - 1 && text[0] == '{' && text[w - 2] == '}');
    CHECK(strstr(text, "\"name\":\"db\"") && strstr(text, "\"current_version\":1"));
    CHECK(strstr(text, "\"deleted\":null") && strstr(text, "\"rotation_policy\":null"));
    CHECK(strstr(text, "\"versions\":[{") && strstr(text, "\"content_type\":null"));
    CHECK(strstr(text, "new") == NULL); /* never the value */
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_secret(s, "nope", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_describe_secret(s, "bad name!", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_describe_secret(NULL, "db", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_describe_secret(s, NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_describe_secret(s, "db", NULL, 0, NULL));

    /* deleted secrets: none, then one (described while deleted), then none again */
    OK(hsmkit_store_list_deleted_secrets(s, NULL, 0, &n));
    CHECK(n == 3);
    OK(hsmkit_store_list_deleted_secrets(s, (uint8_t *)text, sizeof text, &w));
    CHECK(w == 3 && strcmp(text, "[]") == 0);
    OK(hsmkit_store_delete_secret(s, "typed"));
    OK(hsmkit_store_list_deleted_secrets(s, NULL, 0, &n));
    CHECK(n > 3 && n < sizeof text);
    memset(text, 'Z', sizeof text);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_list_deleted_secrets(s, (uint8_t *)text, 2, &w));
    CHECK(w == n && text[0] == 'Z' && text[1] == 'Z');
    OK(hsmkit_store_list_deleted_secrets(s, (uint8_t *)text, sizeof text, &w));
    CHECK(w == n && text[0] == '[' && text[w - 2] == ']' && text[w - 1] == '\0');
    CHECK(strstr(text, "\"name\":\"typed\"") && strstr(text, "\"deleted_on\":\"20"));
    CHECK(strstr(text, "\"scheduled_purge\":\"20") && strstr(text, "\"name\":\"db\"") == NULL);
    OK(hsmkit_store_describe_secret(s, "typed", (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"name\":\"typed\"") && strstr(text, "\"deleted_on\":\"20"));
    CHECK(strstr(text, "\"deleted\":null") == NULL);
    OK(hsmkit_store_recover_deleted_secret(s, "typed", NULL));
    OK(hsmkit_store_list_deleted_secrets(s, (uint8_t *)text, sizeof text, &w));
    CHECK(strcmp(text, "[]") == 0);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_deleted_secrets(NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_deleted_secrets(s, NULL, 0, NULL));

    /* a rotation policy: shown by describe in ISO 8601; due when the current version
       expires within 30 days. "rot" expires in 3 days. */
    OK(hsmkit_store_set_secret(s, "rot", (const uint8_t *)"r1", 2, NULL, NONE, from_now(3 * 86400), 0, &v));
    OK(hsmkit_store_set_secret_rotation_policy(s, "rot", 0, 30 * 86400, 90 * 86400));
    OK(hsmkit_store_describe_secret(s, "rot", (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"rotation_policy\":{") && strstr(text, "\"rotate_before_expiry\":\"P30D\""));
    CHECK(strstr(text, "\"expires_after\":\"P90D\"") && strstr(text, "\"rotate_after\":null"));

    /* due within 0 s: "rot" by its policy, "gone" (expires in a day) not yet */
    OK(hsmkit_store_secrets_due(s, 0, NULL, 0, &n));
    CHECK(n > 3 && n < sizeof text);
    memset(text, 'Z', sizeof text);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_secrets_due(s, 0, (uint8_t *)text, n - 1, &w));
    CHECK(w == n);
    for (size_t i = 0; i < sizeof text; i++) CHECK(text[i] == 'Z');
    OK(hsmkit_store_secrets_due(s, 0, (uint8_t *)text, sizeof text, &w));
    CHECK(w == n && text[0] == '[' && text[w - 2] == ']' && text[w - 1] == '\0');
    CHECK(strstr(text, "\"name\":\"rot\"") && strstr(text, "\"reason\":\"expires within P30D\""));
    CHECK(strstr(text, "\"version\":1") && strstr(text, "\"expires\":\"20"));
    CHECK(strstr(text, "\"name\":\"gone\"") == NULL);
    /* within two days: "gone" too, for its expiry; any window (even past the end of time) */
    OK(hsmkit_store_secrets_due(s, 2 * 86400, (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"name\":\"rot\"") && strstr(text, "\"name\":\"gone\""));
    CHECK(strstr(text, "\"reason\":\"expires at 20") != NULL);
    CHECK(strstr(text, "\"name\":\"rot\"") > strstr(text, "\"name\":\"gone\"")); /* sorted by name */
    OK(hsmkit_store_secrets_due(s, UINT64_MAX, (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"name\":\"rot\"") && strstr(text, "\"name\":\"gone\""));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_secrets_due(NULL, 0, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_secrets_due(s, 0, NULL, 0, NULL));

    /* expires_after: a version set without an expiry gets one */
    OK(hsmkit_store_set_secret(s, "rot", (const uint8_t *)"r2", 2, NULL, NONE, NONE, 0, &v));
    CHECK(v == 2);
    hsmkit_secret *sec = get_secret(s, "rot", 2);
    OK(hsmkit_secret_info(sec, (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"expires\":\"20") != NULL);
    hsmkit_secret_free(sec);

    /* all three 0 removes the policy: describe shows none, "rot" is no longer due */
    OK(hsmkit_store_update_secret(s, "rot", 0,
                                  &(hsmkit_secret_update){.enabled = -1, .not_before = HSMKIT_TIME_UNCHANGED,
                                                          .expires = from_now(3 * 86400), .content_type = NULL}));
    OK(hsmkit_store_secrets_due(s, 0, (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"name\":\"rot\"") != NULL);
    OK(hsmkit_store_set_secret_rotation_policy(s, "rot", 0, 0, 0));
    OK(hsmkit_store_describe_secret(s, "rot", (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"rotation_policy\":null") != NULL);
    OK(hsmkit_store_secrets_due(s, 0, (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"name\":\"rot\"") == NULL);
    /* a policy of one field: the others are null */
    OK(hsmkit_store_set_secret_rotation_policy(s, "rot", 3600, 0, 0));
    OK(hsmkit_store_describe_secret(s, "rot", (uint8_t *)text, sizeof text, &w));
    CHECK(strstr(text, "\"rotate_after\":\"PT1H\"") && strstr(text, "\"expires_after\":null"));
    OK(hsmkit_store_set_secret_rotation_policy(s, "rot", 0, 0, 0));

    /* refused: no such secret, a deleted one, NULL arguments */
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_set_secret_rotation_policy(s, "nope", 1, 0, 0));
    OK(hsmkit_store_delete_secret(s, "rot"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_set_secret_rotation_policy(s, "rot", 1, 0, 0));
    OK(hsmkit_store_purge_deleted_secret(s, "rot"));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_secret_rotation_policy(s, "bad name!", 1, 0, 0));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_set_secret_rotation_policy(NULL, "db", 1, 0, 0));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_set_secret_rotation_policy(s, NULL, 1, 0, 0));
}

/* A backup blob, two-call: sizing, a too-small buffer left untouched, then the blob.
   `fn` is hsmkit_store_backup_secret or hsmkit_store_backup_key. */
typedef hsmkit_result (*backup_fn)(const hsmkit_store *, const char *, uint8_t *, size_t, size_t *);

static uint8_t *backup(hsmkit_store *s, backup_fn fn, const char *name, size_t *len) {
    size_t need = 0, w = 0;
    OK(fn(s, name, NULL, 0, &need));
    CHECK(need > 100);
    uint8_t *buf = malloc(need + 16);
    CHECK(buf != NULL);
    memset(buf, 'Z', need + 16);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, fn(s, name, buf, need - 1, &w));
    CHECK(w == need);
    for (size_t i = 0; i < need + 16; i++) CHECK(buf[i] == 'Z');
    /* a fresh backup, but the length the sizing call gave, exactly */
    OK(fn(s, name, buf, need + 16, &w));
    CHECK(w == need && buf[need] == 'Z');
    *len = w;
    return buf;
}

/* Whether `len` bytes at `hay` hold the `n` bytes at `needle`. */
static int contains(const uint8_t *hay, size_t len, const void *needle, size_t n) {
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0) return 1;
    return 0;
}

/* Restores of a blob with one bit flipped, at places from the header to the last byte:
   refused, and nothing restored. A flip in the sealed body or its tags (the last 64
   bytes) is the decryption code; one in the header may be malformed input instead. */
static void altered_refused(hsmkit_store *s, const uint8_t *blob, size_t len, int is_key) {
    const size_t spots[] = {0, 9, 40, len / 3, len / 2, len - 64, len - 40, len - 17, len - 1};
    uint8_t *bad = malloc(len);
    CHECK(bad != NULL);
    for (size_t i = 0; i < sizeof spots / sizeof *spots; i++) {
        size_t at = spots[i];
        memcpy(bad, blob, len);
        bad[at] ^= 0x01;
        hsmkit_key *k = NULL;
        uint32_t v = 0;
        hsmkit_result r =
            is_key ? hsmkit_store_restore_key(s, bad, len, &k) : hsmkit_store_restore_secret(s, bad, len, &v);
        if (at >= len - 64)
            EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, r);
        else
            CHECK(r == HSMKIT_ERR_DECRYPTION_FAILED || r == HSMKIT_ERR_INVALID_INPUT);
        CHECK(k == NULL);
    }
    free(bad);
}

/* Backup and restore: secrets on every store; keys where keys can leave the backend. */
static void test_backup(hsmkit_store *s) {
    const int64_t NONE = HSMKIT_TIME_NONE;
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (uint8_t)(i * 31 + 7);
    uint32_t v = 0;
    size_t n = 0, len = 0, len2 = 0;
    char text[8192];

    /* a secret of three versions (text, binary, empty), a content type, a disabled first
       version, a rotation policy */
    OK(hsmkit_store_set_secret(s, "bk", (const uint8_t *)"one", 3, NULL, NONE, NONE, 0, &v));
    OK(hsmkit_store_set_secret(s, "bk", bin, sizeof bin, "application/octet-stream", NONE, NONE, 0, &v));
    OK(hsmkit_store_set_secret(s, "bk", NULL, 0, NULL, NONE, NONE, 0, &v));
    CHECK(v == 3);
    hsmkit_secret_update off = {.enabled = 0, .not_before = HSMKIT_TIME_UNCHANGED,
                                .expires = HSMKIT_TIME_UNCHANGED, .content_type = NULL};
    OK(hsmkit_store_update_secret(s, "bk", 1, &off));
    OK(hsmkit_store_set_secret_rotation_policy(s, "bk", 0, 0, 7 * 86400));

    uint8_t *blob = backup(s, hsmkit_store_backup_secret, "bk", &len);
    uint8_t *blob2 = backup(s, hsmkit_store_backup_secret, "bk", &len2);
    CHECK(len2 == len && memcmp(blob, blob2, len) != 0); /* a new data key each time */
    CHECK(!contains(blob, len, bin, 16)); /* sealed */

    /* refused while the name is held: live, then deleted */
    v = 99;
    EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_restore_secret(s, blob, len, &v));
    CHECK(v == 99);
    OK(hsmkit_store_delete_secret(s, "bk"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_backup_secret(s, "bk", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_restore_secret(s, blob, len, &v));
    OK(hsmkit_store_purge_deleted_secret(s, "bk"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_secret(s, "bk", NULL, 0, &n));

    /* altered blobs: refused, nothing restored */
    altered_refused(s, blob, len, 0);
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_restore_secret(s, blob, len - 1, &v)); /* truncated */
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_restore_secret(s, blob, len / 2, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_restore_secret(s, blob, 10, &v)); /* not even a header */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_restore_secret(s, (const uint8_t *)"nonsense", 8, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_restore_secret(s, NULL, 0, &v));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_secret(s, "bk", NULL, 0, &n));

    /* the round trip: every version's value and attributes, and the policy */
    v = 0;
    OK(hsmkit_store_restore_secret(s, blob, len, &v));
    CHECK(v == 3);
    hsmkit_secret *sec = NULL;
    EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_store_get_secret(s, "bk", 1, &sec)); /* still disabled */
    off.enabled = 1;
    OK(hsmkit_store_update_secret(s, "bk", 1, &off));
    sec = get_secret(s, "bk", 1);
    CHECK(secret_is(sec, "one", 3));
    hsmkit_secret_free(sec);
    sec = get_secret(s, "bk", 2);
    CHECK(secret_is(sec, bin, sizeof bin));
    OK(hsmkit_secret_content_type(sec, (uint8_t *)text, sizeof text, &n));
    CHECK(strcmp(text, "application/octet-stream") == 0);
    hsmkit_secret_free(sec);
    sec = get_secret(s, "bk", 0);
    OK(hsmkit_secret_version(sec, &v));
    CHECK(v == 3 && secret_is(sec, "", 0));
    hsmkit_secret_free(sec);
    OK(hsmkit_store_describe_secret(s, "bk", (uint8_t *)text, sizeof text, &n));
    CHECK(strstr(text, "\"current_version\":3") && strstr(text, "\"expires_after\":\"P7D\""));
    CHECK(strstr(text, "\"deleted\":null") != NULL);
    /* the second blob is as good; the version out-pointer may be NULL */
    OK(hsmkit_store_delete_secret(s, "bk"));
    OK(hsmkit_store_purge_deleted_secret(s, "bk"));
    OK(hsmkit_store_restore_secret(s, blob2, len2, NULL));
    sec = get_secret(s, "bk", 2);
    CHECK(secret_is(sec, bin, sizeof bin));
    hsmkit_secret_free(sec);

    /* another store (its own backup key, or none yet) cannot open it */
    hsmkit_store *other = NULL;
    OK(hsmkit_store_open("memory:", NULL, &other));
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_restore_secret(other, blob, len, &v));
    OK(hsmkit_store_set_secret(other, "o", (const uint8_t *)"x", 1, NULL, NONE, NONE, 0, &v));
    size_t olen = 0;
    uint8_t *oblob = backup(other, hsmkit_store_backup_secret, "o", &olen);
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_restore_secret(other, blob, len, &v));
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_restore_secret(s, oblob, olen, &v));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_secret(s, "o", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_secret(other, "bk", NULL, 0, &n));

    /* NULL arguments and names */
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_backup_secret(NULL, "bk", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_backup_secret(s, NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_backup_secret(s, "bk", NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_backup_secret(s, "nope", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_backup_secret(s, "bad name!", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_restore_secret(NULL, blob, len, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_restore_secret(s, NULL, len, &v));

    /* keys: a signing key of two versions with a rotation policy */
    hsmkit_key *k1 = create(s, "bkey", "P-256", NULL), *k = NULL;
    OK(hsmkit_store_rotate_key(s, "bkey", &k));
    hsmkit_key_free(k);
    k = NULL;
    OK(hsmkit_store_set_rotation_policy(s, "bkey", 0, 0, 30 * 86400));
    const uint8_t msg[] = "backed up";
    uint8_t sig[64];
    size_t sig_len = 0;
    OK(hsmkit_key_sign(k1, "ES256", 0, msg, sizeof msg, sig, sizeof sig, &sig_len));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_backup_key(NULL, "bkey", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_backup_key(s, NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_backup_key(s, "bkey", NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_restore_key(NULL, blob, len, &k));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_restore_key(s, NULL, len, &k));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_restore_key(s, blob, len, NULL));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_restore_key(s, blob, len, &k)); /* a secret backup */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_restore_key(s, NULL, 0, &k));
    CHECK(k == NULL);
    /* a key backup made elsewhere does not open here, on any store */
    hsmkit_key *ok = create(other, "okey", "AES-256", NULL);
    hsmkit_key_free(ok);
    size_t oklen = 0;
    uint8_t *okblob = backup(other, hsmkit_store_backup_key, "okey", &oklen);
    EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_restore_key(s, okblob, oklen, &k));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_restore_secret(other, okblob, oklen, &v)); /* a key backup */
    CHECK(k == NULL);

    if (is_pkcs11) {
        /* a token's keys never leave it: typed, sizing or not */
        EXPECT(HSMKIT_ERR_UNSUPPORTED, hsmkit_store_backup_key(s, "bkey", NULL, 0, &n));
        CHECK(strcmp(hsmkit_last_error_reason(), "operation") == 0);
        EXPECT(HSMKIT_ERR_UNSUPPORTED, hsmkit_store_backup_key(s, "bkey", (uint8_t *)text, sizeof text, &n));
    } else {
        uint8_t *kblob = backup(s, hsmkit_store_backup_key, "bkey", &len);
        uint8_t *kblob2 = backup(s, hsmkit_store_backup_key, "bkey", &len2);
        CHECK(len2 == len && memcmp(kblob, kblob2, len) != 0);
        EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_restore_key(s, kblob, len, &k));
        OK(hsmkit_store_delete_key(s, "bkey"));
        EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_backup_key(s, "bkey", NULL, 0, &n));
        EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_restore_key(s, kblob, len, &k));
        OK(hsmkit_store_purge_deleted_key(s, "bkey"));
        altered_refused(s, kblob, len, 1);
        EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_restore_secret(s, kblob, len, &v)); /* a key backup */
        EXPECT(HSMKIT_ERR_DECRYPTION_FAILED, hsmkit_store_restore_key(other, kblob, len, &k));
        EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_key(s, "bkey", 0, &k));
        CHECK(k == NULL);

        /* the round trip: the current version in *out, the same material in every
           version (version 1 verifies what it signed before), the policy */
        OK(hsmkit_store_restore_key(s, kblob, len, &k));
        CHECK(k != NULL);
        OK(hsmkit_key_version(k, &v));
        CHECK(v == 2);
        hsmkit_key_free(k);
        k = NULL;
        OK(hsmkit_store_get_key(s, "bkey", 1, &k));
        OK(hsmkit_key_verify(k, "ES256", 0, msg, sizeof msg, sig, sig_len));
        hsmkit_key_free(k);
        k = NULL;
        OK(hsmkit_store_describe_key(s, "bkey", (uint8_t *)text, sizeof text, &n));
        CHECK(strstr(text, "\"current_version\":2") && strstr(text, "\"expires_after\":\"P30D\""));
        /* the second blob is as good */
        OK(hsmkit_store_delete_key(s, "bkey"));
        OK(hsmkit_store_purge_deleted_key(s, "bkey"));
        OK(hsmkit_store_restore_key(s, kblob2, len2, &k));
        hsmkit_key_free(k);
        k = NULL;
        OK(hsmkit_store_get_key(s, "bkey", 1, &k));
        OK(hsmkit_key_verify(k, "ES256", 0, msg, sizeof msg, sig, sig_len));
        hsmkit_key_free(k);
        /* the backup key is not backed up under itself */
        EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_backup_key(s, "hsmkit-backup", NULL, 0, &n));
        EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_backup_key(s, "nope", NULL, 0, &n));
        free(kblob);
        free(kblob2);
    }
    hsmkit_key_free(k1);
    hsmkit_store_free(other);
    free(okblob);
    free(oblob);
    free(blob);
    free(blob2);
}

/* ---------------------------------------------------------------- signed artifacts */

/* A file in the scratch directory. */
static const char *scratch(const char *name) {
    static char path[8][4096];
    static int next = 0;
    char *p = path[next];
    next = (next + 1) % 8;
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

/* The whole file, NUL-terminated (not counted in *len); the caller frees it. */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long size = ftell(f);
    CHECK(size >= 0 && fseek(f, 0, SEEK_SET) == 0);
    uint8_t *buf = malloc((size_t)size + 1);
    CHECK(buf != NULL);
    CHECK(fread(buf, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    buf[size] = 0;
    *len = (size_t)size;
    return buf;
}

/* A shell command (openssl, an independent implementation) that must succeed. */
static void run_ok(const char *cmd) {
    checks++;
    if (system(cmd) != 0) {
        fprintf(stderr, "%s:%d: command failed: %s\n", __FILE__, __LINE__, cmd);
        exit(1);
    }
}

/* A certificate's PEM, two-call into a fresh buffer; the caller frees it. */
static char *cert_pem(const hsmkit_cert *c) {
    size_t need = 0, n = 0;
    OK(hsmkit_cert_export(c, HSMKIT_CERT_PEM, NULL, 0, &need));
    char *pem = malloc(need);
    CHECK(pem != NULL);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_cert_export(c, HSMKIT_CERT_PEM, (uint8_t *)pem, need - 1, &n));
    CHECK(n == need);
    OK(hsmkit_cert_export(c, HSMKIT_CERT_PEM, (uint8_t *)pem, need, &n));
    CHECK(n == need && pem[n - 1] == '\0' && strlen(pem) == n - 1);
    CHECK(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    return pem;
}

static char *csr_pem(const hsmkit_csr *c) {
    size_t need = 0, n = 0;
    OK(hsmkit_csr_export(c, HSMKIT_CERT_PEM, NULL, 0, &need));
    char *pem = malloc(need);
    CHECK(pem != NULL);
    OK(hsmkit_csr_export(c, HSMKIT_CERT_PEM, (uint8_t *)pem, need, &n));
    CHECK(n == need && pem[n - 1] == '\0');
    CHECK(strncmp(pem, "-----BEGIN CERTIFICATE REQUEST-----\n", 36) == 0);
    return pem;
}

/* A self-signed CA in the store: its key and certificate. */
static hsmkit_cert *make_ca(hsmkit_store *s, const char *name, hsmkit_key **key) {
    *key = create(s, name, "P-256", NULL);
    hsmkit_x509_params p = {0};
    p.subject = "CN=hsmkit C test CA,O=hsmkit";
    p.flags = HSMKIT_X509_CA | HSMKIT_X509_PATH_LEN;
    p.path_len = 0;
    p.validity_days = 30;
    hsmkit_cert *ca = NULL;
    OK(hsmkit_key_self_signed_certificate(*key, &p, &ca));
    CHECK(ca != NULL);
    return ca;
}

/* Requests, self-signed and issued certificates, through the library and openssl. */
static void test_x509(hsmkit_store *s) {
    hsmkit_key *ca_key = NULL;
    hsmkit_cert *ca = make_ca(s, "x509-ca", &ca_key);
    char info[4096];
    size_t n = 0, need = 0;
    OK(hsmkit_cert_info(ca, (uint8_t *)info, sizeof info, &n));
    CHECK(strstr(info, "\"subject\":\"CN=hsmkit C test CA,O=hsmkit\"") && strstr(info, "\"ca\":true") &&
          strstr(info, "\"path_len\":0") && strstr(info, "\"keyCertSign\"") && strstr(info, "\"thumbprint_sha256\":\""));
    OK(hsmkit_cert_verify_issued_by(ca, ca)); /* a root signs itself */

    /* a request with names and usages: the library and openssl check its signature */
    hsmkit_key *leaf_key = create(s, "x509-leaf", "P-256", NULL);
    const char *sans[] = {"dns:leaf.example", "ip:10.0.0.1"};
    hsmkit_x509_params p = {0};
    p.subject = "/O=hsmkit/CN=leaf.example";
    p.sans = sans;
    p.san_count = 2;
    p.extended_key_usage = "serverAuth,clientAuth";
    hsmkit_csr *csr = NULL;
    OK(hsmkit_key_create_csr(leaf_key, &p, &csr));
    OK(hsmkit_csr_verify(csr));
    OK(hsmkit_csr_info(csr, (uint8_t *)info, sizeof info, &n));
    CHECK(strstr(info, "\"subject\":\"CN=leaf.example,O=hsmkit\"") && strstr(info, "\"dns:leaf.example\"") &&
          strstr(info, "\"ip:10.0.0.1\"") && strstr(info, "BEGIN PUBLIC KEY"));
    char *req = csr_pem(csr);
    write_file(scratch("leaf.csr"), req, strlen(req));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "openssl req -verify -noout -in '%s' 2>/dev/null", scratch("leaf.csr"));
    run_ok(cmd);
    /* DER, and both parse back to the same request */
    uint8_t der[2048];
    OK(hsmkit_csr_export(csr, HSMKIT_CERT_DER, der, sizeof der, &n));
    CHECK(der[0] == 0x30);
    hsmkit_csr *again = NULL;
    OK(hsmkit_csr_parse(s, der, n, &again));
    char *req2 = csr_pem(again);
    CHECK(strcmp(req, req2) == 0);
    hsmkit_csr_free(again);
    again = NULL;
    OK(hsmkit_csr_parse(s, (const uint8_t *)req, strlen(req), &again));
    hsmkit_csr_free(again);
    again = NULL;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_csr_parse(s, (const uint8_t *)"junk", 4, &again));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_csr_export(csr, HSMKIT_CERT_PEM_CHAIN, NULL, 0, &n));
    CHECK(again == NULL);

    /* the CA issues it; the leaf chains to the CA (library and openssl), not the reverse */
    hsmkit_cert *leaf = NULL;
    hsmkit_issue_params ip = {0};
    ip.validity_days = 7;
    OK(hsmkit_key_issue_certificate(ca_key, ca, csr, &ip, &leaf));
    OK(hsmkit_cert_verify_issued_by(leaf, ca));
    EXPECT(HSMKIT_ERR_VERIFICATION_FAILED, hsmkit_cert_verify_issued_by(ca, leaf));
    OK(hsmkit_cert_info(leaf, (uint8_t *)info, sizeof info, &n));
    CHECK(strstr(info, "\"issuer\":\"CN=hsmkit C test CA,O=hsmkit\"") && strstr(info, "\"ca\":false") &&
          strstr(info, "\"dns:leaf.example\""));
    char *ca_pem = cert_pem(ca), *leaf_pem = cert_pem(leaf);
    write_file(scratch("ca.pem"), ca_pem, strlen(ca_pem));
    write_file(scratch("leaf.pem"), leaf_pem, strlen(leaf_pem));
    snprintf(cmd, sizeof cmd, "openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", scratch("ca.pem"),
             scratch("leaf.pem"));
    run_ok(cmd);
    /* a NULL issue_params is the defaults */
    hsmkit_cert *leaf2 = NULL;
    OK(hsmkit_key_issue_certificate(ca_key, ca, csr, NULL, &leaf2));
    OK(hsmkit_cert_verify_issued_by(leaf2, ca));
    hsmkit_cert_free(leaf2);
    leaf2 = NULL;
    /* the wrong key for the CA certificate, or a CA that is no CA */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_issue_certificate(leaf_key, ca, csr, NULL, &leaf2));
    CHECK(strcmp(hsmkit_last_error_reason(), "key-mismatch") == 0);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_issue_certificate(leaf_key, leaf, csr, NULL, &leaf2));
    ip.flags = HSMKIT_X509_PATH_LEN; /* a path length without CA */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_issue_certificate(ca_key, ca, csr, &ip, &leaf2));
    ip.flags = 0x80;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_issue_certificate(ca_key, ca, csr, &ip, &leaf2));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_issue_certificate(ca_key, NULL, csr, NULL, &leaf2));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_issue_certificate(ca_key, ca, NULL, NULL, &leaf2));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_issue_certificate(ca_key, ca, csr, NULL, NULL));
    CHECK(leaf2 == NULL);

    /* certificates parse from PEM and DER to the same bytes */
    OK(hsmkit_cert_export(leaf, HSMKIT_CERT_DER, NULL, 0, &need));
    OK(hsmkit_cert_export(leaf, HSMKIT_CERT_DER, der, sizeof der, &n));
    CHECK(n == need && der[0] == 0x30);
    hsmkit_cert *parsed = NULL;
    OK(hsmkit_cert_parse(s, der, n, &parsed));
    char *parsed_pem = cert_pem(parsed);
    CHECK(strcmp(parsed_pem, leaf_pem) == 0);
    OK(hsmkit_cert_verify_issued_by(parsed, ca));
    hsmkit_cert_free(parsed);
    parsed = NULL;
    free(parsed_pem);
    OK(hsmkit_cert_parse(s, (const uint8_t *)leaf_pem, strlen(leaf_pem), &parsed));
    hsmkit_cert_free(parsed);
    parsed = NULL;
    der[10] ^= 0xFF;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_cert_parse(s, der, n, &parsed));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_cert_parse(s, (const uint8_t *)req, strlen(req), &parsed));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_cert_parse(NULL, der, n, &parsed));
    CHECK(parsed == NULL);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_cert_export(leaf, 2, der, sizeof der, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_cert_export(leaf, 0xFFFFFFFFu, der, sizeof der, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_cert_export(leaf, HSMKIT_CERT_DER, der, sizeof der, NULL));

    /* parameters are checked */
    hsmkit_csr *bad = NULL;
    const char *bad_san[] = {"dns:has space"};
    hsmkit_x509_params q = {0};
    q.subject = "CN=x";
    q.sans = bad_san;
    q.san_count = 1;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_create_csr(leaf_key, &q, &bad));
    q.sans = NULL; /* with a count */
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_create_csr(leaf_key, &q, &bad));
    q.san_count = 0;
    q.key_usage = "digitalSignature,frobnicate";
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_create_csr(leaf_key, &q, &bad));
    q.key_usage = NULL;
    q.signature_algorithm = "RS256"; /* not an EC key's */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_create_csr(leaf_key, &q, &bad));
    q.signature_algorithm = NULL;
    q.flags = HSMKIT_X509_CA | HSMKIT_X509_PATH_LEN;
    q.path_len = 256;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_create_csr(leaf_key, &q, &bad));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_create_csr(leaf_key, NULL, &bad));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_create_csr(NULL, &p, &bad));
    CHECK(bad == NULL);
    hsmkit_cert *bad_cert = NULL;
    hsmkit_x509_params empty = {0}; /* no subject, no names */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_self_signed_certificate(leaf_key, &empty, &bad_cert));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_self_signed_certificate(leaf_key, &p, NULL));
    CHECK(bad_cert == NULL);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_cert_verify_issued_by(leaf, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_csr_verify(NULL));

    hsmkit_cert_free(NULL);
    hsmkit_csr_free(NULL);
    free(req);
    free(req2);
    free(ca_pem);
    free(leaf_pem);
    hsmkit_cert_free(leaf);
    hsmkit_csr_free(csr);
    hsmkit_cert_free(ca);
    hsmkit_key_free(leaf_key);
    hsmkit_key_free(ca_key);
}

/* A token, two-call: the sizing call's length is enough, the second call's exact. */
static char *jwt(hsmkit_key *k, const char *alg, const char *claims, const char *header, uint64_t expires_in,
                 int64_t nbf, uint32_t flags) {
    size_t bound = 0, n = 0;
    OK(hsmkit_key_jwt_sign(k, alg, claims, header, expires_in, nbf, flags, NULL, 0, &bound));
    char *token = malloc(bound);
    CHECK(token != NULL);
    OK(hsmkit_key_jwt_sign(k, alg, claims, header, expires_in, nbf, flags, (uint8_t *)token, bound, &n));
    CHECK(n >= 1 && n <= bound && token[n - 1] == '\0' && strlen(token) == n - 1);
    return token;
}

/* Flips one base64url character of part `part` (0 header, 1 payload, 2 signature). */
static void tamper(char *token, int part) {
    char *p = token;
    for (int i = 0; i < part; i++) p = strchr(p, '.') + 1;
    p += 5;
    *p = *p == 'A' ? 'B' : 'A';
}

static void test_jose(hsmkit_store *s) {
    hsmkit_key *k = create(s, "jwt-signer", "P-256", NULL);
    hsmkit_key *r = create(s, "jwt-rsa", "RSA-2048", NULL);
    char claims[4096];
    size_t n = 0;
    const char *aud[] = {"payments"};
    hsmkit_jwt_validation v = {0};
    v.audiences = aud;
    v.audience_count = 1;
    v.leeway_secs = 60;

    /* sign, then verify through the store (the kid picks the key) and with the key */
    char *token = jwt(k, "ES256", "{\"sub\":\"alice\",\"aud\":\"payments\",\"n\":1E5}", NULL, 3600, 0, 0);
    OK(hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n)); /* verified; the claims' length */
    size_t need = n;
    OK(hsmkit_store_jwt_verify(s, token, &v, (uint8_t *)claims, sizeof claims, &n));
    CHECK(n == need && claims[n - 1] == '\0');
    CHECK(strstr(claims, "\"sub\":\"alice\"") && strstr(claims, "\"exp\":") && strstr(claims, "\"iat\":"));
    OK(hsmkit_key_jwt_verify(k, token, &v, (uint8_t *)claims, sizeof claims, &n));
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_jwt_verify(s, token, &v, (uint8_t *)claims, 4, &n));
    CHECK(n == need);
    /* the defaults expect no audience: a token naming one is refused */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, token, NULL, NULL, 0, &n));
    CHECK(strstr(last_error(), "aud") != NULL);
    /* another key's signature does not verify */
    hsmkit_key *other = create(s, "jwt-other", "P-256", NULL);
    EXPECT(HSMKIT_ERR_VERIFICATION_FAILED, hsmkit_key_jwt_verify(other, token, &v, NULL, 0, &n));
    hsmkit_key_free(other);
    /* tampered payload or signature: the signature check fails; a broken header is refused */
    for (int part = 0; part < 3; part++) {
        char *t = strdup(token);
        CHECK(t != NULL);
        tamper(t, part);
        hsmkit_result res = hsmkit_store_jwt_verify(s, t, &v, NULL, 0, &n);
        checks++;
        CHECK(part == 0 ? res == HSMKIT_ERR_INVALID_INPUT : res == HSMKIT_ERR_VERIFICATION_FAILED);
        free(t);
    }
    /* expired at the validation's now; not accepted algorithms; a wrong issuer */
    v.now = (int64_t)time(NULL) + 7200;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n));
    CHECK(strstr(last_error(), "expired") != NULL);
    v.now = 0;
    v.algorithms = "RS256,PS256";
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n));
    v.algorithms = "ES256";
    OK(hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n));
    v.algorithms = "";
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n));
    v.algorithms = NULL;
    v.issuer = "https://issuer.example";
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n));
    v.issuer = NULL;
    v.flags = 0x10;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n));
    v.flags = 0;
    free(token);

    /* without exp: refused unless optional; a header of our own; RSA; nbf */
    token = jwt(r, "PS256", "{\"iss\":\"https://issuer.example\"}", "{\"typ\":\"at+jwt\",\"cty\":\"x\"}", 0,
                (int64_t)time(NULL) - 10, HSMKIT_JWT_NO_IAT);
    v.audiences = NULL; /* it names no audience */
    v.audience_count = 0;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n));
    CHECK(strstr(last_error(), "exp") != NULL);
    v.flags = HSMKIT_JWT_EXP_OPTIONAL;
    v.issuer = "https://issuer.example";
    OK(hsmkit_store_jwt_verify(s, token, &v, (uint8_t *)claims, sizeof claims, &n));
    CHECK(strstr(claims, "\"nbf\":") && !strstr(claims, "\"iat\""));
    const char *required[] = {"sub"};
    v.required = required;
    v.required_count = 1;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, token, &v, NULL, 0, &n));
    free(token);

    /* refused before signing: the wrong algorithm for the key (sizing too), claims that
       are no object, a claim the options set too, reserved header members, flags */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_jwt_sign(k, "RS256", "{}", NULL, 60, 0, 0, NULL, 0, &n));
    CHECK(strcmp(hsmkit_last_error_reason(), "key-mismatch") == 0);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_jwt_sign(k, "none", "{}", NULL, 60, 0, 0, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_jwt_sign(k, "ES256", "[1]", NULL, 60, 0, 0, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_jwt_sign(k, "ES256", "{", NULL, 60, 0, 0, NULL, 0, &n));
    char buf[2048];
    EXPECT(HSMKIT_ERR_INVALID_INPUT,
           hsmkit_key_jwt_sign(k, "ES256", "{\"iat\":1}", NULL, 60, 0, 0, (uint8_t *)buf, sizeof buf, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT,
           hsmkit_key_jwt_sign(k, "ES256", "{}", "{\"kid\":\"x/1\"}", 60, 0, 0, (uint8_t *)buf, sizeof buf, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_jwt_sign(k, "ES256", "{}", NULL, 60, 0, 2, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_jwt_sign(k, "ES256", "{}", NULL, 60, -5, 0, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_jwt_sign(k, "ES256", NULL, NULL, 60, 0, 0, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_jwt_sign(k, "ES256", "{}", NULL, 60, 0, 0, NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_key_jwt_sign(k, "ES256", "{}", NULL, 60, 0, 0, (uint8_t *)buf, 10, &n));
    CHECK(n > 10);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_jwt_verify(s, NULL, NULL, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jwt_verify(s, "a.b", NULL, NULL, 0, &n));

    /* JWS over bytes */
    const uint8_t payload[] = {0, 1, 2, 'j', 'w', 's', 0xFF};
    size_t bound = 0;
    OK(hsmkit_key_jws_sign(k, "ES256", "{\"cty\":\"bytes\"}", payload, sizeof payload, NULL, 0, &bound));
    char *jws = malloc(bound);
    CHECK(jws != NULL);
    OK(hsmkit_key_jws_sign(k, "ES256", "{\"cty\":\"bytes\"}", payload, sizeof payload, (uint8_t *)jws, bound, &n));
    CHECK(n <= bound && jws[n - 1] == '\0');
    uint8_t got[64];
    OK(hsmkit_store_jws_verify(s, jws, NULL, got, sizeof got, &n));
    CHECK(n == sizeof payload && memcmp(got, payload, n) == 0);
    OK(hsmkit_key_jws_verify(k, jws, "ES256", got, sizeof got, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_jws_verify(s, jws, "ES384", got, sizeof got, &n));
    tamper(jws, 2);
    EXPECT(HSMKIT_ERR_VERIFICATION_FAILED, hsmkit_store_jws_verify(s, jws, NULL, got, sizeof got, &n));
    free(jws);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_key_jws_sign(k, "ES256", "{\"crit\":[\"x\"]}", payload, 1, (uint8_t *)buf,
                                                        sizeof buf, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_key_jws_sign(k, "ES256", NULL, NULL, 1, NULL, 0, &n));
    /* an empty payload, no header */
    OK(hsmkit_key_jws_sign(k, "ES256", NULL, NULL, 0, (uint8_t *)buf, sizeof buf, &n));
    OK(hsmkit_store_jws_verify(s, buf, NULL, NULL, 0, &n));
    CHECK(n == 0);

    /* the JWK Set a relying party fetches */
    const char *names[] = {"jwt-signer", "jwt-rsa", "jwt-signer"};
    OK(hsmkit_store_jwks(s, names, 3, NULL, 0, &need));
    char *jwks = malloc(need);
    CHECK(jwks != NULL);
    OK(hsmkit_store_jwks(s, names, 3, (uint8_t *)jwks, need, &n));
    CHECK(n == need && strstr(jwks, "\"kid\":\"jwt-signer/1\"") && strstr(jwks, "\"kid\":\"jwt-rsa/1\"") &&
          strstr(jwks, "\"alg\":\"ES256\"") && strstr(jwks, "\"use\":\"sig\""));
    free(jwks);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_jwks(s, (const char *[]){"no-such-key"}, 1, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_jwks(s, NULL, 1, NULL, 0, &n));
    OK(hsmkit_store_jwks(s, NULL, 0, (uint8_t *)buf, sizeof buf, &n));
    CHECK(strcmp(buf, "{\"keys\":[]}") == 0);
    hsmkit_key_free(k);
    hsmkit_key_free(r);
}

/* The JSON of a certificate, into a static buffer. */
static const char *describe_cert(hsmkit_store *s, const char *name) {
    static char text[16384];
    size_t n = 0;
    OK(hsmkit_store_describe_certificate(s, name, (uint8_t *)text, sizeof text, &n));
    return text;
}

static uint32_t create_cert(hsmkit_store *s, const char *name, const char *subject, uint32_t issuer, uint32_t flags) {
    hsmkit_certificate_policy p = {0};
    p.subject = subject;
    p.key_spec = "P-256";
    p.issuer = issuer;
    p.flags = flags;
    uint32_t v = 99;
    OK(hsmkit_store_create_certificate(s, name, &p, &v));
    return v;
}

/* Certificates as store objects: self-signed, pending and merged, imported, deleted. */
static void test_certificates(hsmkit_store *s) {
    char text[16384];
    size_t n = 0, need = 0;
    uint32_t v = 99;

    /* self-signed: version 1 at once, as PEM, DER and chain; its policy and versions */
    const char *sans[] = {"dns:self.example", "email:ops@self.example"};
    hsmkit_certificate_policy p = {0};
    p.subject = "CN=self.example";
    p.sans = sans;
    p.san_count = 2;
    p.key_spec = "P-256";
    p.extended_key_usage = "serverAuth";
    p.flags = is_pkcs11 ? 0 : HSMKIT_CERT_EXPORTABLE;
    p.validity_months = 3;
    p.days_before_expiry = 10;
    OK(hsmkit_store_create_certificate(s, "self-cert", &p, &v));
    CHECK(v == 1);
    OK(hsmkit_store_get_certificate(s, "self-cert", 0, HSMKIT_CERT_PEM, NULL, 0, &need));
    char *pem = malloc(need);
    CHECK(pem != NULL);
    EXPECT(HSMKIT_ERR_BUFFER_TOO_SMALL, hsmkit_store_get_certificate(s, "self-cert", 0, HSMKIT_CERT_PEM,
                                                                    (uint8_t *)pem, need - 1, &n));
    OK(hsmkit_store_get_certificate(s, "self-cert", 0, HSMKIT_CERT_PEM, (uint8_t *)pem, need, &n));
    CHECK(n == need && strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0 && pem[n - 1] == '\0');
    OK(hsmkit_store_get_certificate(s, "self-cert", 1, HSMKIT_CERT_PEM_CHAIN, (uint8_t *)text, sizeof text, &n));
    CHECK(strcmp(text, pem) == 0); /* self-signed: a chain of one */
    uint8_t der[2048];
    OK(hsmkit_store_get_certificate(s, "self-cert", 1, HSMKIT_CERT_DER, der, sizeof der, &n));
    hsmkit_cert *c = NULL;
    OK(hsmkit_cert_parse(s, der, n, &c));
    char *again = cert_pem(c);
    CHECK(strcmp(again, pem) == 0);
    free(again);
    OK(hsmkit_cert_verify_issued_by(c, c));
    OK(hsmkit_cert_info(c, (uint8_t *)text, sizeof text, &n));
    CHECK(strstr(text, "\"subject\":\"CN=self.example\"") && strstr(text, "\"email:ops@self.example\""));
    hsmkit_cert_free(c);
    c = NULL;
    write_file(scratch("self.pem"), pem, strlen(pem));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "openssl x509 -noout -in '%s' -ext extendedKeyUsage | grep -q 'TLS Web Server'",
             scratch("self.pem"));
    run_ok(cmd);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_get_certificate(s, "self-cert", 0, 3, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_certificate(s, "self-cert", 7, HSMKIT_CERT_PEM, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_certificate(s, "nope", 0, HSMKIT_CERT_PEM, NULL, 0, &n));
    const char *d = describe_cert(s, "self-cert");
    CHECK(strstr(d, "\"current_version\":1") && strstr(d, "\"issuer\":\"Self\"") &&
          strstr(d, "\"days_before_expiry\":10") && strstr(d, "\"validity_months\":3") &&
          strstr(d, "\"key_spec\":\"EC-P-256\"") && strstr(d, "\"pending\":null"));
    /* its key is a key of the same name, and signs */
    hsmkit_key *k = NULL;
    OK(hsmkit_store_get_key(s, "self-cert", 0, &k));
    uint8_t sig[64];
    OK(hsmkit_key_sign(k, "ES256", 0, (const uint8_t *)"m", 1, sig, sizeof sig, &n));
    hsmkit_key_free(k);
    k = NULL;

    /* renewal makes version 2 (a new key version); version 1 stays */
    OK(hsmkit_store_renew_certificate(s, "self-cert", &v));
    CHECK(v == 2);
    OK(hsmkit_store_list_certificate_versions(s, "self-cert", (uint8_t *)text, sizeof text, &n));
    CHECK(strstr(text, "\"version\":1") && strstr(text, "\"version\":2") && strstr(text, "\"kid\":\"self-cert/2\""));
    OK(hsmkit_store_get_certificate(s, "self-cert", 1, HSMKIT_CERT_PEM, (uint8_t *)text, sizeof text, &n));
    CHECK(strcmp(text, pem) == 0);
    OK(hsmkit_store_get_certificate(s, "self-cert", 0, HSMKIT_CERT_PEM, (uint8_t *)text, sizeof text, &n));
    CHECK(strcmp(text, pem) != 0);
    free(pem);

    /* the key, where it may leave the store */
    if (!is_pkcs11) {
        OK(hsmkit_store_export_certificate_key(s, "self-cert", 0, NULL, 0, &need));
        char *key_pem = malloc(need);
        CHECK(key_pem != NULL);
        OK(hsmkit_store_export_certificate_key(s, "self-cert", 1, (uint8_t *)key_pem, need, &n));
        CHECK(n == need && strncmp(key_pem, "-----BEGIN PRIVATE KEY-----", 27) == 0);
        memset(key_pem, 0, need);
        free(key_pem);
    }

    /* the policy is checked, and replaced */
    p.lifetime_percentage = 50; /* and days_before_expiry */
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_certificate_policy(s, "self-cert", &p));
    p.days_before_expiry = 0;
    p.issuer = 2;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_certificate_policy(s, "self-cert", &p));
    p.issuer = HSMKIT_ISSUER_SELF;
    p.validity_months = 1201;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_certificate_policy(s, "self-cert", &p));
    p.validity_months = 0;
    p.lifetime_percentage = 100;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_certificate_policy(s, "self-cert", &p));
    p.lifetime_percentage = 50;
    p.flags |= 0x100;
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_set_certificate_policy(s, "self-cert", &p));
    p.flags &= ~0x100u;
    OK(hsmkit_store_set_certificate_policy(s, "self-cert", &p));
    CHECK(strstr(describe_cert(s, "self-cert"), "\"lifetime_percentage\":50"));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_set_certificate_policy(s, "self-cert", NULL));

    /* nothing is due yet */
    OK(hsmkit_store_certificates_due(s, (uint8_t *)text, sizeof text, &n));
    CHECK(strcmp(text, "[]") == 0);
    size_t renewed = 99;
    OK(hsmkit_store_renew_due_certificates(s, &renewed));
    CHECK(renewed == 0);
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_renew_due_certificates(s, NULL));

    /* issuer Unknown: a pending request, signed by a CA, merged */
    hsmkit_key *ca_key = NULL;
    hsmkit_cert *ca = make_ca(s, "cert-ca", &ca_key);
    v = create_cert(s, "ext-cert", "CN=ext.example", HSMKIT_ISSUER_UNKNOWN, 0);
    CHECK(v == 0);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_certificate(s, "ext-cert", 0, HSMKIT_CERT_PEM, NULL, 0, &n));
    CHECK(strstr(describe_cert(s, "ext-cert"), "BEGIN CERTIFICATE REQUEST") != NULL);
    hsmkit_csr *csr = NULL;
    uint32_t kv = 0;
    OK(hsmkit_store_get_pending_certificate(s, "ext-cert", &kv, &csr));
    CHECK(kv == 1);
    OK(hsmkit_csr_verify(csr));
    hsmkit_cert *issued = NULL;
    OK(hsmkit_key_issue_certificate(ca_key, ca, csr, NULL, &issued));
    hsmkit_csr_free(csr);
    csr = NULL;
    /* a certificate for another key is refused, typed, and changes nothing */
    hsmkit_key *stranger = create(s, "stranger", "P-256", NULL);
    hsmkit_x509_params sp = {0};
    sp.subject = "CN=ext.example";
    OK(hsmkit_key_create_csr(stranger, &sp, &csr));
    hsmkit_cert *wrong = NULL;
    OK(hsmkit_key_issue_certificate(ca_key, ca, csr, NULL, &wrong));
    char *wrong_pem = cert_pem(wrong);
    EXPECT(HSMKIT_ERR_INVALID_INPUT,
           hsmkit_store_merge_certificate(s, "ext-cert", (const uint8_t *)wrong_pem, strlen(wrong_pem), &v));
    CHECK(strcmp(hsmkit_last_error_reason(), "key-mismatch") == 0);
    hsmkit_csr_free(csr);
    csr = NULL;
    OK(hsmkit_store_get_pending_certificate(s, "ext-cert", NULL, &csr)); /* still pending */
    hsmkit_csr_free(csr);
    csr = NULL;
    free(wrong_pem);
    hsmkit_cert_free(wrong);
    hsmkit_key_free(stranger);
    /* the CA first is refused (the first certificate must be the leaf); leaf then CA merges as version 1 */
    char *leaf_pem = cert_pem(issued), *ca_pem = cert_pem(ca);
    size_t ll = strlen(leaf_pem), cl = strlen(ca_pem);
    char *chain = malloc(ll + cl + 1);
    CHECK(chain != NULL);
    memcpy(chain, ca_pem, cl);
    memcpy(chain + cl, leaf_pem, ll + 1);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_merge_certificate(s, "ext-cert", (const uint8_t *)chain, ll + cl, &v));
    memcpy(chain, leaf_pem, ll);
    memcpy(chain + ll, ca_pem, cl + 1);
    OK(hsmkit_store_merge_certificate(s, "ext-cert", (const uint8_t *)chain, ll + cl, &v));
    CHECK(v == 1);
    OK(hsmkit_store_get_certificate(s, "ext-cert", 0, HSMKIT_CERT_PEM_CHAIN, (uint8_t *)text, sizeof text, &n));
    CHECK(strcmp(text, chain) == 0);
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_merge_certificate(s, "ext-cert", (const uint8_t *)chain, ll + cl, &v));
    CHECK(strstr(describe_cert(s, "ext-cert"), "\"issuer\":\"CN=hsmkit C test CA,O=hsmkit\"") != NULL);
    if (!is_pkcs11) /* not exportable */
        EXPECT(HSMKIT_ERR_PERMISSION_DENIED, hsmkit_store_export_certificate_key(s, "ext-cert", 0, NULL, 0, &n));
    /* renewing an Unknown-issuer certificate makes a request again; cancel it */
    OK(hsmkit_store_renew_certificate(s, "ext-cert", &v));
    CHECK(v == 0);
    OK(hsmkit_store_cancel_pending_certificate(s, "ext-cert"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_cancel_pending_certificate(s, "ext-cert"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_pending_certificate(s, "ext-cert", NULL, &csr));
    OK(hsmkit_store_get_certificate(s, "ext-cert", 0, HSMKIT_CERT_PEM, NULL, 0, &n)); /* version 1 stays */
    /* a certificate that never had a version goes with its key when cancelled */
    CHECK(create_cert(s, "gone-cert", "CN=gone.example", HSMKIT_ISSUER_UNKNOWN, 0) == 0);
    OK(hsmkit_store_cancel_pending_certificate(s, "gone-cert"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_certificate(s, "gone-cert", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_key(s, "gone-cert", 0, &k));
    free(chain);
    free(leaf_pem);
    free(ca_pem);
    hsmkit_cert_free(issued);
    hsmkit_csr_free(csr);
    hsmkit_cert_free(ca);
    hsmkit_key_free(ca_key);

    /* PKCS#12 and PEM made by openssl */
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '%s' -out '%s' "
             "-subj /CN=p12.example -days 30 2>/dev/null && "
             "openssl pkcs12 -export -inkey '%s' -in '%s' -out '%s' -passout pass:c-test-secret && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '%s' 2>/dev/null",
             scratch("p12.key"), scratch("p12.crt"), scratch("p12.key"), scratch("p12.crt"), scratch("f.p12"),
             scratch("other.key"));
    run_ok(cmd);
    size_t pfx_len = 0, crt_len = 0, key_len = 0, other_len = 0;
    uint8_t *pfx = read_file(scratch("f.p12"), &pfx_len);
    uint8_t *crt = read_file(scratch("p12.crt"), &crt_len);
    uint8_t *key = read_file(scratch("p12.key"), &key_len);
    uint8_t *other = read_file(scratch("other.key"), &other_len);
    EXPECT(HSMKIT_ERR_AUTHENTICATION, hsmkit_store_import_pkcs12(s, "p12-cert", pfx, pfx_len, "wrong", 0, &v));
    EXPECT(HSMKIT_ERR_AUTHENTICATION, hsmkit_store_import_pkcs12(s, "p12-cert", pfx, pfx_len, NULL, 0, &v));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_certificate(s, "p12-cert", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_import_pkcs12(s, "p12-cert", pfx, pfx_len, "c-test-secret", 4, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_import_pkcs12(s, "p12-cert", pfx, 20, "c-test-secret", 0, &v));
    v = 99;
    OK(hsmkit_store_import_pkcs12(s, "p12-cert", pfx, pfx_len, "c-test-secret", 0, &v));
    CHECK(v == 1);
    OK(hsmkit_store_get_certificate(s, "p12-cert", 0, HSMKIT_CERT_PEM, (uint8_t *)text, sizeof text, &n));
    CHECK(n == crt_len + 1 && memcmp(text, crt, crt_len) == 0); /* openssl's certificate, byte for byte */
    CHECK(strstr(describe_cert(s, "p12-cert"), "\"issuer\":\"Self\"") != NULL);
    OK(hsmkit_store_get_key(s, "p12-cert", 0, &k)); /* the key came with it, and signs */
    OK(hsmkit_key_sign(k, "ES256", 0, (const uint8_t *)"m", 1, sig, sizeof sig, &n));
    hsmkit_key_free(k);
    k = NULL;
    /* the same as PEM (certificate and key in one text), and with a key that is not its */
    uint8_t *both = malloc(crt_len + other_len + key_len);
    CHECK(both != NULL);
    memcpy(both, crt, crt_len);
    memcpy(both + crt_len, other, other_len);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_import_certificate_pem(s, "pem-cert", both, crt_len + other_len, 0, &v));
    CHECK(strcmp(hsmkit_last_error_reason(), "key-mismatch") == 0);
    memcpy(both, key, key_len); /* key first: any order */
    memcpy(both + key_len, crt, crt_len);
    OK(hsmkit_store_import_certificate_pem(s, "pem-cert", both, key_len + crt_len, 0, &v));
    CHECK(v == 1);
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_import_certificate_pem(s, "pem-cert", crt, crt_len, 0, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_import_certificate_pem(s, "pem-cert", NULL, 5, 0, &v));
    memset(both, 0, key_len + crt_len);
    memset(key, 0, key_len);
    free(both);
    free(pfx);
    free(crt);
    free(key);
    free(other);

    /* names, then delete / recover / purge (certificate and key together) */
    OK(hsmkit_store_list_certificates(s, NULL, 0, &need));
    OK(hsmkit_store_list_certificates(s, (uint8_t *)text, sizeof text, &n));
    CHECK(n == need && strstr(text, "self-cert\n") && strstr(text, "ext-cert\n") && strstr(text, "p12-cert\n") &&
          strstr(text, "pem-cert\n") && !strstr(text, "gone-cert"));
    OK(hsmkit_store_delete_certificate(s, "p12-cert"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_certificate(s, "p12-cert", 0, HSMKIT_CERT_PEM, NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_key(s, "p12-cert", 0, &k));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_delete_certificate(s, "p12-cert"));
    CHECK(strstr(describe_cert(s, "p12-cert"), "\"scheduled_purge\":\"") != NULL);
    OK(hsmkit_store_list_deleted_certificates(s, (uint8_t *)text, sizeof text, &n));
    CHECK(strstr(text, "\"name\":\"p12-cert\"") && !strstr(text, "self-cert"));
    OK(hsmkit_store_list_certificates(s, (uint8_t *)text, sizeof text, &n));
    CHECK(!strstr(text, "p12-cert"));
    EXPECT(HSMKIT_ERR_ALREADY_EXISTS, hsmkit_store_create_certificate(s, "p12-cert", &p, &v)); /* deleted */
    v = 99;
    OK(hsmkit_store_recover_deleted_certificate(s, "p12-cert", &v));
    CHECK(v == 1);
    OK(hsmkit_store_get_certificate(s, "p12-cert", 0, HSMKIT_CERT_PEM, NULL, 0, &n));
    OK(hsmkit_store_get_key(s, "p12-cert", 0, &k));
    hsmkit_key_free(k);
    k = NULL;
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_recover_deleted_certificate(s, "p12-cert", &v));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_purge_deleted_certificate(s, "p12-cert")); /* not deleted */
    OK(hsmkit_store_delete_certificate(s, "p12-cert"));
    OK(hsmkit_store_purge_deleted_certificate(s, "p12-cert"));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_describe_certificate(s, "p12-cert", NULL, 0, &n));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_key(s, "p12-cert", 0, &k));
    OK(hsmkit_store_list_deleted_certificates(s, (uint8_t *)text, sizeof text, &n));
    CHECK(strcmp(text, "[]") == 0);
    /* the name is free again */
    CHECK(create_cert(s, "p12-cert", "CN=again.example", HSMKIT_ISSUER_SELF, 0) == 1);

    /* arguments */
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_create_certificate(NULL, "x", &p, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_create_certificate(s, NULL, &p, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_create_certificate(s, "x", NULL, &v));
    EXPECT(HSMKIT_ERR_INVALID_INPUT, hsmkit_store_create_certificate(s, "bad name!", &p, &v));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_list_certificates(s, NULL, 0, NULL));
    EXPECT(HSMKIT_ERR_NULL_ARGUMENT, hsmkit_store_get_pending_certificate(s, "self-cert", NULL, NULL));
    EXPECT(HSMKIT_ERR_NOT_FOUND, hsmkit_store_get_pending_certificate(s, "self-cert", NULL, &csr));
    CHECK(csr == NULL);
}

/* One key handle, signing and verifying from several threads at once. */
static void *signer(void *arg) {
    hsmkit_key *k = arg;
    for (int i = 0; i < 25; i++) {
        uint8_t msg[16], sig[64];
        size_t n = 0;
        snprintf((char *)msg, sizeof msg, "msg %d", i);
        if (hsmkit_key_sign(k, "ES256", 0, msg, strlen((char *)msg), sig, sizeof sig, &n) != HSMKIT_OK) return (void *)1;
        if (hsmkit_key_verify(k, "ES256", 0, msg, strlen((char *)msg), sig, n) != HSMKIT_OK) return (void *)1;
    }
    return NULL;
}

static void test_threads(hsmkit_store *s) {
    hsmkit_key *k = create(s, "threads", "P-256", NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, signer, k) == 0);
    for (int i = 0; i < 4; i++) {
        void *r = (void *)1;
        CHECK(pthread_join(t[i], &r) == 0 && r == NULL);
    }
    hsmkit_key_free(k);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s STORE-URI SCRATCH-DIR\n", argv[0]);
        return 2;
    }
    dir = argv[2];
    test_basics();
    hsmkit_store *s = open_store(argv[1]);
    test_capabilities(s, argv[1]);
    test_keys(s);
    test_sign(s);
    test_encrypt(s);
    test_wrap(s);
    test_public_and_import(s);
    test_lifecycle(s);
    test_envelope(s);
    test_rewrap(s);
    test_secrets(s);
    test_secret_reports(s);
    test_backup(s);
    test_x509(s);
    test_jose(s);
    test_certificates(s);
    test_threads(s);
    hsmkit_store_free(s);
    if (getenv("HSMKIT_TEST_PASSPHRASE") && *getenv("HSMKIT_TEST_PASSPHRASE")) {
        /* every operation above left a record in the audit log */
        char audit[4096];
        struct stat sb;
        snprintf(audit, sizeof audit, "%s/audit.jsonl", dir);
        CHECK(stat(audit, &sb) == 0 && sb.st_size > 10000);
    }
    printf("test_api %s: %d checks passed\n", argv[1], checks);
    return 0;
}
