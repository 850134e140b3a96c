/* The Mach side of the C stubs, replaced for testing: mach_msg records the request it is given and
   answers with the reply the test loaded; the mig_* support calls glibc-Hurd would provide. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mach/mig_support.h>
#include <mach/mig_errors.h>
#include "driver.h"

static unsigned char *loaded_reply;
static size_t loaded_reply_len;
static mach_port_t reply_port = MACH_PORT_NULL;

void transport_set_reply(const unsigned char *bytes, size_t len)
{
	free(loaded_reply);
	loaded_reply = malloc(len ? len : 1);
	if (!loaded_reply)
		abort();
	memcpy(loaded_reply, bytes, len);
	loaded_reply_len = len;
}

void transport_set_reply_port(mach_port_t port)
{
	reply_port = port;
}

/* Prints `sent <request>` and `options ...`; then delivers the loaded reply (once) if the stub
   asked to receive. Without a loaded reply the receive times out, as a silent server would. */
mach_msg_return_t mach_msg(mach_msg_header_t *msg, mach_msg_option_t option, mach_msg_size_t send_size,
			   mach_msg_size_t rcv_size, mach_port_name_t rcv_name, mach_msg_timeout_t timeout,
			   mach_port_name_t notify)
{
	if (option & MACH_SEND_MSG) {
		fputs("sent ", stdout);
		print_hex(msg, send_size);
		putchar('\n');
	}
	printf("options %d %u %u %u %u\n", (int)option, (unsigned)rcv_size, (unsigned)rcv_name,
	       (unsigned)timeout, (unsigned)notify);
	if (!(option & MACH_RCV_MSG))
		return MACH_MSG_SUCCESS;
	if (!loaded_reply)
		return MACH_RCV_TIMED_OUT;
	if (loaded_reply_len > rcv_size)
		return MACH_RCV_TOO_LARGE;
	memcpy(msg, loaded_reply, loaded_reply_len);
	free(loaded_reply);
	loaded_reply = NULL;
	return MACH_MSG_SUCCESS;
}

mach_port_t mig_get_reply_port(void)
{
	return reply_port;
}

void mig_put_reply_port(mach_port_t port)
{
	(void)port;
}

void mig_dealloc_reply_port(mach_port_t port)
{
	printf("note dealloc_reply_port %u\n", (unsigned)port);
}

/* glibc-Hurd's behaviour: copy at most len-1 bytes, zero-fill to len-1, NUL-terminate a string
   that filled them; return the copied length. */
vm_size_t mig_strncpy(char *dst, const char *src, vm_size_t len)
{
	if (len == 0)
		return 0;
	char *end = stpncpy(dst, src, len - 1);
	vm_size_t copied = end - dst;
	if (copied == len - 1)
		*end = '\0';
	return copied;
}

void mig_allocate(vm_offset_t *addr, vm_size_t size)
{
	*addr = (vm_offset_t)calloc(1, size ? size : 1);
	if (!*addr)
		abort();
}

void mig_deallocate(vm_offset_t addr, vm_size_t size)
{
	printf("note deallocate %lu\n", (unsigned long)size);
	(void)addr; /* test memory lives until the driver exits */
}
