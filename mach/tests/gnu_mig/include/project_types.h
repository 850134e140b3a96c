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
typedef mach_port_t io_t;
typedef mach_port_t pci_t;
/* glibc names it only with _LARGEFILE64_SOURCE; a repeated identical typedef is valid C11.  */
typedef __ino64_t ino64_t;

/* glibc's struct stat on the Hurd (bits/stat.h), in types as wide as the Hurd's on each ABI
   (`unsigned long` is the Hurd's 64-bit uword on x86_64, 32-bit on i386, where 64-bit members
   are 4-aligned as on the Hurd): GNU MIG's stubs assert its size.  */
typedef struct {
  int st_fstype;
  unsigned long long st_fsid;
  long long st_ino;
  unsigned int st_gen;
  unsigned long st_rdev;
  unsigned int st_mode;
  unsigned long st_nlink;
  unsigned int st_uid;
  unsigned int st_gid;
  long long st_size;
  struct { long tv_sec; long tv_nsec; } st_atim, st_mtim, st_ctim;
  long st_blksize;
  long long st_blocks;
  unsigned int st_author;
  unsigned int st_flags;
  int st_spare[8];
} io_statbuf_t;

/* glibc's struct statfs on the Hurd (bits/statfs.h), likewise.  */
typedef struct {
  unsigned int f_type;
  unsigned long f_bsize;
  unsigned long long f_blocks;
  unsigned long long f_bfree;
  unsigned long long f_bavail;
  unsigned long long f_files;
  unsigned long long f_ffree;
  unsigned long long f_fsid;
  unsigned long f_namelen;
  unsigned long long f_favail;
  unsigned long f_frsize;
  unsigned long f_flag;
  unsigned int f_spare1;
  unsigned int f_spare2;
  unsigned int f_spare3;
} fsys_statfsbuf_t;

#endif
