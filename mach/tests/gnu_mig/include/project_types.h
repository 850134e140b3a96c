/* Stand-in for the Hurd's <hurd/hurd_types.h>: the C types the project's own defs/ name (the
   Hurd's headers are not on the test host).  Forced into every stub the harness compiles; only
   sizes matter to the messages, and these are the Hurd's.  */
#ifndef PROJECT_TYPES_H
#define PROJECT_TYPES_H

#include <sys/types.h>
#include <mach/port.h>

typedef mach_port_t fsys_t;
typedef mach_port_t auth_t;
typedef uid_t *idarray_t;
typedef const uid_t *const_idarray_t;
typedef unsigned int retry_type;
typedef char string_t[1024];
typedef const char *const_string_t;
typedef mach_port_t file_t;
typedef mach_port_t startup_t;
typedef mach_port_t process_t;
typedef char *data_t;
typedef const char *const_data_t;

#endif
