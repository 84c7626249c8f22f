/* herd_domxml_parse() on domain XML, as `herd vm define` sends it. */
#include "fuzz.h"

#include "common/error.h"
#include "virt/domxml.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		fuzz_quiet();
		quiet = true;
	}
	g_autofree char *xml = fuzz_string(data, size);
	g_autoptr(GError) error = NULL;
	g_autoptr(herd_domxml) d = herd_domxml_parse(xml, &error);
	if (!d) {
		FUZZ_CHECK(error && error->domain == HERD_ERROR);
		FUZZ_CHECK(error->code == HERD_ERR_INVALID ||
			   (error->code == HERD_ERR_TOO_LARGE && strlen(xml) > 1024 * 1024));
		FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL)); /* it goes into JSON */
		return 0;
	}
	FUZZ_CHECK(d->name && *d->name && d->type && d->xml);
	FUZZ_CHECK(strlen(d->uuid) == 36);
	FUZZ_CHECK(g_utf8_validate(d->xml, -1, NULL));
	/* What is stored parses again, to the same VM: every node defines it
	 * under this name and UUID. */
	g_autoptr(herd_domxml) again = herd_domxml_parse(d->xml, NULL);
	FUZZ_CHECK(again);
	FUZZ_CHECK(strcmp(again->name, d->name) == 0);
	FUZZ_CHECK(strcmp(again->type, d->type) == 0);
	FUZZ_CHECK(strcmp(again->uuid, d->uuid) == 0);
	FUZZ_CHECK(again->memory_mib == d->memory_mib && again->vcpus == d->vcpus);
	return 0;
}
