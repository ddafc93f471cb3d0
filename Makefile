# Makefile for fraudstream (PGXS)
#
# The version lives in fraudstream.control (default_version) and nowhere
# else: this file derives the install script's name and the library's
# FRAUDSTREAM_VERSION from it.

EXTENSION = fraudstream
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = fraudstream
OBJS = \
	src/fraudstream.o \
	src/shmem.o \
	src/window.o \
	src/featurestate.o \
	src/features.o \
	src/online.o \
	src/featurejson.o \
	src/batch.o \
	src/model.o \
	src/modelcatalog.o \
	src/scoring.o \
	src/alerts.o \
	src/scorestats.o \
	src/stats.o \
	src/kafka.o \
	src/decode.o \
	src/fastinput.o \
	src/sink.o \
	src/worker.o \
	src/launcher.o \
	src/ring.o \
	src/source.o

DATA = sql/$(EXTENSION)--$(EXTVERSION).sql

# pg_regress tests: sql/NAME.sql against expected/NAME.out
# (test/run.sh runs the same lists against its private servers.)
REGRESS = $(filter-out $(EXTENSION)--%,$(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)
ISOLATION = $(basename $(notdir $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation

# Debian's /usr/bin/pg_config follows the newest installed server; prefer 15.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PG_CPPFLAGS = -I$(srcdir)/src -DFRAUDSTREAM_VERSION='"$(EXTVERSION)"'
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lrdkafka

EXTRA_CLEAN = results regression.diffs regression.out test/mock/fs_kafka_mock test/listen/fs_listen \
	bench/gen/fs_gen bench/gen/*.o

# Track header dependencies (PGXS's own mechanism, off unless asked for):
# a changed header rebuilds every object that includes it.
override autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
# A fresh machine: only deps and test (which installs them) can work.
all install installcheck:
	@echo "pg_config not found: run 'make deps' as root first, or set PG_CONFIG" >&2; exit 1
endif

# Everything a fresh Debian 12 machine needs to build, test and run the demo.
.PHONY: deps test bench demo demo-eval
deps:
	test/install-deps.sh

# Builds, installs and runs every test layer against private PostgreSQL
# and Kafka servers (see test/run.sh).
test: deps
	test/run.sh

# Every benchmark, in one run, against private servers (see bench/run.sh).
bench: deps
	bench/run.sh

# The live demo: stream, score, alert, summarise, stop (see demo/run.sh).
demo: deps
	demo/run.sh

# The demo model in steady state, offline (see demo/evaluate.sh).
demo-eval: deps
	demo/evaluate.sh
