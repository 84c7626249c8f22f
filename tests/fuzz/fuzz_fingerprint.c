/* herd_tls_fingerprint_normalize() on operator-typed text. */
#include "fuzz.h"

#include "common/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *text = fuzz_string(data, size);
	g_autofree char *fp = herd_tls_fingerprint_normalize(text);
	if (!fp)
		return 0;
	/* the form herd_tls_fingerprint() gives: 32 upper-case hex bytes */
	FUZZ_CHECK(strlen(fp) == 32 * 3 - 1);
	for (int i = 0; i < 32 * 3 - 1; i++)
		FUZZ_CHECK(i % 3 == 2 ? fp[i] == ':' : g_ascii_isxdigit(fp[i]) && !g_ascii_islower(fp[i]));
	/* normal already: normalising again changes nothing */
	g_autofree char *again = herd_tls_fingerprint_normalize(fp);
	FUZZ_CHECK(again && strcmp(again, fp) == 0);
	return 0;
}
