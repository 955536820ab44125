# flags.mk: how every program in the repo is compiled.
# CFLAGS is yours to set (make CFLAGS="-O0 -g3"); the standard and the
# warnings below stay on whatever it says.
CFLAGS ?= -O2 -g
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic
# SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer;
# any error they find aborts the program, so a test run catches it.
ifeq ($(SANITIZE),1)
BASE_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
COMPILE = $(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS)
