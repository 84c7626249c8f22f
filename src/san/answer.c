#include "common/json.h"
#include "san/answer.h"

#include "common/log.h"

struct san_answer {
	gint refs;
	san_answer_ready_fn ready;
	void *owner;
	json_t *value;
};

san_answer *san_answer_new(san_answer_ready_fn ready, void *owner)
{
	san_answer *a = g_new0(san_answer, 1);
	a->refs = 1;
	a->ready = ready;
	a->owner = owner;
	return a;
}

san_answer *san_answer_ref(san_answer *a)
{
	if (a)
		a->refs++;
	return a;
}

void san_answer_unref(san_answer *a)
{
	if (!a || --a->refs > 0)
		return;
	if (a->value)
		json_decref(a->value);
	g_free(a);
}

void san_answer_orphan(san_answer *a)
{
	a->ready = NULL;
	a->owner = NULL;
}

void san_answer_json(san_answer *a, json_t *answer)
{
	if (!a) {
		json_t *err = json_object_get(answer, "error");
		if (json_is_string(err))
			log_warn("%s", json_string_value(err));
		return;
	}
	if (a->value)
		return;
	a->value = json_incref(answer);
	if (a->ready)
		a->ready(a->owner);
}

void san_answer_ok(san_answer *a)
{
	g_autoptr(json_t) ok = json_pack("{s:b}", "ok", 1);
	san_answer_json(a, ok);
}

void san_answer_error(san_answer *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_autoptr(json_t) err = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	san_answer_json(a, err);
}

json_t *san_answer_value(const san_answer *a)
{
	return a->value;
}
