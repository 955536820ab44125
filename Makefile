# make            build every step, the tools and bench/poll-echo
# make step4      build one step (step1 ... step6); each also builds alone: make -C step4-epoll
# make test       run every step's tests; make test-step2 runs one step's
# make sanitize   build every step with ASan and UBSan and run the tests against those builds
# make mutate     put each bug of tests/mutations/ into a copy of the tree, and prove a test catches it
# make bench      measure every step (and Node.js, if installed), about ten minutes:
#                 bench/out/results.md, results.svg, results.tsv
# make bench-quick  the same, smaller and single runs, in about a minute
# make clean      remove what the build made

STEPS = step1-blocking step2-fork step3-threads step4-epoll step5-reuseport step6-io-uring

# bats-core runs the tests: the one on PATH, else npx's, else a one-line hint.
BATS := $(shell command -v bats 2>/dev/null)
ifeq ($(BATS),)
ifneq ($(shell command -v npx 2>/dev/null),)
BATS := npx --yes bats
endif
endif

all: $(STEPS) tools bench-programs

step1: step1-blocking
step2: step2-fork
step3: step3-threads
step4: step4-epoll
step5: step5-reuseport
step6: step6-io-uring

$(STEPS) tools:
	$(MAKE) -C $@

# What the bench runs besides the steps: bench/poll-echo.
bench-programs:
	$(MAKE) -C bench

# Servers the tests need that are not part of the course.
fixtures:
	$(MAKE) -C tests/fixtures

test: all fixtures need-bats
	$(BATS) tests/

test-step1: test-step1-blocking
test-step2: test-step2-fork
test-step3: test-step3-threads
test-step4: test-step4-epoll
test-step5: test-step5-reuseport
test-step6: test-step6-io-uring

$(STEPS:%=test-%): test-%: % tools fixtures need-bats
	$(BATS) tests/$*.bats

# Each step built again as stepN-*/server-sanitize, then its tests run
# against that binary. A sanitizer error aborts the server, which fails a test.
sanitize: tools fixtures need-bats
	for step in $(STEPS); do \
	    $(MAKE) -C $$step SANITIZE=1 BIN=server-sanitize || exit 1; \
	done
	$(MAKE) -C tests/fixtures SANITIZE=1 SQUEEZED_BIN=step6-squeezed-sanitize step6-squeezed-sanitize
	for step in $(STEPS); do \
	    SERVER=$(CURDIR)/$$step/server-sanitize SQUEEZED=$(CURDIR)/tests/fixtures/step6-squeezed-sanitize \
	        $(BATS) tests/$$step.bats || exit 1; \
	done

# Every bug in tests/mutations/ must be caught by its suite, and every
# solution in tests/solutions/ must pass: see tests/mutate.
mutate: need-bats
	BATS="$(BATS)" tests/mutate

bench: all fixtures
	bench/run

bench-quick: all fixtures
	bench/run --quick

need-bats:
	@if [ -z "$(BATS)" ]; then \
	    echo "make test needs bats-core: apt-get install bats (or install Node.js so npx can fetch it)" >&2; \
	    exit 1; \
	fi

clean:
	for dir in $(STEPS) tools bench tests/fixtures; do $(MAKE) -C $$dir clean; done

.PHONY: all fixtures step1 step2 step3 step4 step5 step6 $(STEPS) tools bench-programs test test-step1 test-step2 \
	test-step3 test-step4 test-step5 test-step6 $(STEPS:%=test-%) sanitize mutate bench bench-quick need-bats clean
