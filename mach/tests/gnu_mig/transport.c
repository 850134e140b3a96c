/* The Mach side of the C stubs, replaced for testing: mach_msg records the request it is given and
   answers with the reply the test loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mach/mig_support.h>
#include <mach/mig_errors.h>
#include "driver.h"

static unsigned char *loaded_reply;
static size_t loaded_reply_len;

void transport_set_reply(const unsigned char *bytes, size_t len)
{
	free(loaded_reply);
	loaded_reply = malloc(len ? len : 1);
	if (!loaded_reply)
		abort();
	memcpy(loaded_reply, bytes, len);
	loaded_reply_len = len;
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
