/* The clean-up of what the API keeps between requests (context.h). */
#define G_LOG_DOMAIN "api"
#include "api/context.h"

#include "api/console_ticket.h"

void api_ctx_clear(api_ctx *a)
{
	api_vm_lists_clear(a);
	api_vm_waits_clear(a);
	g_clear_pointer(&a->console_tickets, console_tickets_free);
	api_events_clear(a);
	api_setup_code_forget(a);
}
