/* hsmkit from C: create a key, sign and verify, seal and open an envelope.
 *
 *   cargo build --release -p hsmkit-ffi
 *   gcc examples/c/quickstart.c $(PKG_CONFIG_PATH=. pkg-config --cflags --libs hsmkit) -o quickstart
 *   ./quickstart                 # a throw-away in-memory store; or ./quickstart URI
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsmkit.h"

static int fail(const char *what, hsmkit_result r) {
    char msg[512] = "";
    size_t n = 0;
    hsmkit_last_error((uint8_t *)msg, sizeof msg, &n);
    fprintf(stderr, "%s: %s: %s\n", what, hsmkit_result_name(r), msg);
    return 1;
}

int main(int argc, char **argv) {
    const char *uri = argc > 1 ? argv[1] : "memory:";
    hsmkit_store *store = NULL;
    hsmkit_key *key = NULL;
    hsmkit_result r;

    if ((r = hsmkit_store_open(uri, NULL, &store)) != HSMKIT_OK) return fail("open", r);
    if ((r = hsmkit_store_create_key(store, "signer", "P-256", NULL, 0, &key)) != HSMKIT_OK) return fail("create", r);

    const uint8_t msg[] = "hello from C";
    uint8_t sig[64];
    size_t sig_len = 0;
    if ((r = hsmkit_key_sign(key, "ES256", 0, msg, sizeof msg - 1, sig, sizeof sig, &sig_len)) != HSMKIT_OK)
        return fail("sign", r);
    r = hsmkit_key_verify(key, "ES256", 0, msg, sizeof msg - 1, sig, sig_len);
    printf("ES256 signature: %zu bytes, verify: %s\n", sig_len, hsmkit_result_name(r));

    /* Two calls: the length, then the JWK. */
    size_t len = 0;
    hsmkit_key_public_key(key, HSMKIT_PUBLIC_JWK, NULL, 0, &len);
    char *jwk = malloc(len);
    if ((r = hsmkit_key_public_key(key, HSMKIT_PUBLIC_JWK, (uint8_t *)jwk, len, &len)) != HSMKIT_OK)
        return fail("public key", r);
    printf("public key: %.40s...\n", jwk);
    free(jwk);

    hsmkit_key *kek = NULL;
    hsmkit_sealer *sealer = NULL;
    const char *keks[] = {"kek"};
    hsmkit_context_entry ctx[] = {{"tenant", "acme"}};
    if ((r = hsmkit_store_create_key(store, "kek", "AES-256", NULL, 0, &kek)) != HSMKIT_OK) return fail("create", r);
    if ((r = hsmkit_sealer_new(store, keks, 1, ctx, 1, 0, &sealer)) != HSMKIT_OK) return fail("sealer", r);
    size_t env_len = 0, pt_len = 0;
    hsmkit_sealer_seal(sealer, msg, sizeof msg - 1, NULL, 0, &env_len);
    uint8_t *env = malloc(env_len);
    if ((r = hsmkit_sealer_seal(sealer, msg, sizeof msg - 1, env, env_len, &env_len)) != HSMKIT_OK)
        return fail("seal", r);
    char pt[64] = "";
    if ((r = hsmkit_store_unseal(store, ctx, 1, env, env_len, (uint8_t *)pt, sizeof pt - 1, &pt_len)) != HSMKIT_OK)
        return fail("unseal", r);
    printf("envelope: %zu bytes, opened: \"%s\"\n", env_len, pt);
    env[env_len - 1] ^= 1;
    r = hsmkit_store_unseal(store, ctx, 1, env, env_len, (uint8_t *)pt, sizeof pt - 1, &pt_len);
    printf("tampered envelope: %s\n", hsmkit_result_name(r));

    free(env);
    hsmkit_sealer_free(sealer);
    hsmkit_key_free(kek);
    hsmkit_key_free(key);
    hsmkit_store_free(store);
    return 0;
}
