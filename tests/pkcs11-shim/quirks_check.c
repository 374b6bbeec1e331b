/*
 * Checks the shim's quirk modes (shim.c) against a SoftHSM2 token, without hsmkit.
 * check-quirks.sh builds the shim and this program and makes the token; by hand:
 *   quirks_check SHIM.so SHIM_CONFIG TOKEN_LABEL USER_PIN
 * Each check prints "ok" or "FAIL" with the codes seen; the exit status is the number of
 * failures.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *p;
static const char *config;
static int failures, gen;

#define CHECK(what, cond)                                                   \
    do {                                                                    \
        int ok_ = (cond);                                                   \
        printf("%s %s\n", ok_ ? "ok  " : "FAIL", what);                     \
        if (!ok_) failures++;                                               \
    } while (0)
#define EXPECT(what, call, want)                                            \
    do {                                                                    \
        CK_RV rv_ = (call);                                                 \
        int ok_ = rv_ == (CK_RV)(want);                                     \
        printf("%s %s: 0x%lx (want 0x%lx)\n", ok_ ? "ok  " : "FAIL", what,  \
               (unsigned long)rv_, (unsigned long)(want));                  \
        if (!ok_) failures++;                                               \
    } while (0)

/* Writes a new generation of the config: `lines` is appended after `gen N`. */
static void configure(const char *lines) {
    FILE *f = fopen(config, "w");
    if (!f) {
        perror(config);
        exit(100);
    }
    fprintf(f, "gen %d\n%s", ++gen, lines);
    fclose(f);
    printf("-- config: %s", lines[0] ? lines : "(none)\n");
}

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS data_class = CKO_DATA, secret_class = CKO_SECRET_KEY;
static CK_KEY_TYPE aes_type = CKK_AES, generic_type = CKK_GENERIC_SECRET;

static CK_OBJECT_HANDLE data_object(CK_SESSION_HANDLE s, CK_BBOOL *token, const char *value, CK_RV *rv) {
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &data_class, sizeof data_class},
        {CKA_TOKEN, token, sizeof *token},
        {CKA_LABEL, "quirk-check", 11},
        {CKA_VALUE, (void *)value, strlen(value)},
    };
    CK_OBJECT_HANDLE h = 0;
    *rv = p->C_CreateObject(s, t, 4, &h);
    return h;
}

static int value_is(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, const char *want) {
    char buf[64] = {0};
    CK_ATTRIBUTE q = {CKA_VALUE, buf, sizeof buf - 1};
    return p->C_GetAttributeValue(s, h, &q, 1) == CKR_OK && q.ulValueLen == strlen(want) &&
           memcmp(buf, want, q.ulValueLen) == 0;
}

/* An AES-256 KEK (session object, token if `token`) that can wrap and unwrap. */
static CK_RV aes_kek(CK_SESSION_HANDLE s, CK_BBOOL *token, CK_OBJECT_HANDLE *h) {
    CK_ULONG len = 32;
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE t[] = {
        {CKA_TOKEN, token, sizeof *token}, {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_WRAP, &yes, 1},               {CKA_UNWRAP, &yes, 1},
    };
    return p->C_GenerateKey(s, &m, t, 4, h);
}

static CK_RV generic_secret(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h) {
    static CK_BYTE value[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &secret_class, sizeof secret_class}, {CKA_KEY_TYPE, &generic_type, sizeof generic_type},
        {CKA_TOKEN, &no, 1},                              {CKA_SENSITIVE, &no, 1},
        {CKA_EXTRACTABLE, &yes, 1},                       {CKA_VALUE, value, sizeof value},
    };
    return p->C_CreateObject(s, t, 6, h);
}

/* An RSA-1024 session pair; `pub_extra`/`priv_extra` are appended to the templates. */
static CK_RV rsa_pair(CK_SESSION_HANDLE s, CK_ATTRIBUTE *pub_extra, CK_ULONG npe, CK_ATTRIBUTE *priv_extra,
                      CK_ULONG nke, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv) {
    static CK_ULONG bits = 1024;
    static CK_BYTE e[] = {1, 0, 1};
    CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[8] = {{CKA_TOKEN, &no, 1}, {CKA_MODULUS_BITS, &bits, sizeof bits}, {CKA_PUBLIC_EXPONENT, e, 3},
                          {CKA_ENCRYPT, &yes, 1}};
    CK_ATTRIBUTE kt[8] = {{CKA_TOKEN, &no, 1}, {CKA_DECRYPT, &yes, 1}, {CKA_SIGN, &yes, 1}};
    CK_ULONG pn = 4, kn = 3;
    for (CK_ULONG i = 0; i < npe && pn < 8; i++) pt[pn++] = pub_extra[i];
    for (CK_ULONG i = 0; i < nke && kn < 8; i++) kt[kn++] = priv_extra[i];
    return p->C_GenerateKeyPair(s, &m, pt, pn, kt, kn, pub, priv);
}

/* A P-256 session pair; `pub_extra`/`priv_extra` are appended to the templates. */
static CK_RV ec_pair(CK_SESSION_HANDLE s, CK_ATTRIBUTE *pub_extra, CK_ULONG npe, CK_ATTRIBUTE *priv_extra,
                     CK_ULONG nke) {
    static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[8] = {{CKA_TOKEN, &no, 1}, {CKA_EC_PARAMS, p256, sizeof p256}, {CKA_VERIFY, &yes, 1}};
    CK_ATTRIBUTE kt[8] = {{CKA_TOKEN, &no, 1}, {CKA_SIGN, &yes, 1}};
    CK_ULONG pn = 3, kn = 2;
    for (CK_ULONG i = 0; i < npe && pn < 8; i++) pt[pn++] = pub_extra[i];
    for (CK_ULONG i = 0; i < nke && kn < 8; i++) kt[kn++] = priv_extra[i];
    CK_OBJECT_HANDLE pub, priv;
    return p->C_GenerateKeyPair(s, &m, pt, pn, kt, kn, &pub, &priv);
}

static CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};
static CK_MECHANISM oaep_mech = {CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s SHIM.so SHIM_CONFIG TOKEN_LABEL USER_PIN\n", argv[0]);
        return 100;
    }
    config = argv[2];
    const char *label = argv[3], *pin = argv[4];
    configure("");
    void *lib = dlopen(argv[1], RTLD_NOW);
    CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
    if (!get || get(&p) != CKR_OK || p->C_Initialize(NULL) != CKR_OK) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 100;
    }
    CK_SLOT_ID slots[64], slot = (CK_SLOT_ID)-1;
    CK_ULONG nslots = 64;
    CK_TOKEN_INFO info;
    p->C_GetSlotList(CK_TRUE, slots, &nslots);
    for (CK_ULONG i = 0; i < nslots; i++) {
        if (p->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
        if (memcmp(info.label, label, strlen(label)) == 0 && info.label[strlen(label)] == ' ') slot = slots[i];
    }
    if (slot == (CK_SLOT_ID)-1) {
        fprintf(stderr, "no token %s\n", label);
        return 100;
    }
    CK_SESSION_HANDLE s;
    CK_RV rv;
    p->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    EXPECT("login", p->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);

    /* Without quirks, everything below is what SoftHSM2 does. */
    CK_OBJECT_HANDLE d = data_object(s, &yes, "old", &rv);
    EXPECT("token data object", rv, CKR_OK);
    /* SoftHSM2 2.6.1 never modifies CKA_VALUE of an existing object. */
    CK_ATTRIBUTE newval = {CKA_VALUE, "new", 3};
    EXPECT("set CKA_VALUE (SoftHSM2: read-only)", p->C_SetAttributeValue(s, d, &newval, 1),
           CKR_ATTRIBUTE_READ_ONLY);
    CHECK("value unchanged", value_is(s, d, "old"));

    configure("quirk data-not-persisted\n");
    CK_ATTRIBUTE newer = {CKA_VALUE, "newer", 5};
    EXPECT("set CKA_VALUE on data", p->C_SetAttributeValue(s, d, &newer, 1), CKR_OK);
    CHECK("value not changed", value_is(s, d, "old"));
    CK_ATTRIBUTE lab = {CKA_LABEL, "relabelled", 10};
    EXPECT("set CKA_LABEL on data", p->C_SetAttributeValue(s, d, &lab, 1), CKR_OK);
    char buf[64] = {0};
    CK_ATTRIBUTE q = {CKA_LABEL, buf, sizeof buf};
    p->C_GetAttributeValue(s, d, &q, 1);
    CHECK("label changed", q.ulValueLen == 10 && memcmp(buf, "relabelled", 10) == 0);

    configure("quirk no-token-data\n");
    data_object(s, &yes, "x", &rv);
    EXPECT("token data object", rv, CKR_TEMPLATE_INCONSISTENT);
    CK_OBJECT_HANDLE sd = data_object(s, &no, "x", &rv);
    EXPECT("session data object", rv, CKR_OK);
    CK_ATTRIBUTE anon[] = {{CKA_CLASS, &data_class, sizeof data_class}, {CKA_VALUE, "x", 1}};
    EXPECT("data object, CKA_TOKEN absent", p->C_CreateObject(s, anon, 2, &sd), CKR_OK);

    configure("quirk op-active-after-error\n");
    CK_OBJECT_HANDLE pub, priv;
    EXPECT("RSA pair", rsa_pair(s, NULL, 0, NULL, 0, &pub, &priv), CKR_OK);
    CK_BYTE garbage[128], out[256];
    CK_ULONG n;
    memset(garbage, 0x5a, sizeof garbage);
    EXPECT("DecryptInit", p->C_DecryptInit(s, &oaep_mech, priv), CKR_OK);
    n = sizeof out;
    rv = p->C_Decrypt(s, garbage, sizeof garbage, out, &n);
    CHECK("garbage decrypt fails", rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL);
    CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
    CK_MECHANISM pkcs1 = {CKM_SHA256_RSA_PKCS, NULL, 0};
    EXPECT("DecryptInit when stuck", p->C_DecryptInit(s, &oaep_mech, priv), CKR_OPERATION_ACTIVE);
    EXPECT("SignInit when stuck", p->C_SignInit(s, &pkcs1, priv), CKR_OPERATION_ACTIVE);
    EXPECT("EncryptInit when stuck", p->C_EncryptInit(s, &oaep_mech, pub), CKR_OPERATION_ACTIVE);
    EXPECT("VerifyInit when stuck", p->C_VerifyInit(s, &pkcs1, pub), CKR_OPERATION_ACTIVE);
    EXPECT("DigestInit when stuck", p->C_DigestInit(s, &sha256), CKR_OPERATION_ACTIVE);
    CK_SESSION_HANDLE s2;
    p->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s2);
    EXPECT("DigestInit on another session", p->C_DigestInit(s2, &sha256), CKR_OK);
    CK_BYTE digest[32];
    n = sizeof digest;
    EXPECT("Digest", p->C_Digest(s2, (CK_BYTE_PTR) "abc", 3, digest, &n), CKR_OK);
    EXPECT("DecryptInit(NULL) cancels", p->C_DecryptInit(s, NULL, priv), CKR_OK);
    EXPECT("DigestInit after cancel", p->C_DigestInit(s, &sha256), CKR_OK);
    n = sizeof digest;
    EXPECT("Digest", p->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &n), CKR_OK);
    /* A short buffer does not make the session stuck. */
    CK_BYTE ct[128];
    CK_ULONG ctn = sizeof ct;
    EXPECT("EncryptInit", p->C_EncryptInit(s, &oaep_mech, pub), CKR_OK);
    EXPECT("Encrypt", p->C_Encrypt(s, (CK_BYTE_PTR) "secret", 6, ct, &ctn), CKR_OK);
    EXPECT("DecryptInit", p->C_DecryptInit(s, &oaep_mech, priv), CKR_OK);
    n = 1;
    EXPECT("Decrypt into 1 byte", p->C_Decrypt(s, ct, ctn, out, &n), CKR_BUFFER_TOO_SMALL);
    n = sizeof out;
    EXPECT("Decrypt", p->C_Decrypt(s, ct, ctn, out, &n), CKR_OK);
    CHECK("decrypted", n == 6 && memcmp(out, "secret", 6) == 0);
    EXPECT("SignInit after a short buffer", p->C_SignInit(s, &pkcs1, priv), CKR_OK);
    n = sizeof out;
    EXPECT("Sign", p->C_Sign(s, (CK_BYTE_PTR) "m", 1, out, &n), CKR_OK);
    /* Closing the session clears the mark: the next session may get its handle. */
    EXPECT("DecryptInit", p->C_DecryptInit(s2, &oaep_mech, priv), CKR_OK);
    n = sizeof out;
    rv = p->C_Decrypt(s2, garbage, sizeof garbage, out, &n);
    EXPECT("SignInit when stuck", p->C_SignInit(s2, &pkcs1, priv), CKR_OPERATION_ACTIVE);
    EXPECT("CloseSession", p->C_CloseSession(s2), CKR_OK);
    p->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s2);
    EXPECT("SignInit on a new session", p->C_SignInit(s2, &pkcs1, priv), CKR_OK);
    n = sizeof out;
    EXPECT("Sign", p->C_Sign(s2, (CK_BYTE_PTR) "m", 1, out, &n), CKR_OK);
    p->C_CloseSession(s2);
    /* A new generation forgets stuck sessions. */
    EXPECT("DecryptInit", p->C_DecryptInit(s, &oaep_mech, priv), CKR_OK);
    n = sizeof out;
    p->C_Decrypt(s, garbage, sizeof garbage, out, &n);
    EXPECT("DigestInit when stuck", p->C_DigestInit(s, &sha256), CKR_OPERATION_ACTIVE);
    configure("");
    EXPECT("DigestInit after a new gen", p->C_DigestInit(s, &sha256), CKR_OK);
    n = sizeof digest;
    p->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &n);

    char line[80];
    snprintf(line, sizeof line, "quirk bad-token-info %s\n", label);
    configure(line);
    EXPECT("GetTokenInfo", p->C_GetTokenInfo(slot, &info), CKR_OK);
    CHECK("clock flag", (info.flags & CKF_CLOCK_ON_TOKEN) != 0);
    CHECK("bad utcTime", memcmp(info.utcTime, "20XX13??99887766", 16) == 0);
    CHECK("real label", memcmp(info.label, label, strlen(label)) == 0);
    configure("quirk bad-token-info some-other-token\n");
    EXPECT("GetTokenInfo", p->C_GetTokenInfo(slot, &info), CKR_OK);
    CHECK("no clock flag for another label", (info.flags & CKF_CLOCK_ON_TOKEN) == 0);
    configure("quirk bad-token-info\n");
    p->C_GetTokenInfo(slot, &info);
    CHECK("every slot without a label", (info.flags & CKF_CLOCK_ON_TOKEN) != 0);

    configure("quirk wrap-untruncated\n");
    CK_OBJECT_HANDLE kek, dk;
    EXPECT("AES KEK", aes_kek(s, &no, &kek), CKR_OK);
    EXPECT("data key", generic_secret(s, &dk), CKR_OK);
    CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
    n = 0;
    EXPECT("WrapKey length", p->C_WrapKey(s, &kw, kek, dk, NULL, &n), CKR_OK);
    CHECK("length 24 + 16", n == 40);
    EXPECT("WrapKey", p->C_WrapKey(s, &kw, kek, dk, out, &n), CKR_OK);
    CHECK("true length 24", n == 24);
    CK_BYTE wrapped[24];
    memcpy(wrapped, out, 24);

    configure("quirk no-rsa-unwrap\n");
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &secret_class, sizeof secret_class},
                         {CKA_KEY_TYPE, &generic_type, sizeof generic_type},
                         {CKA_TOKEN, &no, 1},
                         {CKA_SENSITIVE, &no, 1},
                         {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE uk;
    CK_OBJECT_HANDLE upub, upriv;
    CK_ATTRIBUTE wrap_true = {CKA_WRAP, &yes, 1}, unwrap_true = {CKA_UNWRAP, &yes, 1};
    EXPECT("RSA pair with wrap/unwrap", rsa_pair(s, &wrap_true, 1, &unwrap_true, 1, &upub, &upriv), CKR_OK);
    n = sizeof out;
    EXPECT("RSA-OAEP WrapKey", p->C_WrapKey(s, &oaep_mech, upub, dk, out, &n), CKR_OK);
    EXPECT("RSA-OAEP UnwrapKey", p->C_UnwrapKey(s, &oaep_mech, upriv, out, n, ut, 5, &uk), CKR_MECHANISM_INVALID);
    EXPECT("AES-KW UnwrapKey", p->C_UnwrapKey(s, &kw, kek, wrapped, 24, ut, 5, &uk), CKR_OK);
    configure("");
    EXPECT("RSA-OAEP UnwrapKey without the quirk", p->C_UnwrapKey(s, &oaep_mech, upriv, out, n, ut, 5, &uk),
           CKR_OK);

    configure("quirk strict-templates\n");
    CK_ATTRIBUTE enc_false = {CKA_ENCRYPT, &no, 1}, wrap_false = {CKA_WRAP, &no, 1};
    CK_ATTRIBUTE dec_false = {CKA_DECRYPT, &no, 1}, unwrap_false = {CKA_UNWRAP, &no, 1};
    EXPECT("EC pair", ec_pair(s, NULL, 0, NULL, 0), CKR_OK);
    EXPECT("EC public with CKA_ENCRYPT=FALSE", ec_pair(s, &enc_false, 1, NULL, 0), CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT("EC public with CKA_WRAP=FALSE", ec_pair(s, &wrap_false, 1, NULL, 0), CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT("EC private with CKA_DECRYPT=FALSE", ec_pair(s, NULL, 0, &dec_false, 1), CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT("EC private with CKA_UNWRAP=FALSE", ec_pair(s, NULL, 0, &unwrap_false, 1), CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT("RSA pair, CKA_WRAP/UNWRAP FALSE", rsa_pair(s, &wrap_false, 1, &unwrap_false, 1, &upub, &upriv),
           CKR_OK);
    EXPECT("RSA public with CKA_WRAP=TRUE", rsa_pair(s, &wrap_true, 1, NULL, 0, &upub, &upriv),
           CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT("RSA private with CKA_UNWRAP=TRUE", rsa_pair(s, NULL, 0, &unwrap_true, 1, &upub, &upriv),
           CKR_ATTRIBUTE_TYPE_INVALID);
    CK_ULONG bits = 2048, len = 32;
    CK_MECHANISM aesgen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE aes_sign[] = {{CKA_TOKEN, &no, 1}, {CKA_VALUE_LEN, &len, sizeof len}, {CKA_SIGN, &yes, 1}};
    CK_ATTRIBUTE aes_bits[] = {{CKA_TOKEN, &no, 1}, {CKA_VALUE_LEN, &len, sizeof len},
                               {CKA_MODULUS_BITS, &bits, sizeof bits}};
    EXPECT("AES with CKA_SIGN=TRUE", p->C_GenerateKey(s, &aesgen, aes_sign, 3, &uk), CKR_OK);
    EXPECT("AES with CKA_MODULUS_BITS", p->C_GenerateKey(s, &aesgen, aes_bits, 3, &uk), CKR_ATTRIBUTE_TYPE_INVALID);
    CK_BYTE key[32] = {0};
    CK_BYTE oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
    CK_ATTRIBUTE aes_obj[] = {{CKA_CLASS, &secret_class, sizeof secret_class},
                              {CKA_KEY_TYPE, &aes_type, sizeof aes_type},
                              {CKA_TOKEN, &no, 1},
                              {CKA_VALUE, key, sizeof key},
                              {CKA_EC_PARAMS, oid, sizeof oid}};
    EXPECT("AES object with CKA_EC_PARAMS", p->C_CreateObject(s, aes_obj, 5, &uk), CKR_ATTRIBUTE_TYPE_INVALID);
    EXPECT("AES object", p->C_CreateObject(s, aes_obj, 4, &uk), CKR_OK);
    /* Unreadable values count as absent: a short CKA_KEY_TYPE falls back on the mechanism,
     * a NULL CKA_WRAP value is not TRUE (SoftHSM2 then judges the template itself). */
    CK_ATTRIBUTE short_type[] = {{CKA_TOKEN, &no, 1}, {CKA_VALUE_LEN, &len, sizeof len},
                                 {CKA_KEY_TYPE, &aes_type, 1}, {CKA_MODULUS_BITS, &bits, sizeof bits}};
    EXPECT("short CKA_KEY_TYPE, AES mechanism", p->C_GenerateKey(s, &aesgen, short_type, 4, &uk),
           CKR_ATTRIBUTE_TYPE_INVALID);
    CK_ATTRIBUTE null_wrap = {CKA_WRAP, NULL, 0};
    rv = rsa_pair(s, &null_wrap, 1, NULL, 0, &upub, &upriv);
    printf("     (RSA public with CKA_WRAP NULL/0: SoftHSM2 says 0x%lx)\n", (unsigned long)rv);
    CHECK("NULL CKA_WRAP is not refused by the shim", rv != CKR_ATTRIBUTE_TYPE_INVALID);

    configure("quirk no-session-objects\n");
    EXPECT("session AES key", aes_kek(s, &no, &uk), CKR_TEMPLATE_INCONSISTENT);
    CK_ATTRIBUTE no_token[] = {{CKA_VALUE_LEN, &len, sizeof len}};
    EXPECT("AES key, CKA_TOKEN absent", p->C_GenerateKey(s, &aesgen, no_token, 1, &uk), CKR_TEMPLATE_INCONSISTENT);
    EXPECT("token AES key", aes_kek(s, &yes, &uk), CKR_OK);
    p->C_DestroyObject(s, uk);
    EXPECT("session data key", generic_secret(s, &uk), CKR_TEMPLATE_INCONSISTENT);
    data_object(s, &no, "x", &rv);
    EXPECT("session data object", rv, CKR_TEMPLATE_INCONSISTENT);
    EXPECT("session RSA pair", rsa_pair(s, NULL, 0, NULL, 0, &upub, &upriv), CKR_TEMPLATE_INCONSISTENT);

    configure("quirk key-held-after-error\n");
    CK_OBJECT_HANDLE hpub, hpriv;
    EXPECT("RSA pair", rsa_pair(s, NULL, 0, NULL, 0, &hpub, &hpriv), CKR_OK);
    CK_SESSION_HANDLE s3;
    p->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s3);
    EXPECT("DecryptInit", p->C_DecryptInit(s3, &oaep_mech, hpriv), CKR_OK);
    n = sizeof out;
    rv = p->C_Decrypt(s3, garbage, sizeof garbage, out, &n);
    CHECK("garbage decrypt fails", rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL);
    EXPECT("destroy the held key", p->C_DestroyObject(s, hpriv), CKR_FUNCTION_FAILED);
    n = 99;
    EXPECT("DecryptFinal length query", p->C_DecryptFinal(s3, NULL, &n), CKR_OK);
    CHECK("length 0", n == 0);
    EXPECT("still held after the query", p->C_DestroyObject(s, hpriv), CKR_FUNCTION_FAILED);
    EXPECT("DecryptFinal", p->C_DecryptFinal(s3, out, &n), CKR_OK);
    EXPECT("destroy once released", p->C_DestroyObject(s, hpriv), CKR_OK);
    EXPECT("RSA pair", rsa_pair(s, NULL, 0, NULL, 0, &hpub, &hpriv), CKR_OK);
    EXPECT("DecryptInit", p->C_DecryptInit(s3, &oaep_mech, hpriv), CKR_OK);
    n = sizeof out;
    p->C_Decrypt(s3, garbage, sizeof garbage, out, &n);
    p->C_CloseSession(s3);
    EXPECT("closing the session does not release", p->C_DestroyObject(s, hpriv), CKR_FUNCTION_FAILED);
    configure("");
    EXPECT("without the quirk it goes", p->C_DestroyObject(s, hpriv), CKR_OK);
    p->C_DestroyObject(s, hpub);

    configure("quirk reused-handle\n");
    CK_OBJECT_HANDLE r1pub, r1priv, r2pub, r2priv;
    EXPECT("first RSA pair", rsa_pair(s, NULL, 0, NULL, 0, &r1pub, &r1priv), CKR_OK);
    EXPECT("second RSA pair", rsa_pair(s, NULL, 0, NULL, 0, &r2pub, &r2priv), CKR_OK);
    CHECK("the second private handle is another private key's", r2priv != r2pub && r2priv != r1pub);
    CK_OBJECT_CLASS c1 = 0;
    CK_ATTRIBUTE qc = {CKA_CLASS, &c1, sizeof c1};
    EXPECT("read its class", p->C_GetAttributeValue(s, r2priv, &qc, 1), CKR_OK);
    CHECK("a private key", c1 == CKO_PRIVATE_KEY);
    CK_BYTE m_pub[128], m_priv[128];
    CK_ATTRIBUTE qm_pub = {CKA_MODULUS, m_pub, sizeof m_pub}, qm_priv = {CKA_MODULUS, m_priv, sizeof m_priv};
    EXPECT("public modulus", p->C_GetAttributeValue(s, r2pub, &qm_pub, 1), CKR_OK);
    EXPECT("modulus behind the private handle", p->C_GetAttributeValue(s, r2priv, &qm_priv, 1), CKR_OK);
    CHECK("not the new pair's private key (another modulus)",
          qm_pub.ulValueLen != qm_priv.ulValueLen || memcmp(m_pub, m_priv, qm_pub.ulValueLen) != 0);
    configure("");

    /* Several quirks at once, and fault rules beside them. */
    configure("C_GenerateKey 0x30 1\nquirk no-session-objects\nquirk wrap-untruncated\n");
    EXPECT("rule first", aes_kek(s, &yes, &uk), CKR_DEVICE_ERROR);
    EXPECT("then the quirk", aes_kek(s, &no, &uk), CKR_TEMPLATE_INCONSISTENT);
    configure("C_GenerateKey 0x30 1\nquirk no-session-objects\nquirk wrap-untruncated\n");
    aes_kek(s, &yes, &uk);
    n = 0;
    EXPECT("WrapKey length, second quirk", p->C_WrapKey(s, &kw, kek, dk, NULL, &n), CKR_OK);
    CHECK("length 24 + 16", n == 40);
    char counts[512];
    snprintf(counts, sizeof counts, "%s.counts", config);
    FILE *f = fopen(counts, "r");
    int seen = 0;
    while (f && fgets(line, sizeof line, f))
        if (strcmp(line, "C_GenerateKey 1\n") == 0) seen = 1;
    if (f) fclose(f);
    CHECK("counts still written", seen);

    p->C_DestroyObject(s, d);
    p->C_CloseAllSessions(slot);
    p->C_Finalize(NULL);
    printf("%d failure(s)\n", failures);
    return failures;
}
